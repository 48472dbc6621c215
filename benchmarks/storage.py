"""Study-store overhead and worker scaling, SQLite against PostgreSQL.

Part 1, a trivial objective (one suggest_float, then 10 x `trial.report` + `trial.should_prune`
under the shipped median pruner, no training), run by 1, 2 and 4 worker processes, each with its
own storage object (`storage.open_storage`) on one study: milliseconds per report + prune check
(median and 95th percentile over all workers) and trials finished per second in all.

Part 2, the digits study (studies/digits_mlp.yaml as shipped, through `studies.run_study`): the share
of the trials' wall time spent in the store, measured by timing every call into optuna's RDBStorage
(outermost calls only), next to the share not spent in `training.fit`'s epochs at all.

Studies get unique names and are deleted afterwards; SQLite files live in a temp dir. PostgreSQL is
used when a URL is given by --postgres or $ADAMTUNE_TEST_POSTGRES_URL (the tests' variable).
Headline ratio: PostgreSQL/SQLite trials per second with 4 workers (SQLite/SQLite-1-worker scaling
when no PostgreSQL is given).

    ADAMTUNE_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test python -m benchmarks.storage
    python -m benchmarks.storage --seconds 20 --digits-trials 20
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import inspect
import logging
import multiprocessing
import os
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path

import optuna

from ._common import OtherLoad, header, ratio_line, table, wait_until_idle

TARGET_SHARE = 0.05
STEPS = 10
WORKERS = (1, 2, 4)


def trivial_objective(times: list[float]):
    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -10.0, 10.0)
        for step in range(STEPS):
            start = time.perf_counter()
            trial.report(x * x / (step + 1), step)
            prune = trial.should_prune()
            times.append(time.perf_counter() - start)
            if prune:
                raise optuna.TrialPruned()
        return x * x

    return objective


def shipped_spec():
    """The quickstart study as shipped: part 1 uses its pruner, part 2 runs it."""
    from adamtune import studies
    from adamtune.studies import load_study_file

    return load_study_file(Path(studies.__file__).parent / "digits_mlp.yaml")


def _worker(url: str, name: str, seconds: float, ready, go, results) -> None:
    """One worker process: its own storage object, joins the study, runs trials for `seconds`."""
    from adamtune.storage import open_storage

    optuna.logging.set_verbosity(logging.WARNING)
    store = open_storage(url)
    study = optuna.load_study(study_name=name, storage=store, sampler=optuna.samplers.RandomSampler(),
                              pruner=shipped_spec().pruner_object())
    times: list[float] = []
    ready.wait()
    go.wait()
    start = time.monotonic()  # CLOCK_MONOTONIC: comparable between processes on one machine
    study.optimize(trivial_objective(times), timeout=seconds)
    results.put((start, time.monotonic(), times))


def scaling(url: str, workers: int, seconds: float) -> dict:
    """Trials/s and ms per report+prune check with `workers` processes on one fresh study."""
    from adamtune.storage import open_storage

    name = f"bench-storage-{uuid.uuid4().hex[:12]}"
    store = open_storage(url)
    optuna.create_study(study_name=name, storage=store)
    ctx = multiprocessing.get_context("spawn")
    ready, go, results = ctx.Barrier(workers + 1), ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(url, name, seconds, ready, go, results)) for _ in range(workers)]
    try:
        for p in procs:
            p.start()
        ready.wait()  # every worker has imported, connected and joined: start-up is not measured
        wait_until_idle(30)
        with OtherLoad() as load:
            go.set()
            outs = [results.get() for _ in procs]
            for p in procs:
                p.join()
        begin, end = min(o[0] for o in outs), max(o[1] for o in outs)
        study = optuna.load_study(study_name=name, storage=store)
        finished = len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,
                                                                   optuna.trial.TrialState.PRUNED)))
        checks = sorted(t for o in outs for t in o[2])
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
        with contextlib.suppress(KeyError):
            optuna.delete_study(study_name=name, storage=store)
    return {"trials_per_s": finished / (end - begin), "trials": finished,
            "check_ms": statistics.median(checks) * 1e3, "check_p95_ms": checks[int(0.95 * (len(checks) - 1))] * 1e3,
            "other": load.share}


class StoreClock:
    """Wall time spent inside RDBStorage methods, counting only the outermost call of each thread."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0
        self.by_method: dict[str, list] = {}  # name -> [calls, seconds]
        self._depth = threading.local()

    def wrap(self, fn):
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            depth = getattr(self._depth, "n", 0)
            self._depth.n = depth + 1
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self._depth.n = depth
                if depth == 0:
                    elapsed = time.perf_counter() - start
                    self.seconds += elapsed
                    self.calls += 1
                    entry = self.by_method.setdefault(fn.__name__, [0, 0.0])
                    entry[0] += 1
                    entry[1] += elapsed

        return timed


@contextlib.contextmanager
def clocked_store():
    """Time every method of optuna's RDBStorage (the SQL store behind `storage.open_storage`) while active."""
    cls = optuna.storages.RDBStorage
    clock = StoreClock()
    originals = {name: fn for name, fn in vars(cls).items() if inspect.isfunction(fn) and not name.startswith("__")}
    for name, fn in originals.items():
        setattr(cls, name, clock.wrap(fn))
    try:
        yield clock
    finally:
        for name, fn in originals.items():
            setattr(cls, name, fn)


