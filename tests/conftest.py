"""Shared fixtures: one small world export per test session (every format) and one tiny CLIP trained on the
world, reused by many tests."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from biaslib.config import ExportConfig, Params, TrainConfig
from biaslib.world import World
from biaslib.world.export import export_all

#: A params file of the amplification study at its smallest (600 captions, ratios 0 and 1, one epoch of the
#: tiny CLIP, 50 bootstrap draws): ``TINY_STUDY.format(experiment=…, runs=…)``; used by the study and notebook tests.
TINY_STUDY = """
experiment: {experiment}
runs_dir: {runs}
export: {{cc3m_samples: 600, cc3m_shard_size: 300, phase_val: 60, coco_images: 40, coco_captions_per_image: 2,
          fairface_train: 10, fairface_val: 80, geode_per_object_region: 1, workers: 1}}
generate: {{shard_size: 300, batch_size: 50}}
mix: {{ratios: ["000", "100"]}}
train: {{epochs: 1, batch_size: 100, warmup: 2, workers: 1, precision: fp32}}
eval: {{n_boot: 50}}
"""

SMALL_EXPORT = ExportConfig(
    cc3m_samples=240, cc3m_shard_size=100, phase_val=60, coco_images=50, coco_captions_per_image=5,
    fairface_train=60, fairface_val=30, geode_per_object_region=2, workers=1,
)


@pytest.fixture(autouse=True)
def _matplotlib_settings():
    """Each test ends with the matplotlib settings it started with: ``figures.set_style()`` inside one test (e.g.
    ``biaslib figures draw`` run in-process) must not change the figure sizes another test measures."""
    import matplotlib

    with matplotlib.rc_context():
        yield


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a test module (``pytestmark = pytest.mark.usefixtures("one_thread")``): its micro
    models check numbers, not speed, and with two OpenMP threads on two cores shared with other jobs each small
    forward pass can take 10-50× longer (threads spin at barriers)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def module_tmp(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A folder for one test module's shared fixtures, deleted when the module's tests end unless one of them
    failed (a passing test's own tmp_path goes at once: pyproject's tmp_path_retention_policy). Module fixtures
    hold trained checkpoints and runs of 0.2-0.4 GB; kept to the session's end they added up to ≈ 1 GB."""
    path = tmp_path_factory.mktemp(request.module.__name__.rpartition(".")[2])
    failed_before = request.session.testsfailed
    yield path
    if request.session.testsfailed == failed_before:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def world() -> World:
    return World(seed=0)


@pytest.fixture(scope="session")
def exported(world: World, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every dataset format of a small world, written once per session."""
    return export_all(world, tmp_path_factory.mktemp("world"), SMALL_EXPORT)


@pytest.fixture(scope="session")
def world_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The newest checkpoint of a tiny CLIP (``biaslib-tiny-rn``) trained by open_clip_train on 8,000 world
    web samples, 2 epochs, batch 128 (≈ 80 s on 2 cores); its zero-shot occupation accuracy is tested in
    test_train and its text tower conditions the tiny diffusion pipeline in test_world_fidelity."""
    from biaslib.layout import RunLayout
    from biaslib.train import train_ratio
    from biaslib.world.export import export_cc3m

    params = Params(experiment="zs", runs_dir=tmp_path_factory.mktemp("world_clip"),
                    train=TrainConfig(epochs=2, batch_size=128, lr=1e-3, warmup=20, workers=1))
    export_cc3m(World(seed=0), RunLayout(params).mix(0), 8000, shard_size=2000, workers=2)
    return train_ratio(params, 0)


def _biaslib_modules() -> set[str]:
    import pkgutil

    import biaslib

    return {"biaslib"} | {m.name for m in pkgutil.walk_packages(biaslib.__path__, "biaslib.")}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The fast tier must still reach every module: after a whole-suite run (no file, ``-k`` or ``--lf``
    selection, and no ``-m`` choosing one tier such as ``browser``), a biaslib module that no test imported fails the
    run, naming it."""
    import sys

    config = session.config
    whole_suite = not config.args or [Path(a).resolve() for a in config.args] == [Path(config.rootpath, "tests")]
    one_tier = config.option.markexpr.strip() and not config.option.markexpr.strip().startswith("not ")
    if (not whole_suite or one_tier or config.option.keyword or config.option.collectonly
            or config.getoption("lf", False)):  # `-m browser` runs one tier only: it need not reach every module
        return
    if session.testscollected == 0 or exitstatus != 0:
        return
    missing = sorted(_biaslib_modules() - set(sys.modules))
    if missing:
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"no test imported these biaslib modules: {', '.join(missing)}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
