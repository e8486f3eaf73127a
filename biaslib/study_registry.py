"""What the core knows of a study: what the study declares, and nothing else.

Each study is a package ``biaslib/studies/<name>/`` whose ``declaration`` module defines ``STUDY``, a
:class:`StudyDeclaration`: its params sections, the subject of its results, where its results go and how they are
read back. The core finds the declarations by listing that folder (a new study is a new folder, no core module
changes) and, for studies of other packages, under the entry-point group :data:`ENTRY_POINT_GROUP`
(``name = "package.module"``, a module defining ``STUDY``). They are read on first use; a declaration module
imports only the core, numpy and pandas, so reading them is cheap.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

#: The entry-point group under which another package declares a study: ``name = "package.module"``.
ENTRY_POINT_GROUP = "biaslib.studies"
#: Where the studies of biaslib itself live, one package each.
STUDIES_FOLDER = Path(__file__).resolve().parent / "studies"

RowCheck = Callable[[Mapping[str, Any]], "str | None"]


@dataclass(frozen=True)
class StudyDeclaration:
    """One study as the core sees it.

    ``name``: the ``study`` of its result files. ``subject_fields``: what one of its results evaluated (the keys of
    the result's ``subject``). ``frame(path, record) -> DataFrame``: one result's rows as the study's table;
    ``combine(frames) -> DataFrame``: several results' frames as one (sorted, typed; an empty list gives the empty
    table with its columns), what :func:`biaslib.results.collect` returns. ``sections``: the params sections it
    owns (name → frozen dataclass; read from the params file like the core's sections), of which
    ``analysis_sections`` only say how results are analysed. ``reads``: the shared params keys (``seed``,
    ``world``, ``generate``, …) its numbers depend on. Its digest (:func:`study_digest`) covers ``reads`` and its
    own sections but the analysis ones, so that no other study's setting makes its results look stale.
    ``results_folder``: its result files under ``<run>/results`` (``""``: that folder itself). ``check_subject``
    and ``check_row``: the problem with a result's subject or one of its rows (None: fine). ``check_params(params,
    path)``: raises :class:`biaslib.config.ParamsError` for a value of its sections out of range.
    ``earlier_formats``: result formats it wrote before :data:`biaslib.provenance.RESULT_FORMAT` → a function
    that gives such a record in the current shape.
    """

    name: str
    subject_fields: tuple[str, ...]
    frame: Callable[[Path, dict[str, Any]], pd.DataFrame]
    combine: Callable[[list[pd.DataFrame]], pd.DataFrame]
    sections: Mapping[str, type] = field(default_factory=dict)
    analysis_sections: tuple[str, ...] = ()
    reads: tuple[str, ...] = ()
    results_folder: str = ""
    check_subject: RowCheck | None = None
    check_row: RowCheck | None = None
    check_params: Callable[[Any, Path], None] | None = None
    earlier_formats: Mapping[str, Callable[[dict[str, Any]], dict[str, Any]]] = field(default_factory=dict)

    @property
    def digest_keys(self) -> tuple[str, ...]:
        """The params keys its digest covers: ``reads`` and its own sections but the analysis ones."""
        return (*self.reads, *(s for s in self.sections if s not in self.analysis_sections))


_DECLARED: dict[str, StudyDeclaration] = {}


def _declaration_modules() -> list[str]:
    """The declaration modules of the studies in ``biaslib/studies/`` (by folder name) and of other packages."""
    own = [f"biaslib.studies.{p.name}.declaration" for p in sorted(STUDIES_FOLDER.iterdir())
           if (p / "declaration.py").is_file()]
    return own + [point.value for point in entry_points(group=ENTRY_POINT_GROUP)]


def declared_studies() -> dict[str, StudyDeclaration]:
    """Every declared study by name (read once). Raises ``ValueError`` when two studies share a name or a params
    section."""
    if not _DECLARED:
        found: dict[str, StudyDeclaration] = {}
        owners: dict[str, str] = {}
        for module in _declaration_modules():
            study = importlib.import_module(module).STUDY
            if study.name in found:
                raise ValueError(f"two studies are named {study.name!r} ({module} and another)")
            for section in study.sections:
                if section in owners:
                    raise ValueError(f"params section {section!r} is declared by {owners[section]} and {study.name}")
                owners[section] = study.name
            found[study.name] = study
        _DECLARED.update(found)
    return _DECLARED


def get_study(name: str) -> StudyDeclaration:
    """The declaration of study ``name``; ``ValueError`` naming the declared ones otherwise."""
    studies = declared_studies()
    if name not in studies:
        raise ValueError(f"unknown study {name!r}; expected one of {', '.join(studies)}")
    return studies[name]


def study_sections() -> dict[str, type]:
    """Every params section a study owns: name → its dataclass."""
    return {name: cls for study in declared_studies().values() for name, cls in study.sections.items()}


def analysis_sections() -> tuple[str, ...]:
    """Every study's analysis-only sections."""
    return tuple(s for study in declared_studies().values() for s in study.analysis_sections)


def study_digest(params: Any, study: str) -> str:
    """The digest of what study ``study``'s numbers depend on (:attr:`StudyDeclaration.digest_keys` of
    :class:`~biaslib.config.Params`): what its results record and compare."""
    return params.digest(get_study(study).digest_keys)
