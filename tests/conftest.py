"""Shared fixtures: one small world export per test session (every format), reused by many tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from biaslib.config import ExportConfig
from biaslib.world import World
from biaslib.world.export import export_all

SMALL_EXPORT = ExportConfig(
    cc3m_samples=240, cc3m_shard_size=100, phase_val=60, coco_images=50, coco_captions_per_image=5,
    fairface_train=60, fairface_val=30, geode_per_object_region=2, workers=1,
)


@pytest.fixture(scope="session")
def world() -> World:
    return World(seed=0)


@pytest.fixture(scope="session")
def exported(world: World, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every dataset format of a small world, written once per session."""
    return export_all(world, tmp_path_factory.mktemp("world"), SMALL_EXPORT)
