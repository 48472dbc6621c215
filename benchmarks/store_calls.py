"""Where a worker's time goes in the study store: the digits study (studies/digits_mlp.yaml, TPE, median
pruner) on a new SQLite file, solo or `--pack K`, with every Optuna storage call it makes counted and timed,
beside the pack's training epochs. This is what showed that a packed worker spent a third of its run
re-reading its own running trials (benchmarks/RESULTS.md, section 7).

    python -m benchmarks.store_calls --pack 64
    python -m benchmarks.store_calls --pack 1

The timers wrap the classes, so they cost a little themselves: compare calls and milliseconds per call
between runs, not these wall times with `benchmarks.packing`'s. A call's time includes the calls it makes
(`_set_trial_param` holds `_set_trial_param_without_commit`).
"""

from __future__ import annotations

import argparse
import collections
import logging
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import optuna
import sqlalchemy

from ._common import header, table

STORE_CALLS = {
    "_CachedStorage": ["get_all_trials"],
    "RDBStorage": ["get_trial", "get_best_trial", "_set_trial_param", "_set_trial_param_without_commit",
                   "set_trial_intermediate_value", "set_trial_user_attr", "set_trial_system_attr",
                   "set_trial_state_values", "_create_new_trial", "record_heartbeat"],
}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.store_calls", description=__doc__.split("\n")[0])
    parser.add_argument("--pack", type=int, default=64, help="trials trained at once (1: solo)")
    parser.add_argument("--trials", type=int, default=64)
    args = parser.parse_args()

    from optuna.storages._cached_storage import _CachedStorage

    from adamtune import studies
    from adamtune.studies import load_study_file, run_study
    from adamtune.training import Pack

    header("Store calls of one worker: count and time of every Optuna storage call")
    optuna.logging.set_verbosity(logging.WARNING)
    logging.getLogger("adamtune").setLevel(logging.ERROR)
    seconds: collections.Counter[str] = collections.Counter()
    calls: collections.Counter[str] = collections.Counter()
    classes = {"_CachedStorage": _CachedStorage, "RDBStorage": optuna.storages.RDBStorage}
    for cls_name, names in STORE_CALLS.items():
        for name in names:
            _time(classes[cls_name], name, seconds, calls)
    _time(Pack, "epoch", seconds, calls, label="training: Pack.epoch")
    commits = [0]
    sqlalchemy.event.listen(sqlalchemy.engine.Engine, "commit", lambda _conn: commits.__setitem__(0, commits[0] + 1))
    spec = replace(load_study_file(Path(studies.__file__).parent / "digits_mlp.yaml"), n_trials=args.trials)
    with tempfile.TemporaryDirectory(prefix="adamtune-bench-") as tmp:
        summary = run_study(spec, f"sqlite:///{tmp}/s.db", device="cpu", progress=False,
                            artifacts=f"{tmp}/artifacts", pack=args.pack)
    rows = [[name, str(calls[name]), f"{seconds[name]:.2f}", f"{1000 * seconds[name] / calls[name]:.2f}"]
            for name, _ in seconds.most_common()]
    print(f"digits, {args.trials} trials, pack {args.pack}: the worker ran {summary.seconds:.2f} s and committed "
          f"{commits[0]} transactions\n")
    print(table(rows, ["call", "calls", "seconds", "ms per call"]))
    return 0


def _time(cls, name: str, seconds, calls, label: str | None = None) -> None:
    label = label or name
    original = getattr(cls, name)

    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            seconds[label] += time.perf_counter() - start
            calls[label] += 1

    setattr(cls, name, timed)


if __name__ == "__main__":
    raise SystemExit(main())
