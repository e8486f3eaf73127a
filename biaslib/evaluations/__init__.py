"""Bias evaluations of CLIPs, one module each, registered on import.

:mod:`.registry` holds :class:`Evaluation` (what an evaluation reads, the settings that change its numbers, its
leaderboard :class:`Measure` s and its ``run``) and :func:`list_evaluations`; :mod:`.datasets` the loaders of the
datasets they read; :mod:`.context` what a ``run`` gets (cached embeddings, settings); :mod:`.rows` the result rows
with intervals and tests. :mod:`biaslib.evaluate` runs them on any CLIP. The built-in evaluations:

* :mod:`.retrieval` — PHASE and COCO-bias text→image R@k per group;
* :mod:`.markedness` — FairFace self-similarity and person preference;
* :mod:`.geode` — GeoDE zero-shot accuracy per region;
* :mod:`.association` — occupation queries over FairFace faces (MaxSkew, NDKL, share of women vs the data);
* :mod:`.zero_shot` — FairFace zero-shot gender, race and age accuracy per group;
* :mod:`.harms` — FairFace faces given crime-related, non-human or child labels;
* :mod:`.concepts` — Berg et al.'s concept queries (MaxSkew, NDKL).
* :mod:`.ranking_ndkl` — the concept queries' NDKL over the whole ranking (Geyik et al.; DebiasCLIP's numbers);
* :mod:`.geode_classification` — GeoDE top-5 accuracy and mean per-class recall per region (CLIP_benchmark's);
* :mod:`.retrieval_i2t` — PHASE and COCO-bias image→text R@k per group;
* :mod:`.harms_summary` — the harm labels' share of all faces and White vs non-White (the CLIP paper's summaries).

Adding one is adding a module that calls :func:`register_evaluation`, and declaring it: an entry point of its own
package under ``biaslib.evaluations`` (:data:`~.registry.ENTRY_POINT_GROUP`), or importing it before use
(docs/development.md, "Add an evaluation"); nothing else changes. Names are listed without importing any module
(:func:`list_evaluations`); an evaluation's module is imported when it is first used.
"""

from biaslib.evaluations.registry import (
    COMMON_SETTINGS,
    ENTRY_POINT_GROUP,
    Evaluation,
    Measure,
    _declare_entry_points,
    declare_module,
    get_evaluation,
    leaderboard_measures,
    list_evaluations,
    register_evaluation,
    unregister_evaluation,
)

#: The built-in evaluations, in the order of help texts, results tables and the leaderboard's panels; each is the
#: module of its name here.
BUILTIN: tuple[str, ...] = ("retrieval", "markedness", "geode", "association", "zero_shot", "harms", "concepts",
                           "ranking_ndkl", "geode_classification", "retrieval_i2t",
                           "harms_summary")
for _name in BUILTIN:
    declare_module(_name, f"{__name__}.{_name}")
_declare_entry_points()

__all__ = ["BUILTIN", "COMMON_SETTINGS", "ENTRY_POINT_GROUP", "Evaluation", "Measure", "declare_module",
           "get_evaluation", "leaderboard_measures", "list_evaluations", "register_evaluation", "unregister_evaluation"]
