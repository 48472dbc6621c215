"""A bad study file, join, export or artifacts directory: exit code 2, one line naming the file, the key and
the reason, and nothing in the store."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import optuna
import pytest
import yaml

from bad_input import one_line_error
from conftest import adamtune, write_study
from small_filesystems import fill, tmpfs

pytestmark = pytest.mark.slow  # one CLI process per case


@pytest.mark.parametrize("params,expected", [
    ({"decay_every": {"type": "fixed", "value": 0}}, "params.decay_every: value 0 is invalid: must be >= 1"),
    ({"decay_every": {"log": False, "low": 0}}, "params.decay_every: value 0 is invalid: must be >= 1"),
    ({"onecycle_peak": {"high": 1.0}}, "params.onecycle_peak: value 1.0 is invalid: must be in (0, 1)"),
    ({"onecycle_peak": {"low": 0.0}}, "params.onecycle_peak: value 0.0 is invalid: must be in (0, 1)"),
    ({"decay_rate": {"high": 1.5}}, "params.decay_rate: value 1.5 is invalid: must be in (0, 1]"),
], ids=["decay_every fixed 0", "decay_every from 0", "peak at 1", "peak at 0", "decay_rate above 1"])
def test_check_rejects_impossible_per_batch_schedules_by_key(tmp_path, params, expected):
    path = write_study(tmp_path, "bad_schedule", params=params)
    result = adamtune("check", str(path))
    assert result.returncode == 2, result.stdout
    assert result.stderr == f"adamtune: error: {path}: {expected}" + result.stderr.split(expected, 1)[1]
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_malformed_yaml_and_json(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\ndataset: [digits\n")
    result = adamtune("check", str(broken))
    assert result.returncode == 2 and f"{broken}: <yaml>: not valid YAML" in result.stderr
    bad_json = tmp_path / "best.json"
    bad_json.write_text('{"config": {"lr": 0.1,}}')
    result = adamtune("train", str(bad_json))
    assert result.returncode == 2 and f"{bad_json}: <json>: not valid JSON" in result.stderr


@pytest.mark.parametrize("config,expected", [
    ({"config": {"lr": 0.1}, "extra": 1}, "extra: unknown key"),
    ({"config": {"learning_rate": 0.1}}, "config: learning_rate: unknown setting"),
    ({"config": {"beta1": 1.5}}, "config: beta1: must be in [0, 1)"),
    ({"config": {"dataset": "digits", "hflip": True}}, "config: hflip: digits is not flip-invariant"),
    ({"config": {"scheduler": "onecycle", "onecycle_peak": 1.0}}, "config: onecycle_peak: must be in (0, 1)"),
    ({"config": {"scheduler": "batch_exponential", "decay_every": 0}}, "config: decay_every: must be >= 1"),
])
def test_train_rejects_unknown_keys_and_invalid_values(tmp_path, config, expected):
    path = tmp_path / "best.json"
    path.write_text(json.dumps(config))
    result = adamtune("train", str(path), "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and expected in result.stderr, result.stderr
    assert not (tmp_path / "out").exists()


def test_unknown_study_name_says_how_to_list(tmp_path):
    result = adamtune("export", "nope", "--storage", f"sqlite:///{tmp_path / 'x.db'}")
    assert result.returncode == 2
    assert "study 'nope' not found" in result.stderr and "adamtune studies" in result.stderr


def test_control_character_in_study_name_exits_2_and_writes_nothing(tmp_path, storage_url):
    """PostgreSQL refuses NUL in text; before, the worker took that for a lost connection and waited 300 s."""
    path = write_study(tmp_path, "nul_name")
    path.write_text(path.read_text().replace("name: nul_name", 'name: "nul\\0name"'))
    result = adamtune("run", str(path), "--storage", storage_url, timeout=60)
    assert result.returncode == 2, result.stderr
    assert result.stderr == (f"adamtune: error: {path}: name: contains the control character '\\x00'; "
                             "use printable characters\n")
    assert not (tmp_path / "studies.db").exists()
    if storage_url.startswith("postgresql"):  # shared: other runs' rows come and go, so look for this study
        assert not [name for name in optuna.study.get_all_study_names(storage_url) if name.startswith("nul")]


def _file_in_place(tmp_path: Path, stack) -> tuple[Path, str]:
    (tmp_path / "artifacts").write_text("")
    return tmp_path / "artifacts", "is a file, not a directory"


def _below_a_file(tmp_path: Path, stack) -> tuple[Path, str]:
    (tmp_path / "file").write_text("")
    return tmp_path / "file" / "artifacts", f"cannot be created: {tmp_path / 'file'} is a file, not a directory"


def _read_only_mount(tmp_path: Path, stack) -> tuple[Path, str]:
    return stack.enter_context(tmpfs(tmp_path / "ro", read_only=True)), "not writable: Read-only file system"


def _full_disk(tmp_path: Path, stack) -> tuple[Path, str]:
    full = stack.enter_context(tmpfs(tmp_path / "full", size="64k"))
    fill(full)
    return full, "not writable: No space left on device"


UNWRITABLE = {"a file in its place": _file_in_place, "below a file": _below_a_file,
              "read-only mount": _read_only_mount, "full disk": _full_disk}


@pytest.mark.parametrize("case", UNWRITABLE, ids=list(UNWRITABLE))
def test_unwritable_artifacts_directory_exits_2_before_the_store_is_touched(tmp_path, storage_url, study_name, case):
    with contextlib.ExitStack() as stack:
        artifacts, reason = UNWRITABLE[case](tmp_path, stack)
        path = write_study(tmp_path, study_name, artifacts={"path": str(artifacts)})
        result = adamtune("run", str(path), "--storage", storage_url, timeout=60)
        assert result.returncode == 2, result.stderr
        assert result.stderr == f"adamtune: error: artifacts directory {artifacts}: {reason}\n"
        assert not (tmp_path / "studies.db").exists()
        if storage_url.startswith("postgresql"):
            assert study_name not in optuna.study.get_all_study_names(storage_url)


def test_unwritable_artifacts_flag_stops_several_workers_before_they_start(tmp_path):
    (tmp_path / "artifacts").write_text("")
    path = write_study(tmp_path, "unwritable_flag")
    result = adamtune("run", str(path), "--storage", f"sqlite:///{tmp_path / 'studies.db'}", "--workers", "2",
                      "--artifacts", str(tmp_path / "artifacts"), timeout=60)
    assert result.returncode == 2, result.stderr
    expected = f"adamtune: error: artifacts directory {tmp_path / 'artifacts'}: is a file, not a directory\n"
    assert result.stderr == expected
    assert not (tmp_path / "studies.db").exists()


@pytest.mark.parametrize("name", ["../../escaped", "/abs/path", "..", "x" * 256, "字" * 100])
def test_a_study_name_that_escapes_or_overflows_the_artifacts_directory_is_refused(tmp_path, name):
    path = write_study(tmp_path, "ok")
    path.write_text(path.read_text().replace("name: ok", f"name: '{name}'"))
    result = adamtune("run", str(path), "--storage", f"sqlite:///{tmp_path / 's.db'}", cwd=tmp_path)
    one_line_error(result, 2, f"{path}: name: ")
    assert not (tmp_path / "s.db").exists() and not (tmp_path.parent / "escaped").exists()


def test_joining_a_study_with_another_spec_is_bad_input(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    first = write_study(tmp_path, "joined", n_trials=1, epochs=1)
    assert adamtune("run", str(first), "--storage", url).returncode == 0
    spec = yaml.safe_load(first.read_text())
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump({**spec, "epochs": 2}))
    result = adamtune("run", str(other), "--storage", url)
    one_line_error(result, 2, "study 'joined' exists with a different dataset, model, epochs")
    assert "study store" not in result.stderr and "StudyError" not in result.stderr


@pytest.mark.parametrize(("where", "key", "value", "needle"), [
    ("config", "lr", 1e308, "config: lr: must be <= 10"),
    ("config", "width", 10**9, "config: width: must be <= 65536"),
    ("config", "epochs", 10**9, "config: epochs: must be <= 10000"),
    ("config", "seed", 2**70, f"config: seed: must be <= {2**63 - 1}"),  # torch seeds with 64 bits
    ("metrics", "best_epoch", 10**9, "metrics.best_epoch: 1000000000 is not an epoch"),
])
def test_train_refuses_out_of_range_exports_before_training(tmp_path, where, key, value, needle):
    url = f"sqlite:///{tmp_path / 's.db'}"
    assert adamtune("run", str(write_study(tmp_path, "rng", n_trials=1, epochs=1)), "--storage", url).returncode == 0
    exported = json.loads(adamtune("export", "rng", "--storage", url).stdout)
    exported[where][key] = value
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(exported))
    one_line_error(adamtune("train", str(bad), "--out", str(tmp_path / "model")), 2, f"{bad}: {needle}")
    assert not (tmp_path / "model" / "model.pt").exists()
