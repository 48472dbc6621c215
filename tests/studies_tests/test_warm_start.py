"""`warm_start`: a new study queues the best configurations of an earlier study (in its own store or another)
and of exported trials after its baseline trial, fitted into its (changed) space, each queued once, marked
with where it came from; a missing or malformed source is one line, exit 2, nothing in the store."""

from __future__ import annotations

import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import optuna
import pytest
import sqlalchemy
from optuna_dashboard._note import get_note_from_system_attrs

from adamtune.results import StudyView
from adamtune.search_spaces import compose, fit_values
from adamtune.storage import open_storage
from adamtune.studies import StudyError, create_or_join, export_trial, load_study_file
from adamtune.studies._warm_start import warm_start_trials
from bad_input import one_line_error, row_count
from conftest import adamtune, postgres_url, study_view, write_study

SPACE = ["adam", "batch", "mlp"]
PARAMS = {"batch_size": {"choices": [32, 64]}, "width": {"choices": [32, 64], "default": 64}}
# The new space: a narrower lr range (values are clipped), elu no longer a choice (dropped), amsgrad gone.
NARROWER = {**PARAMS, "lr": {"low": 1.0e-3, "high": 3.0e-3}, "activation": {"choices": ["relu", "leaky_relu"]}}


def told_study(url: str, directory: Path, name: str, told: list[tuple[dict, float]], **changes) -> optuna.Study:
    """An adamtune study in `url` whose trials ran the given values (the rest at their defaults) and were
    told the given objective values, in that order: trial numbers 0, 1, ..."""
    spec = load_study_file(write_study(directory, name, search_space=SPACE, params=PARAMS, exclude=[],
                                       baseline=False, **changes))
    study, _ = create_or_join(spec, open_storage(url))
    for chosen, value in told:
        values = spec.space.start_values(chosen)
        study.enqueue_trial({p.optuna_name: p.internal_value(values[p.name]) for p in spec.space.params
                             if p.name in values and p.kind != "fixed"})
        trial = study.ask()
        spec.space.sample(trial)
        study.tell(trial, value)
    return study


def new_study(directory: Path, name: str, warm_start: dict, **changes) -> Path:
    settings = dict(search_space=SPACE, params=NARROWER, exclude=["amsgrad"], epochs=1,
                    sampler={"type": "random"}, warm_start=warm_start)
    return write_study(directory, name, **{**settings, **changes})


def write_export(study: optuna.Study, number: int, path: Path) -> None:
    view = StudyView.of(study)
    path.write_text(json.dumps(export_trial(view, next(t for t in view.trials if t.number == number))))


@pytest.fixture
def source_name(storage_url) -> str:
    """A unique name for a source study in `storage_url`, deleted afterwards (PostgreSQL is shared)."""
    name = f"src_{uuid.uuid4().hex[:10]}"
    yield name
    if name in optuna.study.get_all_study_names(storage_url):
        optuna.delete_study(study_name=name, storage=storage_url)


A = {"lr": 0.02, "amsgrad": True, "width": 32}  # best in the source; its lr lies above the new range
B = {"lr": 5e-4, "activation": "elu", "batch_size": 32}  # second; lr below the range, elu no longer a choice
C = {"lr": 2e-3, "optimizer": "adamw", "beta2": 0.99}  # third; fits as it is
D = {"lr": 1e-2}  # worst


