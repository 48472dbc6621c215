"""A bad search space or YAML in a study file: exit code 2, one line naming the file, the key and the reason,
and nothing in the store."""

from __future__ import annotations

import pytest

from bad_input import one_line_error, row_count
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
    "unknown parent": ({"params": {"gamma": {"when": {"sched": "exponential"}}}},
                       "gamma.when.sched: conditional on an unknown parent"),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_bad_study_exits_2_and_writes_nothing(tmp_path, own_store_url, case):
    changes, expected = CASES[case]
    path = write_study(tmp_path, "bad_input_study", **changes)
    before = row_count(own_store_url)
    result = adamtune("run", str(path), "--storage", own_store_url)
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("adamtune: error: ") and ".yaml: " in result.stderr
    assert row_count(own_store_url) == before
    if own_store_url.startswith("sqlite"):
        assert not (tmp_path / "studies.db").exists()


def test_a_yaml_key_given_twice_names_the_key_and_both_lines(tmp_path):
    path = write_study(tmp_path, "dup")
    path.write_text(path.read_text() + "epochs: 50\n")  # `epochs: 4` is above: YAML alone would train 50
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if text.startswith("epochs:"))
    one_line_error(adamtune("check", str(path)), 2, f"{path}: epochs: given twice (lines {line} and ")
    nested = tmp_path / "nested.yaml"
    nested.write_text(path.read_text().replace("epochs: 50\n", "") + "params:\n  lr: {high: 0.01}\n")
    one_line_error(adamtune("check", str(nested)), 2, "params: given twice")
