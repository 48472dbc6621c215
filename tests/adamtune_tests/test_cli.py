"""The command line end to end, as a user runs it, on an SQLite file and on the real PostgreSQL."""

from __future__ import annotations

import json
import re
import subprocess

import optuna
import pytest
import torch
from optuna.trial import TrialState

from adamtune.training import TrainConfig
from conftest import ADAMTUNE, REPO, adamtune, postgres_url, write_study

pytestmark = pytest.mark.slow  # the CLI end to end, studies included

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def load(url: str, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=url)


def test_run_join_export_and_train_round_trip(tmp_path, storage_url, study_name):
    study_file = write_study(tmp_path, study_name)
    first = adamtune("run", str(study_file), "--storage", storage_url)
    assert first.returncode == 0, first.stderr
    assert f"created study {study_name!r}" in first.stdout
    study = load(storage_url, study_name)
    assert len(study.get_trials(states=FINISHED)) == 4
    assert study.trials[0].user_attrs["baseline"] is True

    joined = adamtune("run", str(study_file), "--storage", storage_url, "--n-trials", "6")
    assert joined.returncode == 0, joined.stderr
    assert f"joined study {study_name!r}" in joined.stdout
    study = load(storage_url, study_name)
    assert len(study.get_trials(states=FINISHED)) == 6
    assert sum(bool(t.user_attrs.get("baseline")) for t in study.trials) == 1, "joining adds no second baseline"

    listed = adamtune("studies", "--storage", storage_url)
    assert listed.returncode == 0 and study_name in listed.stdout
    trials = adamtune("trials", study_name, "--storage", storage_url)
    assert trials.returncode == 0 and "baseline" in trials.stdout and trials.stdout.count("complete") >= 1
    shown = adamtune("best", study_name, "--storage", storage_url)
    assert shown.returncode == 0 and f"best trial #{study.best_trial.number} sampled" in shown.stdout

    out = tmp_path / "best.json"
    exported = adamtune("export", study_name, "-o", str(out), "--storage", storage_url)
    assert exported.returncode == 0, exported.stderr
    best = json.loads(out.read_text())
    assert set(best) == {"study", "trial", "value", "params", "config", "metrics", "versions"}
    assert best["study"] == study_name and best["trial"] == study.best_trial.number
    assert best["value"] == study.best_value
    assert "beta2" in best["params"] and "one_minus_beta2" not in best["params"]
    assert 0.9 <= best["params"]["beta2"] < 1
    assert set(best["config"]) == set(TrainConfig.field_names())
    assert best["config"]["beta2"] == best["params"]["beta2"]
    assert set(best["versions"]) == {"adamtune", "torch", "optuna"}
    assert best["metrics"]["val_loss"] == best["value"]

    validated = adamtune("train", str(out), "--validate", "--out", str(tmp_path / "v"))
    assert validated.returncode == 0, validated.stderr
    reproduced = json.loads((tmp_path / "v" / "metrics.json").read_text())["val_loss"]
    assert reproduced == pytest.approx(best["value"], rel=1e-5), "--validate reproduces the trial on CPU"

    trained = adamtune("train", str(out), "--out", str(tmp_path / "m"))
    assert trained.returncode == 0, trained.stderr
    assert "test accuracy" in trained.stdout
    metrics = json.loads((tmp_path / "m" / "metrics.json").read_text())
    # 0.88 and 0.69 on this study's best trial (its draws since each trial's sampler has a seed of its own;
    # 0.97 and 0.14 before); chance is 0.1 and ln 10 = 2.3.
    assert metrics["test_accuracy"] > 0.8 and 0 < metrics["test_loss"] < 1.0
    assert json.loads((tmp_path / "m" / "config.json").read_text()) == best["config"]
    weights = torch.load(tmp_path / "m" / "model.pt", weights_only=True)
    assert weights["1.weight"].shape == (best["config"]["width"], 64)


def test_store_comes_from_flag_then_environment_then_local_sqlite(tmp_path):
    study_file = write_study(tmp_path, "where", n_trials=1, epochs=1)
    env_db = tmp_path / "env.db"
    assert adamtune("run", str(study_file), cwd=tmp_path,
                    env={"ADAMTUNE_STORAGE": f"sqlite:///{env_db}"}).returncode == 0
    assert env_db.exists() and not (tmp_path / "adamtune.db").exists()
    assert adamtune("run", str(study_file), cwd=tmp_path).returncode == 0
    assert "where" in optuna.study.get_all_study_names(f"sqlite:///{tmp_path / 'adamtune.db'}")