@pytest.mark.slow  # two CLI processes
def test_a_new_study_in_another_store_starts_with_the_earlier_best_fitted_into_its_space(
        tmp_path, storage_url, study_name):
    source = f"sqlite:///{tmp_path / 'a.db'}"
    study = told_study(source, tmp_path, "src", [(D, 0.9), (B, 0.2), (A, 0.1), (C, 0.5)])  # A #2, B #1, C #3
    write_export(study, 3, tmp_path / "c.json")
    write_export(study, 2, tmp_path / "a.json")  # A again: queued once
    path = new_study(tmp_path, study_name, {"study": "src", "storage": source, "top": 2,
                                            "exports": ["c.json", "a.json"]}, n_trials=4)
    result = adamtune("run", str(path), "--storage", storage_url)
    assert result.returncode == 0, result.stderr
    said = result.stderr
    assert "warm start: 3 earlier configurations queued" in said
    assert (f"warm start: study src #2 ({source}): lr 0.02 -> 0.003 (clipped into [0.001, 0.003]); "
            "amsgrad dropped (not in this space)\n") in said
    assert (f"warm start: study src #1 ({source}): lr 0.0005 -> 0.001 (clipped into [0.001, 0.003]); activation "
            "'elu' dropped (not one of 'relu', 'leaky_relu'); amsgrad dropped (not in this space)\n") in said
    assert "warm start: export c.json (study src #3): amsgrad dropped (not in this space)\n" in said
    assert ("warm start: export a.json (study src #2): lr 0.02 -> 0.003 (clipped into [0.001, 0.003]); amsgrad "
            f"dropped (not in this space); the same configuration as study src #2 ({source}): queued once\n") in said

    trials = study_view(storage_url, study_name).trials
    assert [(t.number, t.state, t.baseline, t.warm_start) for t in trials] == [
        (0, "complete", True, None),
        (1, "complete", False, f"study src #2 ({source})"),
        (2, "complete", False, f"study src #1 ({source})"),
        (3, "complete", False, "export c.json (study src #3)"),
    ], "the baseline, the source's two best in its order, then the export; a.json not queued again"
    first, second, third = (t.params for t in trials[1:])
    assert (first["lr"], first["width"], "amsgrad" in first) == (0.003, 32, False)
    assert (second["lr"], second["batch_size"]) == (0.001, 32)
    assert second["activation"] in ("relu", "leaky_relu"), "a dropped choice is sampled afresh"
    assert (third["lr"], third["optimizer"], third["beta2"]) == (0.002, "adamw", pytest.approx(0.99))

    listed = adamtune("trials", study_name, "--storage", storage_url)
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if line.startswith("1 "))
    assert row.endswith(f"warm start: study src #2 ({source})"), listed.stdout
    loaded = optuna.load_study(study_name=study_name, storage=storage_url)
    frozen = {t.number: t for t in loaded.get_trials()}
    attrs = loaded._storage.get_study_system_attrs(loaded._study_id)  # where the dashboard reads notes
    note = get_note_from_system_attrs(attrs, frozen[3]._trial_id)["body"]
    assert "warm start: export c.json (study src #3)" in note, note


def test_values_outside_the_new_space_are_clipped_or_dropped():
    space = compose(SPACE, {**NARROWER, "width": {"type": "int", "low": 16, "high": 128, "step": 16},
                            "batch_size": {"type": "fixed", "value": 64},
                            "dropout": {"type": "float", "low": 0.0, "high": 0.5, "step": 0.1}},
                    exclude=["amsgrad"])
    fitted = fit_values(space, {"lr": 1e-5, "beta2": 0.99999, "eps": "tiny", "activation": "elu", "width": 100,
                                "dropout": 0.27, "batch_size": 32, "use_weight_decay": False,
                                "weight_decay": 0.01, "amsgrad": True})
    assert fitted.stored == {"lr": 0.001, "one_minus_beta2": 0.0001, "width": 96, "dropout": 0.3,
                             "use_weight_decay": False}
    assert fitted.changes == (
        "lr 1e-05 -> 0.001 (clipped into [0.001, 0.003])",
        "beta2 0.99999 -> 0.9999 (clipped into [0.9, 0.9999])",
        "eps 'tiny' dropped (not a number, float here)",
        "batch_size 32 dropped (fixed at 64 here)",
        "width 100 -> 96 (onto steps of 16)",
        "activation 'elu' dropped (not one of 'relu', 'leaky_relu')",
        "dropout 0.27 -> 0.3 (onto steps of 0.1)",
        "weight_decay 0.01 dropped (off unless use_weight_decay in [True])",  # a child follows its parents
        "amsgrad dropped (not in this space)",
    )
    assert fit_values(space, {"width": 300.0, "weight_decay": 0.01}).stored == {"width": 128, "weight_decay": 0.01}, \
        "clipped to the last step; a child whose parent is left to the sampler keeps its value"


