"""K local worker processes on one study: each is `adamtune run` itself, so each survives and reports
on its own, and the store (not this process) decides which trial each one runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from adamtune.storage import Store, is_sqlite

from ._placement import place, placement_line


def run_local_workers(study_file: str | Path, store: Store, workers: int, *, options: dict[str, object],
                      gpus: list[str] | None = None, log=print) -> list[int]:
    """Start `workers` copies of `adamtune run STUDY_FILE --quiet` with `options` (flag -> value) and wait for
    them; returns their exit codes. Worker i sees only GPU `gpus[i % len(gpus)]` (none: no GPU named, each
    inherits this process's view). The URL travels in the environment, never on a command line that `ps`
    shows. SIGTERM to this process is passed on to every child."""
    if is_sqlite(store.url):
        log("note: several processes on SQLite wait for each other's writes (busy timeout 60 s); "
            "journal:///path/study.log is the store Optuna recommends on one machine")
    argv = [sys.executable, "-m", "adamtune", "run", str(study_file), "--quiet"]
    for flag, value in options.items():
        if value is not None:
            argv += [flag, str(value)]
    # K processes x all cores each would oversubscribe the CPU (OpenMP threads spin-wait on each other).
    threads = str(max(1, (os.cpu_count() or 1) // workers))
    env = {**os.environ, "ADAMTUNE_STORAGE": store.url, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", threads)}
    places = place(workers, gpus or [])
    log(f"starting {workers} workers in {store.masked}: {placement_line(places)}")
    # Each child's summary would repeat the study's: the caller prints one for all of them (their logs and
    # errors stay on stderr).
    children = [subprocess.Popen(argv, env=env if gpu is None else {**env, "CUDA_VISIBLE_DEVICES": gpu},
                                 stdout=subprocess.DEVNULL) for gpu in places]

    def forward(signum, _frame) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    previous = signal.signal(signal.SIGTERM, forward)
    try:
        return [child.wait() for child in children]
    finally:
        signal.signal(signal.SIGTERM, previous)
