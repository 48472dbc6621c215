"""Where a worker's wall time goes: the digits study (studies/digits_mlp.yaml, TPE, median pruner) run by
`run_study` (what `adamtune run` calls) for N trials on a new SQLite store, solo (`--pack 1`) and packed
(`--pack auto`, skipped with a line where this code refuses it), split into training, the sampler's own
computation, the pruner, the store (SQL, reads and writes), checkpoints, pictures (matplotlib/PNG) and
other. Each configuration runs in a child process; with `--against DIR` the code checked out in DIR (its
`.venv`) runs too, alternating with this one in every round, so both see the same machine.

How time is attributed, without double counting: each category has its functions (below, `TARGETS`);
each is wrapped by a clock that charges the main thread's time to the innermost category running, so a
store write inside a pruner call is store time, not pruner time, and a checkpoint saved inside `fit` is
checkpoint time, not training. The objective's per-epoch hook is charged to "other" (its store writes and
pruner calls to theirs). The wall time is `work` (the worker's trials: study.optimize or the packed loop),
without loading the data and creating the study. Other threads (the heartbeat) are not timed: they take
the CPU from whatever the main thread was doing. `--cprofile DIR` also writes each run's cProfile stats
there (`python -m pstats`), for detail; the shares are taken without it (the profiler slows Python-heavy
parts, the store and the sampler, several times more than torch's).

    python -m benchmarks.profile_shares --trials 20
    python -m benchmarks.profile_shares --trials 20 --rounds 3 --against ../main-checkout --pack 1
"""

from __future__ import annotations

import argparse
import functools
import inspect
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from ._common import OtherLoad, header, median, ratio_line, table, wait_until_idle

CATEGORIES = ("training", "sampler", "pruner", "store", "checkpoints", "pictures", "other")
BOOKKEEPING = ("pruner", "store", "checkpoints", "pictures", "other")  # all but training and the sampler
TARGET = 0.15  # bookkeeping's share of a solo digits trial's wall time (issue 20)
SAMPLER_METHODS = ("sample_relative", "sample_independent", "infer_relative_search_space", "before_trial",
                   "after_trial")

# category -> (module, attribute path); a target this code lacks is skipped (listed in the output).
TARGETS: dict[str, list[tuple[str, str]]] = {
    "training": [("adamtune.studies._objective", "fit"), ("adamtune.training._packed.pack", "Pack.epoch"),
                 ("adamtune.training._packed.pack", "Pack.add")],
    "sampler": [("optuna.samplers", f"{cls}.{m}") for cls in ("TPESampler", "RandomSampler", "PartialFixedSampler")
                for m in SAMPLER_METHODS],
    "pruner": [("optuna.trial", "Trial.should_prune")],
    "checkpoints": [("adamtune.training.checkpoint", "Checkpoint.save"),
                    ("adamtune.data._stored_file", "StoredFile.load"),
                    ("adamtune.studies._objective", "discard"), ("adamtune.studies._objective", "Objective._keep_best"),
                    ("adamtune.training._packed.pack", "Pack._save")],
    "pictures": [("adamtune.studies._objective", "upload_curve"), ("adamtune.studies._objective", "upload_config"),
                 ("matplotlib.figure", "Figure.savefig")],
    "other": [("adamtune.studies._objective", "Objective.epoch_done"),
              ("adamtune.studies._objective", "Objective.started")],
}
STORE_CLASSES = [("optuna.storages", "RDBStorage"), ("optuna.storages._cached_storage", "_CachedStorage"),
                 ("adamtune.storage._own_trials", "OwnTrialsCache"), ("adamtune.storage._stale", "RDBStore")]


