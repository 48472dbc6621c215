"""Mistakes a user makes end in one line and the documented exit code, never a traceback, never a
surprise: a YAML key given twice, a study name that escapes the artifacts directory, a refused join,
outputs that cannot be written, out-of-range exports, a closed pipe, and a --timeout mid-trial."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import optuna
import pytest
import yaml

from bad_input import one_line_error
from conftest import ADAMTUNE, adamtune, write_study
from small_filesystems import fill, tmpfs

pytestmark = pytest.mark.slow  # starts processes or trains a study


def test_a_yaml_key_given_twice_names_the_key_and_both_lines(tmp_path):
    path = write_study(tmp_path, "dup")
    path.write_text(path.read_text() + "epochs: 50\n")  # `epochs: 4` is above: YAML alone would train 50
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if text.startswith("epochs:"))
    one_line_error(adamtune("check", str(path)), 2, f"{path}: epochs: given twice (lines {line} and ")
    nested = tmp_path / "nested.yaml"
    nested.write_text(path.read_text().replace("epochs: 50\n", "") + "params:\n  lr: {high: 0.01}\n")
    one_line_error(adamtune("check", str(nested)), 2, "params: given twice")


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


def test_outputs_that_cannot_be_written_fail_before_any_work(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    assert adamtune("run", str(write_study(tmp_path, "out", n_trials=1, epochs=1)), "--storage", url).returncode == 0
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    one_line_error(adamtune("export", "out", "-o", str(tmp_path / "missing" / "best.json"), "--storage", url), 2,
                   "export -o", "does not exist")
    one_line_error(adamtune("report", "out", "-o", str(a_file), "--storage", url), 2, "report -o", "is a file")
    exported = tmp_path / "best.json"
    assert adamtune("export", "out", "-o", str(exported), "--storage", url).returncode == 0
    one_line_error(adamtune("train", str(exported), "--out", str(a_file)), 2, "train --out", "is a file")


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


def test_a_reader_that_closes_the_pipe_gets_no_traceback(tmp_path):
    path = write_study(tmp_path, "piped")
    result = subprocess.run(f"'{ADAMTUNE}' check '{path}' | head -1", shell=True, capture_output=True, text=True,
                            executable="/bin/bash")
    assert result.stdout.startswith(f"{path}: ok") and result.stderr == ""


def test_studies_counts_waiting_trials_apart_from_running_ones(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    assert adamtune("run", str(write_study(tmp_path, "q", n_trials=1, epochs=1)), "--storage", url).returncode == 0
    study = optuna.load_study(study_name="q", storage=url)
    study.enqueue_trial(study.trials[0].params)  # a queued retry is not running
    header, _, row = adamtune("studies", "--storage", url).stdout.splitlines()[1:4]
    cells = dict(zip(header.split(), row.split(), strict=True))
    assert (cells["running"], cells["waiting"]) == ("0", "1")


def test_timeout_stops_the_worker_between_epochs_and_queues_the_trial(tmp_path):
    """A 10,000-epoch CNN trial (hours on any machine) and a 1 s timeout: the worker stops after an epoch,
    not after the trial."""
    study = write_study(tmp_path, "late", model="cnn", epochs=10_000, n_trials=2, search_space=["adam"],
                        params={"batch_size": {"type": "fixed", "value": 16}, "width": {"type": "fixed", "value": 32}},
                        exclude=[], sampler={"type": "random"}, pruner={"type": "none"})
    url = f"sqlite:///{tmp_path / 's.db'}"
    result = adamtune("run", str(study), "--storage", url, "--timeout", "1", "--quiet")
    assert result.returncode == 0, result.stderr
    assert "the timeout passed during trial 0" in result.stderr
    assert "Traceback" not in result.stderr and "failed with" not in result.stderr, "one line, not Optuna's crash log"
    trials = optuna.load_study(study_name="late", storage=url).trials
    assert [t.state.name for t in trials] == ["FAIL", "WAITING"]
    assert len(trials[0].intermediate_values) < 10_000, "the worker stopped mid-trial, not at its end"


LR_MODEL = '''
from torch import nn


def build(input_shape, num_classes, params, *, extra):
    """Right at the default learning rate (the one `check` probes), `extra` logits off at any other."""
    return nn.Sequential(nn.Flatten(), nn.Linear(64, num_classes + (0 if params["lr"] == 1e-3 else extra)))
'''


@pytest.mark.parametrize("pack", ["1", "2"])
@pytest.mark.parametrize("extra", [1, -1])
def test_a_trial_whose_model_returns_the_wrong_number_of_logits_fails_with_the_reason(tmp_path, extra, pack):
    """`check` probes the model at the defaults; a trial at other values is built and checked again, solo and
    packed: FAIL with the one line as its reason, never COMPLETE with a meaningless loss, never a traceback."""
    (tmp_path / "lr_nets.py").write_text(LR_MODEL)
    study = write_study(tmp_path, "logits", model={"entry": "lr_nets:build", "extra": extra}, epochs=1, n_trials=4,
                        search_space=["adam"], params={}, exclude=[], sampler={"type": "random", "seed": 1})
    assert adamtune("check", str(study)).returncode == 0
    url = f"sqlite:///{tmp_path / 's.db'}"
    result = adamtune("run", str(study), "--storage", url, "--pack", pack)
    line = (f"{study}: model.entry: model returned (2, {10 + extra}) logits for 10 classes; it must return logits "
            "of shape (batch, num_classes) = (2, 10)")
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines()[-1] == f"adamtune: error: {line}", result.stderr
    assert "Traceback" not in result.stderr and "failed with" not in result.stderr, result.stderr
    trials = optuna.load_study(study_name="logits", storage=url).trials
    failed = [t for t in trials if t.user_attrs.get("fail_reason") == line]
    assert [t.state.name for t in failed] == ["FAIL"] and failed[0].params["lr"] != 1e-3
    assert all(t.params["lr"] == 1e-3 for t in trials if t.state.name == "COMPLETE")


UNTRAINABLE = '''
import torch
from torch import nn


def frozen(input_shape, num_classes, params):
    return nn.Sequential(nn.Flatten(), nn.Linear(64, num_classes)).requires_grad_(False)


def huge(input_shape, num_classes, params, *, floats):
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, num_classes))
    model.register_parameter("unused", nn.Parameter(torch.empty(floats)))  # never touched: no page committed
    return model
'''


def test_a_model_with_nothing_to_train_or_too_large_to_train_is_one_line_before_the_store(tmp_path):
    from adamtune.data import free_memory

    (tmp_path / "untrainable.py").write_text(UNTRAINABLE)
    free = free_memory(__import__("torch").device("cpu"))
    assert free is not None
    cases = {"frozen": ({"entry": "untrainable:frozen"}, "the model has nothing to train: all 2 of its parameter "
                        "tensors are frozen (requires_grad=False)"),
             # weights of half the free memory fit; with gradients and Adam's moments they need twice of it
             "huge": ({"entry": "untrainable:huge", "floats": free // 8}, "the model's ")}
    for name, (model, reason) in cases.items():
        study = write_study(tmp_path, name, model=model, search_space=["adam"], params={}, exclude=[])
        for command in (["check", str(study)], ["run", str(study), "--storage", f"sqlite:///{tmp_path / 's.db'}"]):
            one_line_error(adamtune(*command), 2, f"{study}: model.entry: {reason}")
        assert not (tmp_path / "s.db").exists()


OUTSIDE = "from torch import nn\n\ndef build(input_shape, num_classes, params):\n" \
          "    return nn.Sequential(nn.Flatten(), nn.Linear(64, num_classes))\n"


@pytest.mark.parametrize("command", ["check", "run"])
@pytest.mark.parametrize("changes,key,needle", [
    ({"model": {"entry": "os:system", "command": "touch pwned"}}, "model.entry",
     "module 'os' is not a file beside {study} (in {tmp}): a study or export runs only its own modules, not "
     "standard-library or installed ones; pass --trust-entries to allow it"),
    ({"dataset": {"type": "python", "entry": "subprocess:run", "args": ["touch", "pwned"]}}, "dataset.entry",
     "module 'subprocess' is not a file beside {study}"),
    ({"model": {"entry": "outside_nets:build"}}, "model.entry", "module 'outside_nets' is not a file beside"),
    ({"model": {"entry": "json:loads"}}, "model.entry", "{tmp}/json.py has the name of the module imported from"),
], ids=["stdlib model", "stdlib data", "installed model", "shadowing file"])
def test_entries_resolve_only_to_files_beside_the_study_unless_trusted(tmp_path, command, changes, key, needle):
    (tmp_path / "json.py").write_text("raise SystemExit('the study ran json.py')\n")
    lib = tmp_path / "lib"  # a module on sys.path, as an installed one is
    lib.mkdir()
    (lib / "outside_nets.py").write_text(OUTSIDE)
    study = write_study(tmp_path, "entries", search_space=["adam"], params={}, exclude=[], **changes)
    env = {"PYTHONPATH": str(lib)}
    args = [command, str(study)] + (["--storage", f"sqlite:///{tmp_path / 's.db'}"] if command == "run" else [])
    one_line_error(adamtune(*args, cwd=tmp_path, env=env), 2,
                   f"{study}: {key}: " + needle.format(study=study, tmp=tmp_path))
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "s.db").exists()
    if "outside_nets" in str(changes):  # the person running it may trust the file: the flag, or the environment
        assert adamtune("check", str(study), "--trust-entries", env=env).returncode == 0
        assert adamtune("check", str(study), env={**env, "ADAMTUNE_TRUST_ENTRIES": "1"}).returncode == 0


def test_train_resolves_an_exports_entries_only_beside_it(tmp_path):
    (tmp_path / "nets.py").write_text(OUTSIDE)
    study = write_study(tmp_path, "exported", model={"entry": "nets:build"}, epochs=1, n_trials=1,
                        search_space=["adam"], params={}, exclude=[])
    url = f"sqlite:///{tmp_path / 's.db'}"
    assert adamtune("run", str(study), "--storage", url).returncode == 0
    exported = json.loads(adamtune("export", "exported", "--storage", url).stdout)
    site_packages = str(Path(optuna.__file__).parents[1])  # an export's folder can name any folder
    for model, needle in [({"entry": "os:system"}, "module 'os' is not a file beside"),
                          ({"entry": "optuna.cli:main", "folder": site_packages},
                           "is an installed or standard-library module")]:
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps({**exported, "model": {**exported["model"], **model},
                                   "config": {**exported["config"], "model": model["entry"]}}))
        one_line_error(adamtune("train", str(bad), "--out", str(tmp_path / "m")), 2, f"{bad}: model.entry: ", needle,
                       "--trust-entries")
    assert not (tmp_path / "m").exists()


def test_outputs_on_a_read_only_or_full_file_system_are_one_line(tmp_path):
    """A read-only mount and /proc are refused before any work (root passes chmod, so a real read-only tmpfs);
    a disk that is full when the file is written is one line too (exit 1), and no half-written export stays."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    assert adamtune("run", str(write_study(tmp_path, "ro", n_trials=1, epochs=1)), "--storage", url).returncode == 0
    exported = tmp_path / "best.json"
    assert adamtune("export", "ro", "-o", str(exported), "--storage", url).returncode == 0
    with tmpfs(tmp_path / "ro_mount", read_only=True) as ro:
        for args, flag, target in [
            (["export", "ro", "-o"], "export -o", ro / "best.json"),
            (["export", "ro", "--format", "csv", "-o"], "export -o", ro / "trials.csv"),
            (["export", "ro", "-o"], "export -o", Path("/proc/best.json")),
            (["report", "ro", "-o"], "report -o", ro / "report"),
            (["train", str(exported), "--out"], "train --out", ro / "model"),
            (["train", str(exported), "--out"], "train --out", Path("/proc/model")),
        ]:
            result = adamtune(*args, str(target), *(["--storage", url] if args[0] != "train" else []))
            one_line_error(result, 2, f"{flag}: {target}: cannot be ")
            assert "training" not in result.stderr, "refused before training"
    with tmpfs(tmp_path / "full_mount", size="1m") as full:
        fill(full)
        for args, flag, target in [
            (["export", "ro", "-o"], "export -o", full / "best.json"),
            (["export", "ro", "--format", "csv", "-o"], "export -o", full / "trials.csv"),
            (["train", str(exported), "--out"], "train --out", full / "model"),
        ]:
            result = adamtune(*args, str(target), *(["--storage", url] if args[0] != "train" else []))
            assert result.returncode == 1, result.stderr
            assert result.stderr.splitlines()[-1].startswith(f"adamtune: error: {flag} {target}: writing failed: "
                                                             "No space left on device"), result.stderr
            assert "Traceback" not in result.stderr
            assert not target.is_file(), "no half-written export is left"


def test_a_path_with_a_name_longer_than_the_file_system_allows_is_one_line(tmp_path):
    """Names are bounded in bytes (255 on most file systems): 100 CJK characters are 300 bytes."""
    long = "字" * 100
    url = f"sqlite:///{tmp_path / 's.db'}"
    assert adamtune("run", str(write_study(tmp_path, "long", n_trials=1, epochs=1)), "--storage", url).returncode == 0
    exported = tmp_path / "best.json"
    assert adamtune("export", "long", "-o", str(exported), "--storage", url).returncode == 0
    for args, flag, target in [(["export", "long", "--storage", url, "-o"], "export -o", tmp_path / f"{long}.json"),
                               (["report", "long", "--storage", url, "-o"], "report -o", tmp_path / long),
                               (["train", str(exported), "--out"], "train --out", tmp_path / long / "model")]:
        one_line_error(adamtune(*args, str(target)), 2, f"{flag}: {target}: cannot be used: File name too long")
    study = write_study(tmp_path, "long_data", dataset={"type": "arrays", "path": f"{long}.npz"})
    one_line_error(adamtune("check", str(study)), 2,
                   f"{study}: dataset.path: {tmp_path / long}.npz: File name too long")
