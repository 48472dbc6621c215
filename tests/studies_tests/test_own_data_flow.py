"""The user's own data and model through the whole service: run, the study record, export, `train` from
another directory, a changed data set refused by `train` and by a joining worker."""

from __future__ import annotations

import json
import shutil

import optuna
import pytest
import torch

from adamtune.data import DataSource, load_dataset
from conftest import adamtune, write_study
from own_data import write_digit_images, write_images, write_module

pytestmark = pytest.mark.slow  # runs the adamtune command or trains studies

OWN_MODEL = {"model": {"entry": "my_nets:build", "hidden": 8}, "search_space": ["adam", "batch"], "exclude": [],
             "params": {"batch_size": {"choices": [32, 64]},
                        "units": {"type": "categorical", "choices": [16, 32], "default": 16}}}


def fingerprint(folder, cache) -> str:
    source = DataSource.parse({"type": "image_folder", "path": str(folder)}, origin="test", folder=folder)
    return load_dataset(source, cache).fingerprint


def test_image_folder_with_own_model_runs_exports_and_trains_from_anywhere(tmp_path):
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    write_digit_images(project / "digits", per_class=30)
    write_module(project)
    elsewhere.mkdir()
    study_file = write_study(project, "own_flow", dataset={"type": "image_folder", "path": "digits"}, n_trials=3,
                             epochs=3, **OWN_MODEL)
    env, url = {"ADAMTUNE_DATA": str(tmp_path / "cache")}, f"sqlite:///{tmp_path / 'own.db'}"
    ran = adamtune("run", str(study_file), "--storage", url, env=env)
    assert ran.returncode == 0, ran.stderr
    study = optuna.load_study(study_name="own_flow", storage=url)
    stored = study.user_attrs["spec"]
    expected = fingerprint(project / "digits", tmp_path / "cache")
    split = {"seed": 0, "test": 0.2, "val": 0.2}  # neither part given: the seeded 20% splits
    assert stored["dataset"] == {"type": "image_folder", "path": "digits", "fingerprint": expected,
                                 "classes": [str(i) for i in range(10)], "split": split}
    assert stored["model"] == {"entry": "my_nets:build", "kwargs": {"hidden": 8}} and stored["root"] == str(project)
    assert all(t.params["units"] in (16, 32) for t in study.trials), "the model's own parameter is searched"
    assert not {"dataset", "data", "model", "fingerprint"} & {k for t in study.trials for k in t.user_attrs}

    out = tmp_path / "exports" / "best.json"
    out.parent.mkdir()
    assert adamtune("export", "own_flow", "-o", str(out), "--storage", url).returncode == 0
    best = json.loads(out.read_text())
    assert best["data"] == {"type": "image_folder", "path": str(project / "digits"), "fingerprint": expected,
                            "classes": [str(i) for i in range(10)], "split": split}
    assert best["model"]["entry"] == "my_nets:build" and best["model"]["kwargs"] == {"hidden": 8}
    assert best["model"]["params"]["units"] == best["params"]["units"] and best["model"]["folder"] == str(project)
    assert best["config"]["model"] == "my_nets:build" and best["config"]["dataset"] == "image_folder"

    validated = adamtune("train", str(out), "--validate", "--out", "v", cwd=elsewhere, env=env)
    assert validated.returncode == 0, validated.stderr
    reproduced = json.loads((elsewhere / "v" / "metrics.json").read_text())["val_loss"]
    assert reproduced == pytest.approx(best["value"], rel=1e-5), "--validate reproduces the trial on CPU"
    trained = adamtune("train", str(out), "--out", "m", cwd=elsewhere, env=env)
    assert trained.returncode == 0, trained.stderr
    assert json.loads((elsewhere / "m" / "metrics.json").read_text())["test_accuracy"] > 0.5
    weights = torch.load(elsewhere / "m" / "model.pt", weights_only=True)
    assert weights["1.weight"].shape == (best["params"]["units"], 64), "train rebuilt the trial's own model"

    moved = tmp_path / "moved"  # data, module and export moved together: relative to the export file
    shutil.copytree(project, moved)
    (moved / "best.json").write_text(json.dumps({**best, "data": {**best["data"], "path": "digits"},
                                                 "model": {**best["model"], "folder": "."}}))
    shutil.rmtree(project)
    again = adamtune("train", str(moved / "best.json"), "--validate", "--out", "v2", cwd=elsewhere, env=env)
    assert again.returncode == 0, again.stderr
    assert json.loads((elsewhere / "v2" / "metrics.json").read_text())["val_loss"] == pytest.approx(reproduced)

    write_images(moved / "digits", {"3": 1}, seed=7)  # one image's pixels change
    changed = fingerprint(moved / "digits", tmp_path / "cache")
    refused = adamtune("train", str(moved / "best.json"), "--out", "r", cwd=elsewhere, env=env)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert (f"best.json: data.fingerprint: the data changed since the study ran: the export records fingerprint "
            f"{expected}") in refused.stderr and f"now has {changed}; pass --allow-changed-data" in refused.stderr
    assert not (elsewhere / "r").exists()
    allowed = adamtune("train", str(moved / "best.json"), "--out", "r", "--allow-changed-data", cwd=elsewhere,
                       env=env)
    assert allowed.returncode == 0 and "warning: the data changed" in allowed.stderr


