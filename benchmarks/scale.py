"""Read commands on studies of 1,000 and 10,000 realistic trials, and a worker's own cost per trial.

Realistic trials: a real digits study (the quickstart's settings, fewer trials) is run first with the
`adamtune` under test, and its trials are copied with `study.add_trials` until the study holds N, so the
records are what that version of adamtune writes. Every read command then runs as a subprocess; wall time
comes from the clock and peak memory from `resource.getrusage(RUSAGE_CHILDREN)` of a helper process that
waits for it (ru_maxrss of the largest child).

Run it against another version of adamtune (e.g. a checkout of an older commit installed in another
virtual environment) with `--adamtune /path/to/venv/bin/adamtune`: the source study is then written by
that version, so "before" and "after" are each measured on their own records.

    python -m benchmarks.scale                                 # SQLite, 1,000 and 10,000 trials
    ADAMTUNE_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test python -m benchmarks.scale
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import sqlalchemy

from benchmarks._bulk import copy_trials
from benchmarks._common import table

SOURCE_TRIALS = 12
REPO = Path(__file__).resolve().parent.parent
COMMANDS = [
    ("studies", ["studies"]),
    ("trials", ["trials", "{name}"]),
    ("status", ["status", "{name}"]),
    ("best", ["best", "{name}"]),
    ("export", ["export", "{name}", "-o", "{tmp}/best.json"]),
    ("export --top 10", ["export", "{name}", "--top", "10", "-o", "{tmp}/top.json"]),
    ("export --format csv", ["export", "{name}", "--format", "csv", "-o", "{tmp}/trials.csv"]),
    ("report", ["report", "{name}", "-o", "{tmp}/report"]),
]


def source_study(adamtune: str, tmp: Path) -> tuple[str, str]:
    """A real digits study with SOURCE_TRIALS trials, written by the adamtune under test."""
    study_file = tmp / "scale_source.yaml"
    text = (REPO / "studies" / "digits_mlp.yaml").read_text()
    study_file.write_text(text.replace("name: digits_mlp", "name: scale_source"))
    url = f"sqlite:///{tmp / 'source.db'}"
    subprocess.run([adamtune, "run", str(study_file), "--n-trials", str(SOURCE_TRIALS), "--quiet",
                    "--storage", url, "--artifacts", str(tmp / "artifacts")], check=True, capture_output=True)
    return url, "scale_source"


def build(url: str, name: str, source_url: str, source_name: str, n: int) -> float:
    """Copy the source study's finished trials into a new study `name` until it holds `n`; returns the seconds
    it took (one bulk INSERT per Optuna table: Optuna's add_trials takes minutes for 10,000)."""
    start = time.perf_counter()
    source = optuna.load_study(study_name=source_name, storage=source_url)
    if name in optuna.study.get_all_study_names(url):
        optuna.delete_study(study_name=name, storage=url)
    study = optuna.create_study(study_name=name, storage=url, direction=source.direction)
    for key, value in source.user_attrs.items():
        study.set_user_attr(key, value)
    copy_trials(study, [t for t in source.trials if t.state.is_finished()], n)
    return time.perf_counter() - start


def dashboard_page(adamtune: str, url: str, name: str) -> tuple[float, int]:
    """(seconds, bytes) of optuna-dashboard's study API (`/api/studies/<id>`, what its trial pages load),
    served by `adamtune dashboard` on the store."""
    import json
    import socket
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([adamtune, "dashboard", "--storage", url, "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                with urllib.request.urlopen(f"{base}/api/studies", timeout=60) as response:
                    studies = json.loads(response.read())["study_summaries"]
                break
            except OSError:
                time.sleep(0.1)
        study_id = next(s["study_id"] for s in studies if s["study_name"] == name)
        start = time.perf_counter()
        with urllib.request.urlopen(f"{base}/api/studies/{study_id}", timeout=600) as response:
            size = len(response.read())
        return time.perf_counter() - start, size
    finally:
        server.terminate()
        server.wait(timeout=30)


def own_database(url: str, name: str) -> str:
    """A fresh database of the benchmark's own on the server `url` names, so `adamtune studies` lists
    only the benchmark's studies (the server's test database holds whatever tests left there)."""
    admin = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return sqlalchemy.engine.make_url(url).set(database=name).render_as_string(hide_password=False)


def measure(argv: list[str], env: dict) -> tuple[float, float, float, int]:
    """(wall seconds, CPU seconds, peak MB of the command's process, exit code): the command runs under a
    small waiter whose RUSAGE_CHILDREN is exactly that command's. CPU time (user + system) is what the
    command itself costs; wall time also holds what other processes on a shared machine took."""
    waiter = ("import resource, subprocess, sys, time\n"
              "t = time.perf_counter(); code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode\n"
              "wall = time.perf_counter() - t; use = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
              "print(wall, use.ru_utime + use.ru_stime, use.ru_maxrss / 1024, code)")
    out = subprocess.run([sys.executable, "-c", waiter, *argv], env=env, capture_output=True, text=True, check=True)
    wall, cpu, peak, code = out.stdout.split()
    return float(wall), float(cpu), float(peak), int(code)


def worker_cost(url: str, name: str, trials: int) -> dict[str, float]:
    """Seconds per trial a worker spends outside training, on a study that already holds many trials.
    Optuna's part: ask (the sampler; TPE reads every trial) and report + should_prune per epoch (the
    median pruner reads every trial). adamtune's part: what the objective and the worker loop add around
    them (the retry lookup, the record's writes, the budget count, the best value) and tell.
    The objective is replaced by a recorded curve, so training costs nothing."""
    from adamtune.results import describe, full_curve, write_note
    from adamtune.storage import Attr, open_storage
    from adamtune.studies import load_study_file
    from adamtune.studies._objective import WORKER, record_curve, record_result
    from adamtune.studies._run import finished_count

    spec = load_study_file(REPO / "studies" / "digits_mlp.yaml")
    study = optuna.load_study(study_name=name, storage=open_storage(url), sampler=spec.sampler_object(),
                              pruner=spec.pruner_object())
    curve = full_curve(next(t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"), spec.objective)
    sampler = prune = ours = 0.0
    for _ in range(trials):
        t0 = time.perf_counter()
        trial = study.ask()
        values = spec.space.sample(trial)
        t1 = time.perf_counter()
        next(t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
             if t.number == trial.number)  # the objective's retry lookup
        trial.set_user_attr(Attr.WORKER, WORKER)
        write_note(trial, describe(spec.config_for(values, 0).to_dict()), spec.space.sampled(values))
        t2 = time.perf_counter()
        pruned = False
        for epoch, loss in enumerate(curve["val_loss"]):
            trial.report(loss, epoch)
            if trial.should_prune():
                pruned = True
                break
        t3 = time.perf_counter()
        if not pruned:
            record_result(trial, best_epoch=0)
            study.best_value  # noqa: B018 - the objective asks whether this trial is a new best
        record_curve(trial, {k: v[:epoch + 1] for k, v in curve.items()}, spec.objective)
        study.tell(trial, state=optuna.trial.TrialState.PRUNED if pruned else None,
                   values=None if pruned else min(curve["val_loss"]))
        finished_count(study)  # the budget, after each trial
        study.best_value  # noqa: B018 - the progress line
        t4 = time.perf_counter()
        sampler, prune, ours = sampler + t1 - t0, prune + t3 - t2, ours + (t2 - t1) + (t4 - t3)
    return {"sampler (ask)": sampler / trials, "pruner + reports": prune / trials,
            "adamtune + tell": ours / trials}


def stored_bytes(url: str, name: str) -> float:
    """Bytes per trial of what adamtune and Optuna store besides the numbers: user attrs, system attrs
    (Optuna's and the dashboard notes', which optuna-dashboard keeps per study) and params."""
    engine = sqlalchemy.create_engine(url)
    with engine.connect() as conn:
        study = conn.execute(sqlalchemy.text("SELECT study_id FROM studies WHERE study_name = :n"),
                             {"n": name}).scalar()
        total = 0
        for query in ("SELECT SUM(LENGTH(a.value_json)) FROM trial_user_attributes a JOIN trials t "
                      "ON t.trial_id = a.trial_id WHERE t.study_id = :s",
                      "SELECT SUM(LENGTH(a.value_json)) FROM trial_system_attributes a JOIN trials t "
                      "ON t.trial_id = a.trial_id WHERE t.study_id = :s",
                      "SELECT SUM(LENGTH(p.distribution_json) + 8) FROM trial_params p JOIN trials t "
                      "ON t.trial_id = p.trial_id WHERE t.study_id = :s",
                      "SELECT SUM(LENGTH(value_json)) FROM study_system_attributes WHERE study_id = :s"):
            total += conn.execute(sqlalchemy.text(query), {"s": study}).scalar() or 0
        trials = conn.execute(sqlalchemy.text("SELECT COUNT(*) FROM trials WHERE study_id = :s"), {"s": study}).scalar()
    engine.dispose()
    return total / max(trials, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10_000])
    parser.add_argument("--adamtune", default=shutil.which("adamtune") or "adamtune",
                        help="the adamtune command to measure (default: the one on PATH)")
    parser.add_argument("--skip-report-above", type=int, default=None, metavar="N",
                        help="leave `report` out for studies larger than N trials")
    parser.add_argument("--worker-trials", type=int, default=20, help="trials timed per study size (0: skip)")
    args = parser.parse_args(argv)

    from benchmarks._common import header

    header("read commands and worker cost on large studies")
    stores = {"sqlite": None}
    if os.environ.get("ADAMTUNE_TEST_POSTGRES_URL"):
        stores["postgresql"] = own_database(os.environ["ADAMTUNE_TEST_POSTGRES_URL"], "adamtune_scale")
    rows, costs = [], []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        source_url, source_name = source_study(args.adamtune, tmp)
        per_trial = stored_bytes(source_url, source_name)
        print(f"stored per trial (user attrs, system attrs, notes, params) of the real source study: "
              f"{per_trial:,.0f} bytes", flush=True)
        for store, server_url in stores.items():
            for n in args.sizes:
                url = server_url or f"sqlite:///{tmp / f'scale-{n}.db'}"
                name = f"scale_{n}"
                seconds = build(url, name, source_url, source_name, n)
                print(f"built {store} study of {n} trials in {seconds:.0f} s", flush=True)
                env = {**os.environ, "ADAMTUNE_STORAGE": url}
                for label, template in COMMANDS:
                    if label == "report" and args.skip_report_above and n > args.skip_report_above:
                        continue
                    command = [args.adamtune, *(a.format(name=name, tmp=tmp) for a in template)]
                    wall, cpu, peak, code = measure(command, env)
                    rows.append([store, f"{n:,}", f"adamtune {label}", f"{wall:.2f}", f"{cpu:.2f}", f"{peak:,.0f}",
                                 "ok" if code == 0 else f"exit {code}"])
                    print("  ".join(rows[-1]), flush=True)
                seconds, size = dashboard_page(args.adamtune, url, name)
                rows.append([store, f"{n:,}", "dashboard /api/studies/<id>", f"{seconds:.2f}", "-",
                             f"{size / 1e6:.1f} MB JSON", "ok"])
                print("  ".join(rows[-1]), flush=True)
                if args.worker_trials:
                    cost = worker_cost(url, name, args.worker_trials)
                    costs.append([store, f"{n:,}", *(f"{1000 * v:.1f}" for v in cost.values())])
                    print("worker ms/trial", "  ".join(costs[-1]), flush=True)
                if server_url:
                    optuna.delete_study(study_name=name, storage=url)
    print()
    print(table(rows, ["store", "trials", "command", "wall s", "cpu s", "peak MB", "exit"]))
    if costs:
        print()
        print(table(costs, ["store", "trials", "Optuna: sampler (TPE) ms/trial", "Optuna: pruner + reports ms/trial",
                            "adamtune + tell ms/trial"]))
    worst = max(float(r[3]) for r in rows if "report" not in r[2] and "dashboard" not in r[2])
    print(f"\nstored per trial: {per_trial:,.0f} bytes")
    print(f"slowest read command other than report: {worst:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
