"""The study file's JSON Schema: `adamtune schema` writes it from the rules `check` applies, the shipped copy is
that output, every shipped study points an editor at it and passes it, and a bad study fails it and `check`."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from adamtune.errors import InputError
from adamtune.studies import SCHEMA_FILE, load_study_file, study_schema
from bad_input import one_line_error
from conftest import REPO, adamtune, write_study

SHIPPED = sorted([*(REPO / "studies").glob("*.yaml"), *(REPO / "examples").glob("**/*.yaml")])
MODELINE = "# yaml-language-server: $schema="
REGENERATE = f"run `adamtune schema --out {SCHEMA_FILE}` and commit it"


def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads((REPO / SCHEMA_FILE).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_the_shipped_schema_is_what_adamtune_schema_generates():
    assert json.loads((REPO / SCHEMA_FILE).read_text()) == study_schema(), f"{SCHEMA_FILE} is out of date: {REGENERATE}"


@pytest.mark.slow  # starts the command line
def test_adamtune_schema_prints_and_writes_the_shipped_copy(tmp_path):
    shipped = (REPO / SCHEMA_FILE).read_text()
    printed = adamtune("schema")
    assert printed.returncode == 0 and printed.stdout == shipped, f"{SCHEMA_FILE} is out of date: {REGENERATE}"
    written = adamtune("schema", "--out", str(tmp_path / "study.schema.json"))
    assert written.returncode == 0 and written.stdout == "", written.stderr
    assert (tmp_path / "study.schema.json").read_text() == shipped


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(REPO)))
def test_every_shipped_study_points_an_editor_at_the_schema_and_passes_it(path: Path):
    first = path.read_text().splitlines()[0]
    assert first.startswith(MODELINE), f"{path}: the first line should be `{MODELINE}<relative path>`"
    assert (path.parent / first[len(MODELINE):]).resolve() == REPO / SCHEMA_FILE
    errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator().iter_errors(
        yaml.safe_load(path.read_text()))]
    assert errors == []


# Each changes one key of a valid study: (changes, the key `check` names, the start of its reason).
BAD_STUDIES = {
    "unknown key": ({"learning_rate": 0.1}, "learning_rate", "unknown key (allowed: "),
    "epochs a string": ({"epochs": "ten"}, "epochs", "an integer from 1 to 10000, got 'ten'"),
    "epochs 0": ({"epochs": 0}, "epochs", "an integer from 1 to 10000, got 0"),
    "epochs above the limit": ({"epochs": 10001}, "epochs", "an integer from 1 to 10000, got 10001"),
    "seed a bool": ({"seed": True}, "seed", "an integer from 0 to 4294967295, got True"),
    "name empty": ({"name": ""}, "name", "required, a non-empty string"),
    "description a number": ({"description": 5}, "description", "a string, got 5"),
    "timeout 0": ({"timeout": 0}, "timeout", "seconds > 0 and <= 1e+09, or null, got 0"),
    "baseline yes": ({"baseline": "yes"}, "baseline", "true or false, got 'yes'"),
    "search_space a string": ({"search_space": "adam"}, "search_space", "a list of fragment names or paths"),
    "heartbeat unknown key": ({"heartbeat": {"interval": 10, "beat": 3}}, "heartbeat.beat", "unknown key"),
    "heartbeat a number": ({"heartbeat": 30}, "heartbeat", "a mapping with interval, grace_period and max_retry"),
    "heartbeat interval 0": ({"heartbeat": {"interval": 0}}, "heartbeat.interval", "a whole number of seconds"),
    "artifacts keep_checkpoints yes": ({"artifacts": {"keep_checkpoints": "yes"}}, "artifacts.keep_checkpoints",
                                       "true or false"),
    "sampler a list": ({"sampler": ["tpe"]}, "sampler", "a name or a mapping with 'type' and options"),
    "sampler type a number": ({"sampler": {"type": 5}}, "sampler.type", "must be one of tpe, random"),
    "sampler unknown": ({"sampler": "bayes"}, "sampler.type", "must be one of tpe, random"),
    "pruner unknown": ({"pruner": {"type": "early"}}, "pruner.type", "must be one of median"),
    "pack 0": ({"pack": 0}, "pack", "trials trained at once: auto or an integer from 1 to 256, got 0"),
    "objective a number": ({"objective": 5}, "objective", "val_ and a metric (loss, accuracy"),
    "objective direction": ({"objective": {"entry": "mine:score", "direction": "up"}}, "objective.direction",
                            "minimize or maximize"),
    "objective unknown key": ({"objective": {"entry": "mine:score", "better": "up"}}, "objective.better",
                              "unknown key (allowed: direction, entry)"),
    "direction sideways": ({"direction": "sideways"}, "direction", "minimize or maximize, got 'sideways'"),
    "task": ({"task": "ranking"}, "task", "one of classification, regression, multilabel"),
    "warm_start a list": ({"warm_start": ["src"]}, "warm_start", "a mapping"),
    "warm_start unknown key": ({"warm_start": {"study": "src", "best": 3}}, "warm_start.best", "unknown key"),
    "dataset unknown": ({"dataset": "imagenet"}, "dataset", "must be one of digits"),
    "dataset unknown key": ({"dataset": {"type": "image_folder", "path": ".", "resize": 8}}, "dataset.resize",
                            "unknown key for image_folder data"),
    "dataset channels": ({"dataset": {"type": "image_folder", "path": ".", "channels": 2}}, "dataset.channels",
                         "1 (grey) or 3 (RGB)"),
    "model without entry": ({"model": {"kernel_size": 3}}, "model.entry", "required"),
    "param unknown key": ({"params": {"lr": {"lo": 1e-4}}}, "params.lr.lo", "unknown key for a float parameter"),
    "param key of another kind": ({"params": {"lr": {"type": "float", "low": 1e-4, "high": 1e-2, "choices": [1]}}},
                                  "params.lr.choices", "unknown key for a float parameter"),
    "param choices empty": ({"params": {"width": {"choices": []}}}, "params.width.choices", "must be a non-empty"),
}


def bad_study(tmp_path: Path, case: str) -> Path:
    changes, _, _ = BAD_STUDIES[case]
    path = write_study(tmp_path, "bad")
    path.write_text(yaml.safe_dump({**yaml.safe_load(path.read_text()), **changes}, sort_keys=False))
    return path


def test_the_bad_studies_change_a_study_that_passes_both(tmp_path):
    path = write_study(tmp_path, "good")
    assert list(validator().iter_errors(yaml.safe_load(path.read_text()))) == []
    load_study_file(path)


@pytest.mark.parametrize("case", BAD_STUDIES)
def test_a_bad_study_fails_the_schema_and_check_on_the_same_key(tmp_path, case):
    _, key, reason = BAD_STUDIES[case]
    path = bad_study(tmp_path, case)
    assert list(validator().iter_errors(yaml.safe_load(path.read_text()))), "the schema takes it"
    with pytest.raises(InputError) as info:
        load_study_file(path)
    assert (info.value.source, info.value.key) == (str(path), key), str(info.value)
    assert info.value.reason.startswith(reason), info.value.reason


@pytest.mark.slow  # one `adamtune check` per bad study
def test_adamtune_check_refuses_every_bad_study_in_one_line_with_exit_2(tmp_path):
    for case, (_, key, reason) in BAD_STUDIES.items():
        folder = tmp_path / case.replace(" ", "_")
        folder.mkdir()
        path = bad_study(folder, case)
        one_line_error(adamtune("check", str(path)), 2, f"{path}: {key}: {reason}")