class Clock:
    """Charges the main thread's time to the innermost wrapped category running; between `start` and `stop`."""

    def __init__(self) -> None:
        self.seconds: Counter[str] = Counter()
        self.stack: list[str] = []
        self.since = 0.0
        self.running = False
        self.main = threading.main_thread()

    def _switch(self) -> None:
        now = time.perf_counter()
        self.seconds[self.stack[-1] if self.stack else "other"] += now - self.since
        self.since = now

    def wrap(self, category: str, fn):
        clock = self

        @functools.wraps(fn)
        def timed(*args, **kwargs):
            if not clock.running or threading.current_thread() is not clock.main:
                return fn(*args, **kwargs)
            clock._switch()
            clock.stack.append(category)
            try:
                return fn(*args, **kwargs)
            finally:
                clock._switch()
                clock.stack.pop()

        return timed

    def window(self, fn):
        """`fn`'s time is the wall time; the categories share it exactly."""
        clock = self

        @functools.wraps(fn)
        def timed(*args, **kwargs):
            clock.running, clock.since = True, time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                clock._switch()
                clock.running = False

        return timed


def _patch(clock: Clock, category: str, module_name: str, path: str) -> bool:
    import importlib

    try:
        owner = importlib.import_module(module_name)
        *parents, name = path.split(".")
        for parent in parents:
            owner = getattr(owner, parent)
        original = vars(owner)[name] if isinstance(owner, type) else getattr(owner, name)
    except (ImportError, AttributeError, KeyError):
        return False
    if not inspect.isfunction(original):
        return False
    setattr(owner, name, clock.wrap(category, original))
    return True


def child(pack: str, trials: int, cprofile: str | None) -> dict:
    """One run in this process: the seconds of each category, the wall time, the store's commits."""
    import importlib
    import logging
    from dataclasses import replace

    import optuna
    import sqlalchemy

    from adamtune import studies
    from adamtune.errors import InputError
    from adamtune.studies import check_pack, load_study_file, run_study

    try:
        size = check_pack(pack if pack == "auto" else int(pack), "profile_shares", "--pack")
    except InputError as exc:
        return {"skipped": str(exc)}
    optuna.logging.set_verbosity(logging.WARNING)
    logging.getLogger("adamtune").setLevel(logging.ERROR)
    clock, missing = Clock(), []
    for category, targets in TARGETS.items():
        for module_name, path in targets:
            if not _patch(clock, category, module_name, path):
                missing.append(f"{module_name}.{path}")
    for module_name, cls_name in STORE_CLASSES:
        try:
            cls = getattr(importlib.import_module(module_name), cls_name)
        except (ImportError, AttributeError):
            missing.append(f"{module_name}.{cls_name}")
            continue
        for name, member in list(vars(cls).items()):
            if inspect.isfunction(member) and not name.startswith("__"):  # not static or class methods
                setattr(cls, name, clock.wrap("store", member))
    run = importlib.import_module("adamtune.studies._run")
    run.work = clock.window(run.work)
    commits = [0]
    sqlalchemy.event.listen(sqlalchemy.engine.Engine, "commit", lambda _c: commits.__setitem__(0, commits[0] + 1))
    spec = replace(load_study_file(Path(studies.__file__).parent / "digits_mlp.yaml"), n_trials=trials)
    profiler = None
    if cprofile:
        import cProfile

        profiler = cProfile.Profile()
    with tempfile.TemporaryDirectory(prefix="adamtune-bench-") as tmp:
        if profiler:
            profiler.enable()
        summary = run_study(spec, f"sqlite:///{tmp}/s.db", device="cpu", progress=False,
                            artifacts=f"{tmp}/artifacts", pack=size)
        if profiler:
            profiler.disable()
            profiler.dump_stats(cprofile)
        pictures = len(list(Path(tmp, "artifacts").rglob("*")))
    return {"seconds": dict(clock.seconds), "wall": sum(clock.seconds.values()), "trials": summary.ran,
            "commits": commits[0], "missing": missing, "pack": size, "files": pictures}