@pytest.mark.parametrize("objective,expected", [("val_loss", [2, 0, 3]), ("val_accuracy", [1, 3, 0])])
def test_top_k_are_the_earlier_studys_best_in_its_own_direction(tmp_path, storage_url, source_name, objective,
                                                                expected):
    lrs = [1.1e-3, 1.2e-3, 1.3e-3, 1.4e-3]
    told = [({"lr": lr}, value) for lr, value in zip(lrs, [0.3, 0.9, 0.1, 0.6], strict=True)]
    told_study(storage_url, tmp_path, source_name, told, objective=objective)
    spec = load_study_file(new_study(tmp_path, "new", {"study": source_name, "top": 3}))  # the same store
    trials = warm_start_trials(spec, storage_url)
    assert [t.origin for t in trials] == [f"study {source_name} #{n}" for n in expected]
    assert [t.stored["lr"] for t in trials] == [lrs[n] for n in expected]


def test_exports_giving_the_same_configuration_or_the_baselines_are_queued_once(tmp_path):
    spec = load_study_file(new_study(tmp_path, "new", {"exports": ["x.json", "y.json", "z.json"]}))
    same = {"lr": 2e-3, "width": 32}
    baseline = {**spec.space.start_values(), "amsgrad": False}  # the defaults, and one the space no longer has
    for name, params in (("x.json", same), ("y.json", same), ("z.json", baseline)):
        (tmp_path / name).write_text(json.dumps({"params": params}))
    trials = warm_start_trials(spec, "sqlite:///unused.db")  # exports only: no store is read
    assert [(t.origin, t.skipped) for t in trials] == [
        ("export x.json", None),
        ("export y.json", "the same configuration as export x.json: queued once"),
        ("export z.json", "the same configuration as the baseline trial: queued once"),
    ]


def test_workers_starting_together_queue_the_warm_start_once(tmp_path, storage_url, study_name):
    source = f"sqlite:///{tmp_path / 'a.db'}"
    told_study(source, tmp_path, "src", [(A, 0.1), (C, 0.2), (D, 0.3)])
    spec = load_study_file(new_study(tmp_path, study_name, {"study": "src", "storage": source, "top": 3}))
    warm = warm_start_trials(spec, storage_url)
    workers = 4
    ready = threading.Barrier(workers)

    def start_worker(_: int) -> bool:
        storage = open_storage(storage_url)
        ready.wait()
        return create_or_join(spec, storage, warm)[1]

    with ThreadPoolExecutor(workers) as pool:
        created = list(pool.map(start_worker, range(workers)))
    assert created.count(True) == 1
    queued = optuna.load_study(study_name=study_name, storage=storage_url).get_trials()
    assert [(t.user_attrs.get("baseline"), t.user_attrs.get("warm_start")) for t in queued] == [
        (True, None), (None, f"study src #0 ({source})"), (None, f"study src #1 ({source})"),
        (None, f"study src #2 ({source})")]


@pytest.mark.postgres
def test_the_earlier_studys_store_is_shown_without_its_password(tmp_path):
    url = postgres_url()
    name = f"src_{uuid.uuid4().hex[:10]}"
    with_password = sqlalchemy.make_url(url).set(password="hunter2").render_as_string(hide_password=False)
    try:
        told_study(url, tmp_path, name, [(A, 0.1)])
        spec = load_study_file(new_study(tmp_path, "new", {"study": name, "storage": with_password}))
        (trial,) = warm_start_trials(spec, f"sqlite:///{tmp_path / 'b.db'}")
        assert "hunter2" not in trial.origin and ":***@" in trial.origin
        gone = load_study_file(new_study(tmp_path, "new", {"study": "nope", "storage": with_password}))
        with pytest.raises(StudyError) as info:
            warm_start_trials(gone, f"sqlite:///{tmp_path / 'b.db'}")
        assert "hunter2" not in str(info.value) and ":***@" in str(info.value)
    finally:
        optuna.delete_study(study_name=name, storage=url)