def digits_share(url: str, trials: int, tmp: Path) -> dict:
    """Run the shipped digits study under a unique name; split its trials' wall time."""
    from dataclasses import replace

    from adamtune import studies
    from adamtune.data import load_dataset
    from adamtune.storage import open_storage

    spec = studies.load_study_file(Path(studies.__file__).parent / "digits_mlp.yaml")
    spec = replace(spec, name=f"bench-storage-digits-{uuid.uuid4().hex[:12]}")
    load_dataset(spec.dataset)  # loaded once per worker anyway; not part of any trial
    wait_until_idle(30)
    try:
        with OtherLoad() as load, clocked_store() as clock:
            summary = studies.run_study(spec, url, n_trials=trials, device="cpu", progress=False,
                                        artifacts=str(tmp / "artifacts"))
        done = [t for t in summary.study.get_trials(deepcopy=False)
                if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)]
        trial_wall = sum((t.datetime_complete - t.datetime_start).total_seconds() for t in done)
        training = sum(sum(t.user_attrs.get("curve", {}).get("seconds", [])) for t in done)
        epochs = sum(len(t.intermediate_values) for t in done)
    finally:
        with contextlib.suppress(KeyError):
            optuna.delete_study(study_name=spec.name, storage=open_storage(url))
    return {"trials": len(done), "epochs": epochs, "run_s": summary.seconds, "store_s": clock.seconds,
            "store_calls": clock.calls, "trial_wall_s": trial_wall, "training_s": training, "other": load.share,
            "by_method": clock.by_method}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.storage", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="seconds each worker count runs (default 8)")
    parser.add_argument("--digits-trials", type=int, default=10, help="trials of the digits study per store")
    parser.add_argument("--postgres", metavar="URL", default=os.environ.get("ADAMTUNE_TEST_POSTGRES_URL"),
                        help="PostgreSQL URL (default: $ADAMTUNE_TEST_POSTGRES_URL; none: SQLite only)")
    parser.add_argument("--quick", action="store_true", help="3 s per worker count, 4 digits trials")
    parser.add_argument("--no-scaling", action="store_true", help="skip part 1 (worker scaling)")
    args = parser.parse_args(argv)
    seconds, digits_trials = (3.0, 4) if args.quick else (args.seconds, args.digits_trials)
    header("Study store: overhead per report and worker scaling, SQLite vs PostgreSQL")
    optuna.logging.set_verbosity(logging.WARNING)
    from adamtune.storage import mask_url, normalize_url

    with tempfile.TemporaryDirectory(prefix="adamtune-bench-") as tmp:
        stores = {"SQLite": f"sqlite:///{Path(tmp) / 'bench.db'}"}
        if args.postgres:
            stores["PostgreSQL"] = normalize_url(args.postgres)
        else:
            print("PostgreSQL skipped: give --postgres URL or set ADAMTUNE_TEST_POSTGRES_URL\n")
        print(f"part 1: trivial objective, {STEPS} x report + should_prune (the shipped pruner, "
              f"{shipped_spec().pruner}), "
              f"RandomSampler, {seconds:g} s per run")
        rates, rows = {}, []
        for kind, url in stores.items():
            for n in WORKERS if not args.no_scaling else ():
                r = scaling(url, n, seconds)
                rates[kind, n] = r["trials_per_s"]
                rows.append([kind, str(n), f"{r['trials']}", f"{r['trials_per_s']:.1f}", f"{r['check_ms']:.2f}",
                             f"{r['check_p95_ms']:.2f}", f"{r['other']:.0%}"])
                print(f"  {kind:10s} {n} worker(s): {r['trials_per_s']:6.1f} trials/s, report+prune check "
                      f"median {r['check_ms']:.2f} ms, p95 {r['check_p95_ms']:.2f} ms", flush=True)
        print()
        print(table(rows, ["store", "workers", "trials", "trials/s", "ms/check (median)", "ms/check (p95)",
                           "other load"]))
        print(f"\npart 2: studies/digits_mlp.yaml as shipped, {digits_trials} trials through run_study, one worker")
        rows, shares = [], {}
        for kind, url in stores.items():
            r = digits_share(url, digits_trials, Path(tmp))
            shares[kind] = r["store_s"] / r["trial_wall_s"]
            outside = 1 - r["training_s"] / r["trial_wall_s"]
            rows.append([kind, str(r["trials"]), str(r["epochs"]), f"{r['trial_wall_s']:.1f}", f"{r['training_s']:.1f}",
                         f"{r['store_s']:.2f} ({r['store_calls']} calls)", f"{shares[kind]:.1%}", f"{outside:.1%}",
                         f"{r['other']:.0%}"])
            print(f"  {kind}: {shares[kind]:.1%} of trial time in the store "
                  f"({r['store_s'] / max(r['epochs'], 1) * 1e3:.1f} ms per epoch), {outside:.1%} outside training",
                  flush=True)
            top = sorted(r["by_method"].items(), key=lambda item: -item[1][1])[:6]
            print("    where the store time went: " + ", ".join(
                f"{name} {calls} x {seconds / calls * 1e3:.2f} ms = {seconds / r['store_s']:.0%}"
                for name, (calls, seconds) in top))
        print()
        print(table(rows, ["store", "trials", "epochs", "trial wall s", "training s", "store s", "store share",
                           "not training", "other load"]))
        for kind, share in shares.items():
            print(f"target: store share < {TARGET_SHARE:.0%} ({kind}): {'met' if share < TARGET_SHARE else 'MISSED'}")
        if args.no_scaling:
            return 0
        if "PostgreSQL" in stores:
            print(f"stores: SQLite in a temp dir, PostgreSQL at {mask_url(stores['PostgreSQL'])}")
            print(ratio_line(rates["PostgreSQL", 4] / rates["SQLite", 4],
                             "PostgreSQL/SQLite trials per second, 4 workers"))
        else:
            print(ratio_line(rates["SQLite", 4] / rates["SQLite", 1], "SQLite trials per second, 4 workers / 1 worker"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
