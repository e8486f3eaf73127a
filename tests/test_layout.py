"""RunLayout: every path of a run in one place, the same paths the steps wrote before it existed (old runs stay
valid), and nobody else joins path pieces onto a run folder."""

from __future__ import annotations

import json
import re
from pathlib import Path

from biaslib.config import REPO_ROOT, load_params
from biaslib.evaluate import dataset_root, feature_store
from biaslib.layout import RunLayout
from biaslib.studies.amplification.control import declaration_path
from biaslib.studies.multilingual.evaluation import result_path
from biaslib.studies.multilingual.layout import MultilingualLayout
from biaslib.studies.multilingual.pipeline import base_pipeline_dir, dataset_dir, generation_dir

#: joining a piece onto a run folder by hand: ``params.run_dir / "x"``, ``params.runs_dir / "cache"``
HAND_BUILT = re.compile(r"\bruns?_dir\s*/\s*[\"'f]")


def _params(tmp_path: Path):
    path = tmp_path / "p.yaml"
    path.write_text(f"experiment: exp\nruns_dir: {tmp_path / 'runs'}\nmix:\n  generated: sd\n")
    return load_params(path)


def test_paths_are_the_ones_runs_were_written_with(tmp_path):
    params = _params(tmp_path)
    layout, run = RunLayout(params), tmp_path / "runs" / "exp"
    assert layout.root == params.run_dir == run
    assert layout.data == run / "data" and layout.captions == run / "data" / "cc3m"
    assert layout.generated() == run / "generated" / "sd" and layout.generated("other") == run / "generated" / "other"
    assert layout.mixes == run / "mixes" / "sd"
    assert layout.mix(0.2) == layout.mix("020") == layout.mix(20) == run / "mixes" / "sd" / "mix_020"
    assert layout.clip == run / "clip" and layout.features == run / "features" and layout.results == run / "results"
    assert feature_store(params).root == run / "features"
    assert dataset_root(params, "phase") == run / "data" / "phase"
    assert layout.cache == tmp_path / "runs" / "cache"
    assert layout.tiny_pipeline == tmp_path / "runs" / "cache" / "tiny_pipeline"
    assert base_pipeline_dir(params) == layout.tiny_pipeline
    assert layout.study_results("benchmark") == run / "results" / "benchmark"
    assert layout.study_results("amplification") == layout.results
    mine = MultilingualLayout(params)  # the paths only the multilingual study writes
    assert mine.prompts == run / "prompts.parquet" and mine.eval_prompts == run / "eval_prompts.parquet"
    assert mine.multilingual_results == run / "results" / "multilingual" and mine.mix(20) == layout.mix(20)
    assert generation_dir(params, "base", "German") == run / "generated" / "base" / "de"
    assert dataset_dir(params, "balanced") == run / "datasets" / "balanced"
    assert mine.finetuned == run / "finetuned"
    assert result_path(params, "base", "de") == run / "results" / "multilingual" / "exp__base__de.json"
    assert declaration_path(params) == run / "control_declaration.json"
    assert "exp" in repr(layout)


def _sources() -> dict[str, str]:
    """Python sources of biaslib (but the layout and config, which define the run folder) and the code cells of
    the notebooks, by path."""
    found = {str(p.relative_to(REPO_ROOT)): p.read_text() for p in (REPO_ROOT / "biaslib").rglob("*.py")
             if p.name not in ("layout.py", "config.py")}
    for nb in sorted((REPO_ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(nb.read_text())["cells"]
        code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
        found[str(nb.relative_to(REPO_ROOT))] = "\n".join(code)
    return found


def test_no_run_path_is_built_by_hand():
    offenders = [f"{path}: {line.strip()}" for path, text in _sources().items() for line in text.splitlines()
                 if HAND_BUILT.search(line)]
    assert not offenders, "ask RunLayout for these paths:\n" + "\n".join(offenders)


def test_the_hand_built_pattern_catches_what_it_should():
    # the check above can fail: these are the spellings RunLayout replaced
    for line in ['out = params.run_dir / "data"', "cache = params.runs_dir / 'cache'",
                 'p = root.run_dir / f"mix_{code}"']:
        assert HAND_BUILT.search(line), line
    assert not HAND_BUILT.search('print(f"run folder {params.run_dir}")')
