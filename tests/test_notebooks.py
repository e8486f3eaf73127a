"""Smoke test of every notebook: each one executed with papermill, as `make demo` / `make multilingual` run
them, on a tiny world through its parameters cell (params file, overrides, figures folder), in order, so
that each notebook reads what the one before it wrote. A notebook that raises fails the test; the figures
it promises must exist afterwards."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import TINY_STUDY

from biaslib.config import REPO_ROOT

papermill = pytest.importorskip("papermill")

NOTEBOOKS = REPO_ROOT / "notebooks"
KERNEL = "biaslib"  # installed into .venv by `make venv`, as `make demo` uses it

#: The multilingual study at its smallest (as tests/test_multilingual.py): 2 professions, 16 px pipeline,
#: one epoch of fine-tuning; world renders at 32 px so that the world's classifier trains in seconds.
MULTILINGUAL = """
experiment: mlnb
runs_dir: {runs}
world: {{image_size: 32}}
generate: {{batch_size: 64, shard_size: 10}}
multilingual:
  subset: {{profession: [nurse, pilot], style: 1, dressing: 1}}
  base_pipeline: {base}
  finetune: {{resolution: 16, train_batch_size: 16, gradient_accumulation_steps: 1, num_train_epochs: 1,
             learning_rate: 0.001, mixed_precision: "no", gradient_checkpointing: false, train_text_encoder: true,
             random_flip: false, checkpointing_steps: 2, checkpoints_total_limit: 2}}
  eval_subset: {{profession: [nurse, pilot], style: 1, dressing: 1, place: 1, age: 1}}
  eval_images_per_prompt: 2
  eval_generate: {{steps: 2, guidance: 3.0, batch_size: 8}}
