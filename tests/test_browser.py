"""The browser tier (issue 29): every notebook as a researcher opens it — in JupyterLab, driven by headless Chromium —
on the smallest world that exercises it. Each is opened, Run All is pressed, and then: no error output and nothing
on stderr, no "Error displaying widget", every widget a live one, and in 00 and 05 one control changed changes what
is shown. The notebooks are the repository's, with their parameters set as papermill sets them (an injected cell
after the parameters cell) and the kernel in their folder, as JupyterLab starts it. A failing notebook's screenshot
and its executed copy are kept in ``runs/test-browser/``.

``make test-browser`` installs Debian's ``chromium`` and ``chromedriver`` when they are missing; nothing is
downloaded at run time.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import TINY_STUDY
from test_notebooks import MULTILINGUAL

from biaslib.config import REPO_ROOT

pytestmark = pytest.mark.browser
webdriver = pytest.importorskip("selenium.webdriver")

ARTEFACTS = REPO_ROOT / "runs" / "test-browser"
JUPYTER = Path(sys.executable).parent / "jupyter"
#: Seconds a notebook's Run All may take (far above any here).
RUN_ALL_TIMEOUT = 900


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _copy_with_parameters(name: str, folder: Path, **parameters) -> str:
    """``notebooks/<name>.ipynb`` into ``folder`` with ``parameters`` injected as papermill does; returns the copy's
    file name (``<name><_suffix>.ipynb``)."""
    import nbformat
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    suffix = parameters.pop("_suffix", "")
    notebook = load_notebook_node(str(REPO_ROOT / "notebooks" / f"{name}.ipynb"))
    copy = f"{name}{suffix}.ipynb"
    nbformat.write(parameterize_notebook(notebook, parameters), folder / copy)
    return copy


class Lab:
    """A JupyterLab server on a free loopback port with a token, serving ``root``, and a headless Chromium."""

    def __init__(self, root: Path) -> None:
        self.root, self.port, self.token = root, _free_port(), secrets.token_hex(16)
        settings = root / ".lab-settings" / "@jupyterlab" / "notebook-extension"
        settings.mkdir(parents=True)
        # every cell in the DOM (JupyterLab 4 renders only the visible ones by default)
        (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
        self.log = (root / "server.log").open("w")
        self.server = subprocess.Popen(
            [str(JUPYTER), "lab", "--no-browser", "--ip=127.0.0.1", f"--port={self.port}", "--allow-root",
             f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={root}",
             "--LabApp.expose_app_in_browser=True", f"--LabApp.user_settings_dir={root / '.lab-settings'}",
             f"--LabApp.workspaces_dir={root / '.lab-workspaces'}"], stdout=self.log, stderr=subprocess.STDOUT)
        self._wait_for_server()
        options = webdriver.ChromeOptions()
        for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
            options.add_argument(argument)
        from selenium.webdriver.chrome.service import Service

        driver = shutil.which("chromedriver")
        if driver is None:  # selenium would download one: refuse instead
            pytest.fail("chromedriver not found: `make browser` installs Debian's chromium and chromium-driver")
        self.driver = webdriver.Chrome(service=Service(driver), options=options)
        self.driver.set_script_timeout(RUN_ALL_TIMEOUT)
        # each call to the browser waits up to 120 s by default; a page busy drawing a kernel's outputs while the kernel
        # holds both cores answered none in that time (seen with another heavy job beside the tier)
        self.driver.command_executor.client_config.timeout = RUN_ALL_TIMEOUT

    def _wait_for_server(self) -> None:
        for _ in range(240):
            if self.server.poll() is not None:
                raise RuntimeError(f"JupyterLab exited: {(self.root / 'server.log').read_text()[-2000:]}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/status?token={self.token}", timeout=1)
                return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError("JupyterLab did not answer within 2 minutes")

    def close(self) -> None:
        self.driver.quit()
        self.server.terminate()
        self.server.wait(30)
        self.log.close()

    def script(self, code: str):
        return self.driver.execute_script(code)

    def open(self, path: str) -> None:
        """Open ``path`` (relative to the root) and wait until its kernel is idle."""
        self.driver.get(f"http://127.0.0.1:{self.port}/lab/tree/{path}?token={self.token}")
        self._until("""const app = window.jupyterapp; const w = app && app.shell.currentWidget;
            const kernel = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
            return !!(kernel && kernel.status === 'idle' && w.context.path.endsWith(arguments[0]));""",
                    180, path.rpartition("/")[2])

    def _until(self, condition: str, seconds: float, *args) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if self.driver.execute_script(condition, *args):
                return
            time.sleep(0.5)
        raise TimeoutError(f"waited {seconds} s for: {condition[:80]}")

    def run_all(self) -> list[dict]:
        """Run All, wait until every code cell ran and the kernel is idle; the cells as JSON."""
        self.driver.execute_async_script("""const done = arguments[arguments.length - 1];
            window.jupyterapp.commands.execute('notebook:run-all-cells')
                .then(() => done(true), e => done(String(e)));""")
        self._until("""const w = window.jupyterapp.shell.currentWidget;
            const cells = w.content.model.sharedModel.cells.map(c => c.toJSON())
                .filter(c => c.cell_type === 'code');
            return w.sessionContext.session.kernel.status === 'idle'
                && cells.every(c => c.execution_count !== null);""", RUN_ALL_TIMEOUT)
        return self.script("return window.jupyterapp.shell.currentWidget.content.model.sharedModel.cells"
                           ".map(c => c.toJSON());")

    def save(self, name: str) -> None:
        """Keep the screenshot and the executed notebook of a failure (``runs/test-browser/``)."""
        ARTEFACTS.mkdir(parents=True, exist_ok=True)
        self.driver.save_screenshot(str(ARTEFACTS / f"{name}.png"))
        try:
            cells = self.script("return window.jupyterapp.shell.currentWidget.content.model.sharedModel.cells"
                                ".map(c => c.toJSON());")
            (ARTEFACTS / f"{name}.cells.json").write_text(json.dumps(cells, indent=1))
        except Exception:  # noqa: BLE001 - the screenshot is the artefact that matters
            pass


#: A Python warning on stderr: ``<file>:<line>: <Category>Warning: <message>`` and the source line under it.
WARNING = re.compile(r"^\S+:\d+: \w*Warning: .*\n(?:[ \t]+.*\n?)?", re.M)


def problems_of(cells: list[dict], outputs: str) -> list[str]:
    """Error outputs, stderr text other than Python warnings (a tiny world's groups of one warn, as they should)
    and widgets that failed to display (in ``outputs``, the text the output areas show), a line each."""
    found = []
    for index, cell in enumerate(cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                found.append(f"cell {index}: {output.get('ename')}: {output.get('evalue')}")
            elif output.get("output_type") == "stream" and output.get("name") == "stderr":
                text = output.get("text")
                rest = WARNING.sub("", "".join(text) if isinstance(text, list) else str(text)).strip()
                if rest:
                    found.append(f"cell {index} stderr: {rest}"[:300])
    if "Error displaying widget" in outputs:
        found.append("a widget failed to display (Error displaying widget)")
    return found


def live_widgets(lab: Lab) -> tuple[int, int]:
    """(widget views shown, widget outputs whose model is gone): a live widget renders as ``.jupyter-widgets``."""
    shown = len(lab.driver.find_elements("css selector", ".jp-OutputArea-output .jupyter-widgets"))
    missing = lab.script("""return Array.from(document.querySelectorAll(
        '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.widget-view+json"]'))
        .filter(e => e.textContent.includes('model not found')).length;""")
    return shown, missing


@pytest.fixture(scope="module")
def project(module_tmp: Path) -> Iterator[tuple[Lab, Path, dict[str, str]]]:
    """A project folder with the notebooks (parameters set for a tiny world) and a JupyterLab serving it."""
    root = module_tmp / "project"
    folder = root / "notebooks"
    folder.mkdir(parents=True)
    params = root / "tiny.yaml"
    params.write_text(TINY_STUDY.format(experiment="lab", runs=root / "runs"))
    lab = Lab(root)
    try:
        yield lab, folder, {"params": str(params), "figures": str(root / "figures"), "runs": str(root / "runs")}
    finally:
        lab.close()


def _run(lab: Lab, folder: Path, name: str, **parameters) -> list[dict]:
    """Open the notebook ``name`` with ``parameters`` in JupyterLab and Run All; fails with every problem found."""
    copy = _copy_with_parameters(name, folder, **parameters)
    stem = copy.removesuffix(".ipynb")
    try:
        lab.open(f"notebooks/{copy}")
        cells = lab.run_all()
        # the outputs' text, not the page's: 00's and 05's notes above their panels name the error they explain
        shown = lab.script("return Array.from(document.querySelectorAll('.jp-OutputArea-output'))"
                           ".map(e => e.innerText).join('\\n');")
        problems = problems_of(cells, shown)
        _, missing = live_widgets(lab)
        if missing:
            problems.append(f"{missing} widget(s) whose model is not found")
        assert not problems, f"{copy}:\n" + "\n".join(problems)
    except Exception:
        lab.save(stem)
        raise
    return cells


def _shown_in_widgets(lab: Lab) -> str:
    """What the widget outputs show (their HTML, images as their sources)."""
    return lab.script("""return Array.from(document.querySelectorAll('.jp-OutputArea-output .jupyter-widgets'))
        .map(e => e.innerHTML).join('\\n');""")


def _change_first_dropdown(lab: Lab) -> None:
    """Choose another option in the first dropdown of the page that has one."""
    from selenium.webdriver.support.ui import Select

    select = next(Select(e) for e in lab.driver.find_elements("css selector", ".widget-dropdown select")
                  if len(Select(e).options) > 1)
    current = select.first_selected_option.text
    other = next(o.text for o in select.options if o.text != current)
    select.select_by_visible_text(other)


def _wait_for_change(lab: Lab, before: str, seconds: float = 60) -> str:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(0.5)
        now = _shown_in_widgets(lab)
        if now != before and lab.script("return window.jupyterapp.shell.currentWidget.sessionContext.session"
                                        ".kernel.status === 'idle';"):
            return now
    return _shown_in_widgets(lab)


def test_the_amplification_notebooks_run_all_in_jupyterlab_and_their_controls_work(project):
    lab, folder, paths = project
    common = {"PARAMS_FILE": paths["params"], "FIGURES_DIR": paths["figures"]}
    _run(lab, folder, "00_world", **common, EXAMPLES_PER_OCCUPATION=2)
    shown, _ = live_widgets(lab)
    assert shown >= 4, "00's sample browser: four dropdowns and the images"
    before = _shown_in_widgets(lab)
    _change_first_dropdown(lab)
    assert _wait_for_change(lab, before) != before, "00: another occupation changes the samples shown"
    _run(lab, folder, "01_generate", **common, N_EXAMPLES=2)
    _run(lab, folder, "02_mix", **common, N_EXAMPLES=2)
    _run(lab, folder, "03_train", **common, ZERO_SHOT_PEOPLE=60)
    _run(lab, folder, "04_eval", PARAMS_FILE=paths["params"], ratio="000", _suffix="_000")
    _run(lab, folder, "04_eval", PARAMS_FILE=paths["params"], ratio="100", _suffix="_100")
    _run(lab, folder, "05_figures", **common)
    shown, _ = live_widgets(lab)
    assert shown >= 1, "05's results panel"
    before = _shown_in_widgets(lab)
    _change_first_dropdown(lab)
    assert _wait_for_change(lab, before) != before, "05: another measure redraws the figure"
    models = Path(paths["runs"]).parent / "models.yaml"
    models.write_text(f"models:\n  lab: {{runs: {paths['params']}}}\n"
                      "  floor: {arch: biaslib-tiny-vit, pretrained: none}\n")
    _run(lab, folder, "06_benchmark", PARAMS_FILE=paths["params"], MODELS_FILE=str(models),
         FIGURES_DIR=paths["figures"])
    figures = {p.stem for p in Path(paths["figures"]).glob("*.png")}
    assert {"lab_world_occupations", "lab_train_loss", "lab_retrieval_phase_R1", "lab_benchmark_leaderboard"} <= figures


def test_the_multilingual_notebooks_run_all_in_jupyterlab(project, module_tmp: Path):
    from biaslib.world.tiny_pipeline import build_tiny_pipeline

    lab, folder, paths = project
    base = module_tmp / "base_pipeline"
    build_tiny_pipeline(0, 16).save_pretrained(base)
    params = module_tmp / "ml.yaml"
    params.write_text(MULTILINGUAL.format(runs=paths["runs"], base=base))
    common = {"PARAMS_FILE": str(params), "FIGURES_DIR": paths["figures"]}
    clip = sorted(Path(paths["runs"]).glob("lab/clip/lab_000/checkpoints/epoch_*.pt"))
    assert clip, "the amplification notebooks' ratio-0 CLIP scores the images (run with the test before)"
    _run(lab, folder, "10_prompts", **common, N_EXAMPLES=2)
    _run(lab, folder, "11_generate_multilingual", **common, WHAT="data", N_EXAMPLES=2)
    _run(lab, folder, "12_finetune", **common, N_EXAMPLES=2)
    _run(lab, folder, "13_eval_multilingual", **common, CLIP_CHECKPOINT=str(clip[-1]), CLIP_MODEL="biaslib-tiny-rn",
         N_BOOT=50)
    figures = {p.stem for p in Path(paths["figures"]).glob("*.png")}
    assert {"mlnb_prompt_tokens", "mlnb_gender_before_after", "mlnb_eval_fairness"} <= figures