BAD_WARM_STARTS = [
    ([], "warm_start", "a mapping"),
    ({"study": "src", "best": 3}, "warm_start.best", "unknown key"),
    ({"study": "src", "top": 0}, "warm_start.top", "an integer from 1 to 1000"),
    ({"top": 3}, "warm_start.study", "storage and top choose trials of an earlier study"),
    ({"study": "src", "storage": " "}, "warm_start.storage", "the URL of the earlier study's store"),
    ({"exports": "best.json"}, "warm_start.exports", "a list of files"),
    ({"exports": []}, "warm_start", "names an earlier study, exports, or both"),
]


@pytest.mark.parametrize("warm_start,key,reason", BAD_WARM_STARTS, ids=[b[1] + ":" + b[2] for b in BAD_WARM_STARTS])
def test_a_bad_warm_start_names_the_study_file_and_key(tmp_path, warm_start, key, reason):
    with pytest.raises(StudyError) as info:
        load_study_file(new_study(tmp_path, "new", warm_start))
    assert (info.value.key, reason in info.value.reason) == (key, True), str(info.value)


SOURCES = {
    "no such study": ({"study": "nope", "storage": "{a}"}, "warm_start.study: no study 'nope' in sqlite:///{tmp}/a.db"),
    "no complete trial": ({"study": "empty", "storage": "{a}"},
                          "warm_start.study: study 'empty' in sqlite:///{tmp}/a.db has no complete trial"),
    "no such store": ({"study": "src", "storage": "sqlite:///{tmp}/missing.db"},
                      "warm_start.storage: no study store at sqlite:///{tmp}/missing.db: the file does not exist"),
    "export missing": ({"exports": ["gone.json"]}, "warm_start.exports[0]: {tmp}/gone.json: file not found"),
    "export not JSON": ({"exports": ["a.json", "broken.json"]},
                        "warm_start.exports[1]: {tmp}/broken.json: not valid JSON"),
    "export without params": ({"exports": ["config.json"]},
                              "warm_start.exports[0]: {tmp}/config.json: not a file written by `adamtune export`"),
}


def sources(tmp_path: Path, case: str) -> tuple[Path, str]:
    """An earlier study (and an empty one) in a.db, an export and two files that are not; the study file of
    `case`, and the error it should give."""
    source = f"sqlite:///{tmp_path / 'a.db'}"
    told_study(source, tmp_path, "src", [(A, 0.1)])
    optuna.create_study(storage=source, study_name="empty")
    (tmp_path / "a.json").write_text(json.dumps({"params": A}))
    (tmp_path / "broken.json").write_text('{"params": {"lr": 0.1,}}')
    (tmp_path / "config.json").write_text(json.dumps({"trial": 0, "lr": 0.1}))
    warm_start, expected = SOURCES[case]
    warm_start = json.loads(json.dumps(warm_start).replace("{a}", source).replace("{tmp}", str(tmp_path)))
    path = new_study(tmp_path, "new", warm_start)
    return path, f"{path}: " + expected.replace("{tmp}", str(tmp_path))


@pytest.mark.parametrize("case", SOURCES)
def test_a_missing_or_malformed_source_names_the_study_file_key_and_file(tmp_path, case):
    path, expected = sources(tmp_path, case)
    with pytest.raises(StudyError) as info:
        warm_start_trials(load_study_file(path), f"sqlite:///{tmp_path / 'b.db'}")
    assert str(info.value).startswith(expected), str(info.value)
    assert not (tmp_path / "missing.db").exists(), "a missing store is not created by looking into it"


@pytest.mark.slow  # a CLI process
def test_a_missing_source_is_one_line_exit_2_and_nothing_written(tmp_path, own_store_url):
    path, expected = sources(tmp_path, "no such study")
    before = row_count(own_store_url)
    result = adamtune("run", str(path), "--storage", own_store_url)
    one_line_error(result, 2, expected)
    assert result.stderr.count("\n") == 1, "nothing said before the error"
    assert row_count(own_store_url) == before
    if own_store_url.startswith("sqlite"):
        assert not (tmp_path / "studies.db").exists()
