"""Bad input: exit code 2, one line naming the file, the key and the reason, and nothing in the store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy

from conftest import adamtune, write_study

pytestmark = pytest.mark.slow  # one CLI process per case

CASES = {
    "unknown key": ({"lernrate": 0.1}, "lernrate: unknown key"),
    "low > high": ({"params": {"lr": {"low": 0.1, "high": 0.001}}}, "params.lr.low: low (0.1) is greater than high"),
    "log low <= 0": ({"params": {"eps": {"low": 0.0}}}, "params.eps.low: a log range needs low > 0"),
    "empty choices": ({"params": {"batch_size": {"choices": []}}}, "params.batch_size.choices: must be a non-empty"),
    "unknown fragment": ({"search_space": ["adam", "adamm"]}, "search_space[adamm]: unknown fragment"),
    "unknown dataset": ({"dataset": "svhn"}, "dataset: must be one of"),
    "duplicate parameter": ({"search_space": ["mlp", "cnn"]}, "params.width: duplicate parameter name"),
    "unknown parent": ({"params": {"gamma": {"when": {"sched": "exponential"}}}}, "gamma.when.sched: conditional on an unknown parent"),
}


def row_count(url: str) -> int:
    """Rows in every table of the store (0 when the SQLite file does not exist; it is not created)."""
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).exists():
        return 0
    engine = sqlalchemy.create_engine(url)
    try:
        inspector = sqlalchemy.inspect(engine)
        with engine.connect() as conn:
            return sum(conn.execute(sqlalchemy.text(f'SELECT COUNT(*) FROM "{t}"')).scalar()
                       for t in inspector.get_table_names() if t != "alembic_version")
    finally:
        engine.dispose()


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_bad_study_exits_2_and_writes_nothing(tmp_path, storage_url, case):
    changes, expected = CASES[case]
    path = write_study(tmp_path, "bad_input_study", **changes)
    before = row_count(storage_url)
    result = adamtune("run", str(path), "--storage", storage_url)
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("adamtune: error: ") and ".yaml: " in result.stderr
    assert row_count(storage_url) == before
    if storage_url.startswith("sqlite"):
        assert not (tmp_path / "studies.db").exists()


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