def test_an_empty_storage_secret_is_one_line_exit_2_and_no_local_store(tmp_path):
    """A broken container secret (an empty file, an empty variable) must not train into ./adamtune.db."""
    study_file = write_study(tmp_path, "nowhere", n_trials=1, epochs=1)
    empty = tmp_path / "secret"
    empty.write_text("\n")
    for env in ({"ADAMTUNE_STORAGE_FILE": str(empty)}, {"ADAMTUNE_STORAGE_FILE": " "}, {"ADAMTUNE_STORAGE": ""}):
        for args in (("run", str(study_file)), ("studies",)):
            out = adamtune(*args, cwd=tmp_path, env=env)
            assert out.returncode == 2, (env, out.stderr)
            [line] = out.stderr.strip().splitlines()
            assert line.startswith("adamtune: error: ") and "ADAMTUNE_STORAGE" in line and "is empty" in line, line
    out = adamtune("studies", "--storage", "", cwd=tmp_path)
    assert out.returncode == 2 and "--storage: URL: is empty" in out.stderr, out.stderr
    assert not (tmp_path / "adamtune.db").exists()


@pytest.mark.postgres
def test_passwords_never_appear_in_output(tmp_path):
    url = postgres_url()
    scheme, rest = url.split("://", 1)
    user_host = rest.split("@", 1)[-1]
    user = rest.split("@", 1)[0].split(":")[0] if "@" in rest else "postgres"
    secret_url = f"{scheme}://{user}:Sup3rS3cret@{user_host}"  # trust auth accepts any password
    name = "pw_" + tmp_path.name[-8:].replace("-", "_")
    study_file = write_study(tmp_path, name, n_trials=1, epochs=1)
    try:
        outputs = [adamtune("run", str(study_file), "--storage", secret_url),
                   adamtune("studies", "--storage", secret_url),
                   adamtune("trials", name, "--storage", secret_url),
                   adamtune("export", name, "--storage", secret_url),
                   adamtune("trials", "nope", "--storage", secret_url),
                   adamtune("studies", "--storage", secret_url.replace(":5432", ":1"))]
        assert [o.returncode for o in outputs] == [0, 0, 0, 0, 2, 1]
        for o in outputs:
            assert "Sup3rS3cret" not in o.stdout + o.stderr
        assert "***" in outputs[0].stderr and "***" in outputs[-1].stderr
    finally:
        if name in optuna.study.get_all_study_names(url):
            optuna.delete_study(study_name=name, storage=url)


