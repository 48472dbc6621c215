"""Large studies read in bounded memory: `trials` shows a page (the baseline, the best, the latest) and
says how to see more; CSV export streams, so its memory does not grow with the study."""

from __future__ import annotations

import subprocess
import tracemalloc

import optuna
import pytest

import adamtune
from adamtune.studies import load_study_file, run_study
from benchmarks._bulk import copy_trials
from conftest import ADAMTUNE, write_study
from conftest import adamtune as run_cli

pytestmark = pytest.mark.slow  # starts processes or trains a study


@pytest.fixture(scope="module")
def real_trials(tmp_path_factory):
    """Six real trials (baseline, complete and pruned) to copy: the records adamtune writes today."""
    tmp = tmp_path_factory.mktemp("source")
    spec = load_study_file(write_study(tmp, "source", n_trials=6, epochs=3))
    study = run_study(spec, f"sqlite:///{tmp / 'source.db'}", device="cpu", progress=False).study
    return study


def large(tmp_path, source: optuna.Study, n: int) -> str:
    url = f"sqlite:///{tmp_path / f'large-{n}.db'}"
    study = optuna.create_study(study_name="large", storage=url, direction=source.direction)
    for key, value in source.user_attrs.items():
        study.set_user_attr(key, value)
    copy_trials(study, source.trials, n)
    return url


def test_trials_shows_the_baseline_the_best_and_the_latest_and_how_to_see_more(tmp_path, real_trials):
    url = large(tmp_path, real_trials, 300)
    shown = run_cli("trials", "large", "--storage", url)
    assert shown.returncode == 0, shown.stderr
    table = shown.stdout.split("\n\n")[0]
    numbers = [int(line.split()[0]) for line in table.splitlines()[2:]]
    view = adamtune.study("large", storage=url)
    expected = {view.baseline.number} | {t.number for t in view.top(10)} | set(range(280, 300))
    assert numbers == sorted(expected)
    assert f"{len(expected)} of 300 trials" in shown.stdout and "--all" in shown.stdout

    pruned = run_cli("trials", "large", "--state", "pruned", "--limit", "7", "--storage", url)
    rows = [line.split() for line in pruned.stdout.splitlines()[2:]]
    assert len(rows) == 7 and {r[1] for r in rows} == {"pruned"}
    every = run_cli("trials", "large", "--all", "--storage", url)
    assert [int(line.split()[0]) for line in every.stdout.splitlines()[2:]] == list(range(300))


def test_csv_export_streams_in_flat_memory(tmp_path, real_trials):
    def peak_bytes(n: int) -> int:
        url = large(tmp_path, real_trials, n)
        tracemalloc.start()
        lines = sum(1 for _ in adamtune.export_csv("large", storage=url))
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert lines == n + 1
        return peak

    peak_bytes(500)  # the first export pays for imports and caches once; measure warm
    small, big = peak_bytes(1000), peak_bytes(4000)
    assert big < 1.5 * small, f"memory grew with the study: {small:,} bytes for 1,000 trials, {big:,} for 4,000"


def test_a_reader_that_closes_the_pipe_of_a_long_listing_gets_no_traceback(tmp_path, real_trials):
    """`adamtune trials x --all | head`: the listing outgrows the pipe's buffer, so the reader really leaves
    while adamtune is still writing, and adamtune must end quietly."""
    url = large(tmp_path, real_trials, 2000)
    result = subprocess.run(f"'{ADAMTUNE}' trials large --all --storage '{url}' | head -3", shell=True,
                            capture_output=True, text=True, executable="/bin/bash")
    assert len(result.stdout.splitlines()) == 3 and result.stdout.splitlines()[2].split()[0] == "0"
    assert result.stderr == ""
