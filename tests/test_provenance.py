"""provenance: the one record both studies write, and the settings check of a rerun."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from biaslib import __version__
from biaslib.config import Params
from biaslib.errors import BiaslibError
from biaslib.provenance import git_state, is_current, provenance
from biaslib.study_registry import study_digest


def test_record_names_version_git_params_time_extras_and_settings_last():
    params = Params(experiment="p", seed=7)
    record = provenance(params, {"n_boot": 10, "path": params.runs_dir}, study="amplification", git=("abc", False),
                        checkpoint={"epoch": 2})
    assert list(record) == ["biaslib_version", "git_commit", "git_dirty", "params_digest", "seed", "created_utc",
                            "checkpoint", "settings"]
    assert record["biaslib_version"] == __version__ and record["git_commit"] == "abc" and record["git_dirty"] is False
    assert record["params_digest"] == study_digest(params, "amplification")
    assert record["seed"] == 7 and record["checkpoint"] == {"epoch": 2}
    assert record["settings"] == {"n_boot": 10, "path": "runs"}  # as JSON: what is_current compares
    assert datetime.fromisoformat(record["created_utc"]).tzinfo is not None
    assert provenance(params, {}, study="amplification")["git_commit"] == git_state()[0]  # taken when not given


def test_rerun_with_same_settings_is_current_and_with_other_settings_names_each_change(tmp_path):
    path = tmp_path / "r.json"
    assert not is_current(path, {"a": 1})
    record = provenance(Params(), {"a": 1, "b": "x"}, study="amplification", git=(None, None))
    path.write_text(json.dumps({"provenance": record}))
    assert is_current(path, {"a": 1, "b": "x"})
    with pytest.raises(BiaslibError, match=r"a: 1 -> 2; c: None -> 3"):
        is_current(path, {"a": 2, "b": "x", "c": 3})
    path.write_text("{not json")
    with pytest.raises(BiaslibError, match="not a readable biaslib result"):
        is_current(path, {"a": 1})