def test_a_worker_with_different_data_is_refused_before_it_trains(tmp_path, storage_url, study_name):
    first, second = tmp_path / "first", tmp_path / "second"
    write_images(first / "pets", {"cat": 10, "dog": 10})
    shutil.copytree(first / "pets", second / "pets")
    write_images(second / "pets", {"cat": 1}, seed=5)  # the second machine's cat/000.png differs
    changes = {"dataset": {"type": "image_folder", "path": "pets"}, "n_trials": 1, "epochs": 1}
    env = {"ADAMTUNE_DATA": str(tmp_path / "cache")}
    assert adamtune("run", str(write_study(first, study_name, **changes)), "--storage", storage_url,
                    env=env).returncode == 0
    theirs, ours = (fingerprint(f / "pets", tmp_path / "cache") for f in (first, second))
    refused = adamtune("run", str(write_study(second, study_name, **changes)), "--storage", storage_url,
                       "--n-trials", "3", env=env)
    assert refused.returncode == 2, refused.stderr
    assert (f"dataset: study {study_name!r} was made on data with fingerprint {theirs}, but this worker's data "
            f"(image_folder pets) has fingerprint {ours}") in refused.stderr
    assert len(optuna.load_study(study_name=study_name, storage=storage_url).trials) == 1


def test_python_entry_point_data_run_export_and_validate(tmp_path):
    write_module(tmp_path, "my_data")
    study_file = write_study(tmp_path, "own_py", dataset={"type": "python", "entry": "my_data:load", "n": 300},
                             search_space=["adam", "batch", "mlp"], exclude=[], n_trials=2, epochs=2)
    env, url = {"ADAMTUNE_DATA": str(tmp_path / "cache")}, f"sqlite:///{tmp_path / 'py.db'}"
    assert adamtune("run", str(study_file), "--storage", url, env=env).returncode == 0
    assert adamtune("export", "own_py", "-o", str(tmp_path / "best.json"), "--storage", url).returncode == 0
    best = json.loads((tmp_path / "best.json").read_text())
    assert {k: best["data"][k] for k in ("type", "entry", "n")} == {"type": "python", "entry": "my_data:load",
                                                                    "n": 300}
    assert len(best["data"]["fingerprint"]) == 16 and "model" not in best, "a built-in model needs no section"
    (tmp_path / "other").mkdir()
    validated = adamtune("train", str(tmp_path / "best.json"), "--validate", "--out", "v", cwd=tmp_path / "other",
                         env=env)
    assert validated.returncode == 0, validated.stderr
    assert json.loads((tmp_path / "other" / "v" / "metrics.json").read_text())["val_loss"] == pytest.approx(
        best["value"], rel=1e-5)


def test_a_worker_whose_file_was_rewritten_with_the_same_size_and_mtime_is_refused(tmp_path, storage_url,
                                                                                   study_name):
    """One machine, one data cache: a file rewritten in place with its size and mtime kept (BMP files of one
    size take the same bytes; the mtime restored as `cp -p` or `touch -r` does) must not join the study
    made on the old contents through the old cache entry."""
    import os

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        (tmp_path / "pets" / cls).mkdir(parents=True)
        for i in range(10):
            Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(tmp_path / "pets" / cls / f"{i}.bmp")
    study = write_study(tmp_path, study_name, dataset={"type": "image_folder", "path": "pets"}, n_trials=1, epochs=1)
    env = {"ADAMTUNE_DATA": str(tmp_path / "cache")}
    assert adamtune("run", str(study), "--storage", storage_url, env=env).returncode == 0
    theirs = fingerprint(tmp_path / "pets", tmp_path / "cache")
    path = tmp_path / "pets" / "cat" / "0.bmp"
    before = path.stat()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(path)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    refused = adamtune("run", str(study), "--storage", storage_url, "--n-trials", "3", env=env)
    ours = fingerprint(tmp_path / "pets", tmp_path / "fresh-cache")
    assert ours != theirs
    assert refused.returncode == 2, refused.stderr
    assert (f"dataset: study {study_name!r} was made on data with fingerprint {theirs}, but this worker's data "
            f"(image_folder pets) has fingerprint {ours}") in refused.stderr
    assert len(optuna.load_study(study_name=study_name, storage=storage_url).trials) == 1