"""


#: What a papermill run leaves out, as the Makefile does: the ipywidgets panels of 00 and 05. nbclient can wait
#: forever on a cell that displays widgets although the kernel is idle (jupyter/nbclient#312; seen here in a full
#: fast-tier run, 00_world's browser cell, kernel idle for 8 minutes); the widgets have their own tests.
NO_WIDGETS = {"00_world": {"SHOW_BROWSER": False}, "05_figures": {"PANEL": False}}
#: Seconds any one cell may take before the test fails instead of hanging the run (far above any cell here).
CELL_TIMEOUT = 600


def run_notebook(name: str, out_dir: Path, **parameters) -> Path:
    """Execute ``notebooks/<name>.ipynb`` into ``out_dir`` (papermill raises on the first failing cell)."""
    out = out_dir / f"{name}{parameters.pop('_suffix', '')}.ipynb"
    parameters = {**NO_WIDGETS.get(name, {}), **parameters}
    # the kernel runs in notebooks/, as JupyterLab starts it (issue 29: 06 failed there, papermill from the
    # repository root hid it); relative path parameters are read from the repository root wherever it runs
    papermill.execute_notebook(NOTEBOOKS / f"{name}.ipynb", out, parameters=parameters, kernel_name=KERNEL,
                               cwd=str(NOTEBOOKS), progress_bar=False, execution_timeout=CELL_TIMEOUT)
    return out


def _committed(path: Path) -> str:
    """The text of ``path`` as committed (the git index: what the next commit holds), or the file outside a git
    checkout. JupyterLab's autosave writes outputs into the working copy; nbstripout, the git filter ``make lab``
    sets up, keeps them out of the index."""
    import subprocess

    done = subprocess.run(["git", "show", f":{path.relative_to(REPO_ROOT).as_posix()}"], cwd=REPO_ROOT,
                          capture_output=True, text=True)
    return done.stdout if done.returncode == 0 else path.read_text(encoding="utf-8")


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.stem)
def test_notebook_is_valid_committed_without_outputs_and_has_one_parameters_cell(path: Path):
    import nbformat

    notebook = nbformat.reads(_committed(path), as_version=4)
    nbformat.validate(notebook)  # cell ids included (nbformat 4.5)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(not cell.outputs and cell.execution_count is None for cell in code)
    assert sum("parameters" in cell.metadata.get("tags", []) for cell in code) == 1


def test_the_git_filter_strips_an_executed_notebook_to_its_committed_form(tmp_path: Path):
    """nbstripout (the filter ``make lab`` installs) turns a notebook with outputs, as JupyterLab saves it, back into
    what the test above accepts — no outputs or execution counts, the parameters tag and cell ids kept — and leaves
    a committed notebook as it is."""
    import subprocess
    import sys

    import nbformat

    notebook = nbformat.read(NOTEBOOKS / "00_world.ipynb", as_version=4)
    for number, cell in enumerate(c for c in notebook.cells if c.cell_type == "code"):
        cell.execution_count = number + 1
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="ran\n")]
    saved = tmp_path / "00_world.ipynb"
    nbformat.write(notebook, saved)
    def strip(text: str) -> str:  # the clean filter `make lab` configures
        return subprocess.run([sys.executable, "-m", "nbstripout", "--keep-id", "-t"], input=text,
                              capture_output=True, text=True, check=True).stdout

    committed = _committed(NOTEBOOKS / "00_world.ipynb")
    assert strip(committed) == committed  # a notebook opened and saved unchanged commits as nothing new
    stripped = strip(saved.read_text())
    again = nbformat.reads(stripped, as_version=4)
    nbformat.validate(again)
    code = [cell for cell in again.cells if cell.cell_type == "code"]
    assert all(not cell.outputs and cell.execution_count is None for cell in code)
    assert [c.id for c in again.cells] == [c.id for c in notebook.cells]
    assert sum("parameters" in cell.metadata.get("tags", []) for cell in code) == 1


def pngs(folder: Path) -> set[str]:
    return {p.stem for p in folder.glob("*.png")}


@pytest.fixture(scope="module")
def amplification_run(module_tmp: Path) -> dict[str, Path]:
    """Notebooks 00 → 05 executed once on a tiny world (the multilingual test reuses its ratio-0 CLIP)."""
    root = module_tmp / "nb_amplification"
    params, figures, executed = root / "nb.yaml", root / "figures", root / "executed"
    executed.mkdir(parents=True)
    params.write_text(TINY_STUDY.format(experiment="nb", runs=root / "runs"))
    common = {"PARAMS_FILE": str(params), "FIGURES_DIR": str(figures)}
    run_notebook("00_world", executed, **common, EXAMPLES_PER_OCCUPATION=2)
    run_notebook("01_generate", executed, **common, N_EXAMPLES=2)
    run_notebook("02_mix", executed, **common, N_EXAMPLES=2)
    run_notebook("03_train", executed, **common, ZERO_SHOT_PEOPLE=60)
    # papermill's `-p ratio 100` passes the integer 100, `-p ratio 000` the integer 0: both spellings work
    run_notebook("04_eval", executed, PARAMS_FILE=str(params), ratio=0, _suffix="_000")
    run_notebook("04_eval", executed, PARAMS_FILE=str(params), ratio="100", _suffix="_100")
    run_notebook("05_figures", executed, **common)
    return {"runs": root / "runs", "figures": figures, "params": params}


def test_amplification_notebooks_run_in_order_on_a_tiny_world(amplification_run):
    written = pngs(amplification_run["figures"])
    # 02 tests the training data's change (issue 28): it called a change "beyond sampling error" when two intervals
    # did not overlap, which is neither necessary nor sufficient for a change beyond chance
    import nbformat

    mixed = nbformat.read(amplification_run["params"].parent / "executed" / "02_mix.ipynb", as_version=4)
    printed = "".join(o.get("text", "") for c in mixed.cells if c.cell_type == "code" for o in c.outputs)
    assert "gender skew of the training data" in printed and "p = " in printed
    assert "sampling error" not in printed
    # issue 29: no stray repr above a figure (00 echoed [PosixPath(…png), PosixPath(…pdf)]) and 00 lists only the
    # figures it wrote (it listed every world_* file of the folder)
    executed = amplification_run["params"].parent / "executed"
    for path in sorted(executed.glob("*.ipynb")):
        shown = nbformat.read(path, as_version=4)
        texts = [str(o.get("text", "")) + str((o.get("data") or {}).get("text/plain", ""))
                 for c in shown.cells if c.cell_type == "code" for o in c.outputs]
        assert not any("PosixPath(" in t for t in texts), path.name
    world = nbformat.read(executed / "00_world.ipynb", as_version=4)
    listed = next(o["text"] for c in world.cells if c.cell_type == "code" for o in c.outputs
                  if "figures written:" in o.get("text", ""))
    names = {n.strip() for n in listed.split("figures written:")[1].split(",")}
    assert names == {f"{n}.png" for n in written if n.startswith("nb_world")}, names
    expected = {"nb_world_occupations", "nb_world_gender_by_occupation", "nb_generate_default_examples",
                "nb_mix_gender_skew", "nb_train_loss", "nb_train_zero_shot", "nb_retrieval_phase_R1",
                "nb_self_similarity", "nb_gaps", "nb_geode_regions", "nb_generator_amplification"}
    assert expected <= written, sorted(expected - written)
    # every figure is named after its experiment, so one study never overwrites another's (issue 16, defect 7)
    assert all(name.startswith("nb_") for name in written), sorted(written)
    # the same figures from the command line (issue 16, defect 6: 05_figures had no command)
    from biaslib import cli

    cli_figures = amplification_run["figures"].parent / "cli_figures"
    assert cli.main(["figures", "draw", "--params", str(amplification_run["params"]), "--figures-dir",
                     str(cli_figures)]) == 0
    assert pngs(cli_figures) == {n for n in written if n.startswith("nb_") and not n.startswith(
        ("nb_world", "nb_generate", "nb_mix", "nb_train"))}
    results = sorted(p.name for p in (amplification_run["runs"] / "nb" / "results").rglob("*.json"))
    assert any("000" in name for name in results) and any("100" in name for name in results), results


def test_benchmark_notebook_and_04_with_a_model_name(amplification_run, tmp_path: Path):
    """Notebook 06 on the tiny study's two CLIPs (a runs: spec) and a random tiny ViT; 04_eval with -p model. The
    kernel runs in notebooks/ (as in JupyterLab) and every path is relative: the models file and figures folder
    to the repository root, the models file's runs: to its project folder (issue 29: 06 raised ModelSpecError
    there, its models file read from the working folder)."""
    import os

    models = tmp_path / "params" / "models.yaml"
    models.parent.mkdir()
    study = os.path.relpath(amplification_run["params"], tmp_path)
    models.write_text(f"models:\n  nb: {{runs: {study}}}\n  floor: {{arch: biaslib-tiny-vit, pretrained: none}}\n")
    figures, executed = tmp_path / "figures", tmp_path / "executed"
    executed.mkdir()
    run_notebook("06_benchmark", executed, PARAMS_FILE=str(amplification_run["params"]),
                 MODELS_FILE=os.path.relpath(models, REPO_ROOT), FIGURES_DIR=os.path.relpath(figures, REPO_ROOT))
    run_notebook("04_eval", executed, PARAMS_FILE=str(amplification_run["params"]), model="floor",
                 MODELS_FILE=str(models), _suffix="_floor")
    assert pngs(figures) == {"nb_benchmark_leaderboard"}
    written = {p.name.split("__")[1] for p in (amplification_run["runs"] / "nb" / "results" / "benchmark").glob("*")}
    assert written == {"nb-000", "nb-100", "floor"}


@pytest.mark.slow
def test_multilingual_notebooks_run_in_order_on_a_tiny_world(amplification_run, tmp_path: Path):
    from biaslib.world.tiny_pipeline import build_tiny_pipeline

    build_tiny_pipeline(0, 16).save_pretrained(tmp_path / "base")
    params = tmp_path / "ml.yaml"
    params.write_text(MULTILINGUAL.format(runs=tmp_path / "runs", base=tmp_path / "base"))
    figures, executed = tmp_path / "figures", tmp_path / "executed"
    executed.mkdir()
    common = {"PARAMS_FILE": str(params), "FIGURES_DIR": str(figures)}
    run_notebook("10_prompts", executed, **common, N_EXAMPLES=2)
    run_notebook("11_generate_multilingual", executed, **common, WHAT="data", N_EXAMPLES=2)
    run_notebook("12_finetune", executed, **common, N_EXAMPLES=2)
    clip = sorted((amplification_run["runs"] / "nb" / "clip").glob("nb_000/checkpoints/epoch_*.pt"))
    assert clip, "the amplification notebooks' ratio-0 CLIP is the CLIP of the CLIP score"
    run_notebook("13_eval_multilingual", executed, **common, CLIP_CHECKPOINT=str(clip[-1]),
                 CLIP_MODEL="biaslib-tiny-rn", N_BOOT=50)
    written = pngs(figures)
    expected = {"mlnb_prompt_tokens", "mlnb_generate_data_gender", "mlnb_gender_before_after",
                "mlnb_examples_de", "mlnb_eval_fairness", "mlnb_eval_shares", "mlnb_eval_skin"}
    assert expected <= written, sorted(expected - written)
    assert all(name.startswith("mlnb_") for name in written), sorted(written)
