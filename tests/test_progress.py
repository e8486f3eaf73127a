"""Transient progress bars leave no view of a closed widget in a notebook (issue 29: "No 'Error displaying widget'").

tqdm's ``leave=False`` bar closes its widget when done while the cell keeps the output that showed it; JupyterLab
then draws "Error displaying widget: model not found" wherever that output is drawn after the close (the browser
tier saw it in 00_world on a fast machine: the world's dataset bars finish before the page draws them). The test
runs bars in a real kernel, as JupyterLab and papermill do, and reads the outputs the cell keeps.
"""

from __future__ import annotations

import pytest

from biaslib.progress import progress

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

WIDGET = "application/vnd.jupyter.widget-view+json"


def _outputs(code: str) -> list[dict]:
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    nbclient.NotebookClient(notebook, kernel_name="biaslib", timeout=120).execute()
    return notebook.cells[0].outputs


def test_a_transient_bar_leaves_no_widget_output_and_a_kept_bar_stays():
    outputs = _outputs(
        "from tqdm.auto import tqdm\n"
        "from biaslib.progress import progress\n"
        "for _ in tqdm(range(50), desc='tqdm leave=False', leave=False): pass\n"
        "for _ in progress(range(50), desc='transient', transient=True): pass\n"
        "for _ in progress(range(5), desc='kept'): pass\n"
        "bar = progress(total=10, desc='stopped', transient=True)\n"
        "bar.update(3)\n"
        "bar.close()\n")
    widgets = [o for o in outputs if WIDGET in o.get("data", {})]
    texts = [o["data"].get("text/plain", "") for o in widgets]
    # tqdm's own leave=False bar keeps the output of its closed widget (the defect); the transient bar's output was
    # emptied before its widget closed; the kept bar and the one stopped early (an error shows red, as tqdm leaves
    # it) keep their widgets, whose models stay open
    assert len(widgets) == 3 and not any("transient" in t for t in texts), texts
    assert [any(name in t for t in texts) for name in ("tqdm leave=False", "kept", "stopped")] == [True] * 3
    assert not [o for o in outputs if o.get("output_type") == "error" or o.get("name") == "stderr"], outputs


def test_outside_a_notebook_a_transient_bar_is_tqdms_own_without_leave():
    bar = progress(range(3), desc="terminal", transient=True)
    from tqdm.notebook import tqdm_notebook

    assert bar.leave is False and not isinstance(bar, tqdm_notebook)
    assert list(bar) == [0, 1, 2]
    assert progress(range(3), desc="kept").leave is True


def test_the_world_exporters_bar_is_complete_and_closed_when_a_caller_zips_it(monkeypatch):
    """``zip(rows, encoded_images(...))`` stops at the last row without resuming the generator: the bar must still
    count every image and close (it was left one short and open: a red bar in a notebook)."""
    import biaslib.world.export as export
    from biaslib.config import load_params
    from biaslib.world import World

    bars = []
    monkeypatch.setattr(export, "progress", lambda **kw: bars.append(progress(**kw)) or bars[-1])
    world = World(load_params(None).world, 0)
    rows = world.people(5).to_dict("records")
    pairs = list(zip(range(len(rows)), export.encoded_images(world, rows, desc="zipped")))
    assert len(pairs) == 5 and bars[0].n == 5 and bars[0].disable  # tqdm marks a closed bar disabled