def _run_child(python: str, pack: str, trials: int, cprofile: str | None) -> dict:
    """A fresh process for each run, importing the code its interpreter's checkout holds."""
    with tempfile.TemporaryDirectory(prefix="adamtune-bench-") as cwd:
        os.symlink(Path(__file__).resolve().parent, Path(cwd) / "benchmarks")  # this module, that code
        command = [python, "-m", "benchmarks.profile_shares", "--child", pack, "--trials", str(trials)]
        if cprofile:
            command += ["--cprofile", cprofile]
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": ""})
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _revision(tree: Path) -> str:
    try:
        return subprocess.run(["git", "-C", str(tree), "log", "-1", "--format=%h %s"], capture_output=True,
                              text=True, check=True).stdout.strip()[:80]
    except (OSError, subprocess.CalledProcessError):
        return "not a git checkout"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile_shares", description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--pack", nargs="+", default=["1", "auto"], help="pack sizes to run (default: 1 auto)")
    parser.add_argument("--rounds", type=int, default=1, help="runs of each configuration (medians are shown)")
    parser.add_argument("--against", metavar="DIR", help="another checkout (with its .venv) to run alternately")
    parser.add_argument("--cprofile", metavar="PATH", help=argparse.SUPPRESS if "--child" in sys.argv else
                        "also write each run's cProfile stats into this folder")
    parser.add_argument("--child", metavar="PACK", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.trials, args.cprofile)))
        return 0

    header("Shares of a worker's wall time: training, sampler, pruner, store, checkpoints, pictures, other")
    here = Path(__file__).resolve().parent.parent
    sides = {"this": (here, sys.executable)}
    if args.against:
        other = Path(args.against).resolve()
        sides = {"against": (other, str(other / ".venv" / "bin" / "python")), **sides}
    for label, (tree, _) in sides.items():
        print(f"{label}: {tree} at {_revision(tree)}")
    if args.cprofile:
        Path(args.cprofile).mkdir(parents=True, exist_ok=True)
    runs: dict[tuple[str, str], list[dict]] = {}
    for round_ in range(args.rounds):
        for pack in args.pack:
            for label, (_, python) in sides.items():
                wait_until_idle(60)
                profile = str(Path(args.cprofile).resolve() / f"{label}-pack{pack}-{round_}.prof") \
                    if args.cprofile else None
                with OtherLoad() as load:
                    result = _run_child(python, pack, args.trials, profile)
                result["other_load"] = load.share
                runs.setdefault((label, pack), []).append(result)
    print()
    bookkeeping: dict[str, float] = {}
    for (label, pack), results in runs.items():
        if "skipped" in results[0]:
            print(f"{label}, --pack {pack}: skipped ({results[0]['skipped']})\n")
            continue
        per_trial = {c: median([r["seconds"].get(c, 0.0) / r["trials"] for r in results]) for c in CATEGORIES}
        wall = median([r["wall"] / r["trials"] for r in results])
        rows = [[c, f"{1000 * per_trial[c]:.1f}", f"{per_trial[c] / wall:.1%}"] for c in CATEGORIES]
        book = sum(per_trial[c] for c in BOOKKEEPING)
        rows.append(["all but training and sampler", f"{1000 * book:.1f}", f"{book / wall:.1%}"])
        rows.append(["wall", f"{1000 * wall:.1f}", "100%"])
        commits = median([r["commits"] / r["trials"] for r in results])
        loads = ", ".join(f"{r['other_load']:.0%}" for r in results)
        print(f"{label}, --pack {pack} (size {results[0]['pack']}): {results[0]['trials']} trials, median of "
              f"{len(results)} run(s); {commits:.1f} store commits per trial; other processes' CPU share: {loads}")
        if results[0]["missing"]:
            print(f"  not in this code (not timed): {', '.join(results[0]['missing'])}")
        print(table(rows, ["share", "ms per trial", "of wall"]) + "\n")
        if pack == "1":
            bookkeeping[label] = book / wall
    if "against" in bookkeeping and "this" in bookkeeping:
        print(ratio_line(bookkeeping["against"] / bookkeeping["this"], "solo: share of wall time outside training "
                         "and the sampler, --against code / this code"))
    elif "this" in bookkeeping:
        print(ratio_line(bookkeeping["this"] / TARGET, f"solo: share of wall time outside training and the sampler "
                         f"/ the {TARGET:.0%} target"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