def test_quickstart_study_reaches_95_percent_test_accuracy(tmp_path):
    """README's quickstart, word for word: run the shipped study, export, train."""
    assert adamtune("run", str(REPO / "studies" / "digits_mlp.yaml"), cwd=tmp_path).returncode == 0
    assert adamtune("export", "digits_mlp", "-o", "best.json", cwd=tmp_path).returncode == 0
    trained = adamtune("train", "best.json", "--out", "model", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    assert json.loads((tmp_path / "model" / "metrics.json").read_text())["test_accuracy"] >= 0.95


def test_a_reader_that_closes_the_pipe_gets_no_traceback(tmp_path):
    path = write_study(tmp_path, "piped")
    result = subprocess.run(f"'{ADAMTUNE}' check '{path}' | head -1", shell=True, capture_output=True, text=True,
                            executable="/bin/bash")
    assert result.stdout.startswith(f"{path}: ok") and result.stderr == ""


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A study of 4 finished trials whose budget is spent, and a fifth trial that failed (told FAIL through
    Optuna on the same store): (folder, storage URL, study file)."""
    folder = tmp_path_factory.mktemp("finished")
    url = f"sqlite:///{folder / 'finished.db'}"
    study_file = write_study(folder, "finished", n_trials=4, epochs=3)
    ran = adamtune("run", str(study_file), "--storage", url)
    assert ran.returncode == 0, ran.stderr
    study = load(url, "finished")
    study.tell(study.ask(), state=TrialState.FAIL)
    return folder, url, study_file


def test_a_chosen_trial_is_exported_and_trained_and_one_that_did_not_complete_is_refused(finished, tmp_path):
    _, url, _ = finished
    baseline = adamtune("export", "finished", "--trial", "0", "-o", str(tmp_path / "baseline.json"), "--storage", url)
    assert baseline.returncode == 0, baseline.stderr
    assert baseline.stderr == f"wrote trial #0 of 'finished' to {tmp_path / 'baseline.json'}\n"
    exported = json.loads((tmp_path / "baseline.json").read_text())
    assert exported["trial"] == 0 and exported["config"]["lr"] == 1e-3 and exported["config"]["batch_size"] == 64
    assert exported["value"] == load(url, "finished").trials[0].value

    for trial, reason in (("4", "trial 4 failed; only a complete trial can be exported (adamtune trials finished "
                                "--state complete lists them)"),
                          ("9", "there is no trial 9 (the study holds trials 0 to 4)")):
        refused = adamtune("export", "finished", "--trial", trial, "-o", str(tmp_path / "x.json"), "--storage", url)
        assert (refused.returncode, refused.stderr) == (2, f"adamtune: error: study 'finished': --trial: {reason}\n")
        assert not (tmp_path / "x.json").exists()

    top = tmp_path / "top.json"
    assert adamtune("export", "finished", "--top", "2", "-o", str(top), "--storage", url).returncode == 0
    second = json.loads(top.read_text())[1]
    unchosen = adamtune("train", str(top), "--out", str(tmp_path / "m"))
    numbers = ", ".join(str(t["trial"]) for t in json.loads(top.read_text()))
    assert (unchosen.returncode, unchosen.stderr) == (2, f"adamtune: error: {top}: <json>: a list of 2 exported "
                                                         f"trials (`export --top`: trials {numbers}); choose one with "
                                                         "--trial N\n")
    validated = adamtune("train", str(top), "--trial", str(second["trial"]), "--validate", "--out", str(tmp_path / "v"))
    assert validated.returncode == 0, validated.stderr
    assert json.loads((tmp_path / "v" / "metrics.json").read_text())["val_loss"] == pytest.approx(second["value"],
                                                                                                  rel=1e-5)


def test_running_a_spent_study_again_says_that_n_trials_raises_its_budget(finished):
    _, url, study_file = finished
    again = adamtune("run", str(study_file), "--storage", url)
    assert again.returncode == 0, again.stderr
    first, second = again.stdout.splitlines()[:2]
    assert first.startswith("joined study 'finished': this worker finished 0 trials in ")
    assert second == "its budget of 4 finished trials was already spent: --n-trials N with N above 4 runs more"
    more = adamtune("run", str(study_file), "--storage", url, "--n-trials", "5")
    assert more.returncode == 0 and "this worker finished 1 trials" in more.stdout
    assert "already spent" not in more.stdout


def test_trials_limit_says_it_shows_the_latest_trials_not_the_baseline(finished):
    _, url, _ = finished
    listed = adamtune("trials", "finished", "--limit", "2", "--storage", url)
    assert listed.returncode == 0, listed.stderr
    table, footer = listed.stdout.split("\n\n")
    numbers = [int(line.split()[0]) for line in table.splitlines()[2:]]
    total = len(load(url, "finished").trials)
    assert numbers == [total - 2, total - 1] and "baseline" not in table
    assert re.fullmatch(rf"2 of {total} trials \(.*\): the 2 latest; --all for every trial, --state STATE for one "
                        r"state, --limit N for the N latest\n", footer), footer


def test_workers_print_one_summary_of_the_study(tmp_path):
    study_file = write_study(tmp_path, "together", n_trials=4, epochs=2)
    ran = adamtune("run", str(study_file), "--workers", "2", "--storage", f"sqlite:///{tmp_path / 'w.db'}")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.count("best trial #") == 1 and ran.stdout.count("the study holds") == 1, ran.stdout
    assert re.match(r"2 workers on study 'together' finished in [0-9.]+s wall time; the study holds \d+ complete",
                    ran.stdout), ran.stdout
    assert "this worker finished" not in ran.stdout + ran.stderr
