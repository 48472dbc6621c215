"""Real worker processes on one study: start them, watch the store, kill them."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import optuna
import pytest
import sqlalchemy
import yaml

from _reliability_table import add_row
from adamtune.storage import Heartbeat, open_storage, with_reconnect
from conftest import ADAMTUNE

# Four workers on two cores: one thread each, or OpenMP threads spin-wait on each other.
WORKER_ENV = {"OMP_NUM_THREADS": "1"}
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
OLD_OPTUNA = "3.1.1"  # schema v3.0.0.d, older than the installed Optuna's: `optuna storage upgrade` is needed


def free_port() -> int:
    """A free TCP port on the loopback, for a dashboard, a gRPC proxy or a PostgreSQL of a test's own."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unique(prefix: str) -> str:
    return f"{prefix}_{int(time.time() * 1000) % 10**9}"


def reliability_study(directory, name: str, **changes):
    """A CNN on digits with fixed settings: every complete trial trains exactly `epochs` epochs
    (~0.2 s each), so curves can be checked for gaps; heartbeats fast enough for a test. Solo workers
    (`pack: 1`) unless a test says: the packed worker's own scenarios are in test_pack_workers.py."""
    spec = {
        "name": name, "dataset": "digits", "model": "cnn", "epochs": 6, "seed": 0,
        "search_space": ["adam"],
        "params": {"batch_size": {"type": "fixed", "value": 32}, "width": {"type": "fixed", "value": 8}},
        "sampler": {"type": "random"}, "pruner": {"type": "none"}, "n_trials": 10,
        "heartbeat": {"interval": 1, "grace_period": 3, "max_retry": 3},
        "artifacts": {"path": str(directory / "artifacts"), "checkpoint_every": 0},  # every epoch: a retry
        "reconnect_timeout": 60, "pack": 1,                                       # resumes all its victim reported
    }
    spec.update(changes)
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def spawn(*args: str, env: dict | None = None, cwd=None, log: Path | None = None) -> subprocess.Popen:
    """The `adamtune` command line in a process; with `log`, its stderr goes to that file, which a test can
    read while it runs (finish() then returns the file's text as its output)."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("ADAMTUNE_STORAGE")}
    full.update(WORKER_ENV)
    full.update(env or {})
    stderr = subprocess.PIPE if log is None else log.open("w")
    # SIGINT as a terminal sends it: a child of a background job would otherwise inherit it ignored
    proc = subprocess.Popen([ADAMTUNE, *args], env=full, cwd=cwd, stdout=subprocess.PIPE, stderr=stderr, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    proc.log = log  # type: ignore[attr-defined]
    if log is not None:
        stderr.close()  # the child holds its own copy
    return proc


def wait_for(predicate, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def finish(procs: list[subprocess.Popen], timeout: float = 240) -> list[tuple[int, str]]:
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=timeout)
        log = getattr(p, "log", None)
        out.append((p.returncode, stdout + (stderr if log is None else log.read_text())))
    return out


@contextlib.contextmanager
def frozen(proc: subprocess.Popen, postgres: str | None = None):
    """Stop a worker (SIGSTOP) while the test looks at or changes its running trial, so the trial cannot
    end meanwhile however fast the machine is; signals sent inside are delivered when it continues.
    With the worker's `postgres` URL, it is stopped only outside a transaction: a worker frozen while
    holding a row lock would block the test's own writes to its trial for ever."""
    while True:
        proc.send_signal(signal.SIGSTOP)
        wait_for(lambda: _stopped(proc.pid), 30, f"worker {proc.pid} to stop", interval=0.01)
        if postgres is None or not _open_transactions(postgres, proc.pid):
            break
        proc.send_signal(signal.SIGCONT)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGCONT)


def _stopped(pid: int) -> bool:
    """Every thread of `pid` is stopped (state T in /proc); a thread that ended meanwhile counts as stopped."""
    states = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            states.append((task / "stat").read_text().rsplit(")", 1)[1].split()[0])
        except FileNotFoundError:
            continue
    return all(state == "T" for state in states)


def _client_ports(pid: int) -> list[int]:
    """The local TCP ports of process `pid`'s sockets: its sessions' `client_port` in pg_stat_activity."""
    sockets = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(FileNotFoundError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                sockets.add(target[len("socket:["):-1])
    return [int(fields[1].rsplit(":", 1)[1], 16)  # local address HEX_IP:HEX_PORT; field 9 is the inode
            for table in ("/proc/net/tcp", "/proc/net/tcp6")
            for fields in (line.split() for line in Path(table).read_text().splitlines()[1:])
            if fields[9] in sockets]


def _sessions_of(url: str, pid: int, select: str, values: dict | None = None) -> int:
    """`select` (a count over pg_stat_activity rows `WHERE {mine}`) over process `pid`'s sessions, found by
    their client ports (other processes may use the same server)."""
    ports = _client_ports(pid)
    if not ports:
        return 0
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sqlalchemy.text(select.format(mine="client_port = ANY(:ports)")),
                                {"ports": ports, **(values or {})}).scalar()
    finally:
        engine.dispose()


def _open_transactions(url: str, pid: int, but: tuple[str, ...] = ()) -> int:
    """Sessions of process `pid` that are inside a transaction or a query (`but` those whose last statement
    names one of `but`)."""
    beside = "".join(f" AND query NOT LIKE :but{i}" for i in range(len(but)))
    return _sessions_of(url, pid, "SELECT count(*) FROM pg_stat_activity WHERE {mine} AND state <> 'idle'" + beside,
                        {f"but{i}": f"%{text}%" for i, text in enumerate(but)})


def terminate_sessions(url: str, pid: int) -> int:
    """pg_terminate_backend on every session of process `pid` (not other processes' on the same server)."""
    return _sessions_of(url, pid, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE {mine}")


def terminate_mid_transaction(proc: subprocess.Popen, url: str, timeout: float = 120) -> int:
    """Stop `proc` at a moment one of its sessions is inside a transaction or a query (not a heartbeat's: that
    thread only tries again), pg_terminate_backend all its sessions, and let it go on: its next store call
    meets the broken connection (a kill between its calls would be healed silently by the pool's pre-ping).
    The number of sessions terminated."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        proc.send_signal(signal.SIGSTOP)
        try:
            wait_for(lambda: _stopped(proc.pid), 30, f"worker {proc.pid} to stop", interval=0.01)
            if _open_transactions(url, proc.pid, but=("trial_heartbeats", "now()")):  # a heartbeat's statements
                return terminate_sessions(url, proc.pid)
        finally:
            proc.send_signal(signal.SIGCONT)
        time.sleep(0.02)  # let it run on to its next store call
    pytest.fail(f"worker {proc.pid} was never caught inside a transaction in {timeout} s")


def judged_stale(url: str, name: str, trial: optuna.trial.FrozenTrial) -> bool:
    """Whether the store, by the database's clock, counts `trial` as stale under the study's heartbeat
    settings: exactly what the next `fail_stale_trials` acts on. Tests wait for this instead of
    sleeping out the grace period."""
    plain = open_storage(url)
    try:
        study_id = plain.get_study_id_from_name(name)
        beat = plain.get_study_user_attrs(study_id)["heartbeat"]
    finally:
        plain.engine.dispose()
    storage = open_storage(url, Heartbeat(**beat))
    try:
        return trial._trial_id in storage._get_stale_trial_ids(study_id)
    finally:
        storage.engine.dispose()


def trials(url: str, name: str, states=None) -> list[optuna.trial.FrozenTrial]:
    """The study's trials (those in `states`), or none while no worker has created it yet. A lost connection
    is waited out: tests that terminate workers' sessions may share the server with this one."""
    return with_reconnect(lambda: _trials(url, name, states), url, 60)


def _trials(url: str, name: str, states) -> list[optuna.trial.FrozenTrial]:
    storage = open_storage(url)
    if name not in optuna.study.get_all_study_names(storage):
        result = []
    else:
        result = optuna.load_study(study_name=name, storage=storage).get_trials(states=states)
    if isinstance(storage, optuna.storages.RDBStorage):
        storage.engine.dispose()
    return result


def epochs_of(trial: optuna.trial.FrozenTrial) -> int:
    return len(trial.intermediate_values)


def running_trial_of(url: str, name: str, pid: int, min_epochs: int) -> optuna.trial.FrozenTrial | None:
    """The trial worker `pid` is running, once it has reported `min_epochs` epochs."""
    for t in trials(url, name, states=(optuna.trial.TrialState.RUNNING,)):
        if t.user_attrs.get("worker", "").endswith(f":{pid}") \
                and epochs_of(t) >= min_epochs:
            return t
    return None


def kill_mid_trial(proc: subprocess.Popen, url: str, name: str, min_epochs: int = 1,
                   timeout: float = 120) -> optuna.trial.FrozenTrial:
    """SIGKILL worker `proc` while it trains a trial that has reported `min_epochs` epochs (so its checkpoint
    exists), however short its epochs: the worker is stopped, its trial checked in the store, then killed.
    Returns that trial as the store held it."""
    deadline = time.monotonic() + timeout

    def training() -> optuna.trial.FrozenTrial | None:
        if proc.poll() is not None:
            (code, output), = finish([proc])
            pytest.fail(f"worker {proc.pid} ended (exit code {code}) before it could be killed:\n{output[-3000:]}")
        return running_trial_of(url, name, proc.pid, min_epochs)

    while True:
        wait_for(training, max(deadline - time.monotonic(), 1), f"worker {proc.pid} to train {min_epochs} epoch(s)")
        with frozen(proc, url if url.startswith("postgresql") else None):
            victim = running_trial_of(url, name, proc.pid, min_epochs)
            if victim is not None:
                proc.send_signal(signal.SIGKILL)
        if victim is not None:
            proc.wait()
            return victim


def tally(record_property, scenario: str, workers: int, all_trials, started: float,
          max_retry: int | None = None) -> None:
    """One row of the reliability table (printed at the end of the run, written to
    $ADAMTUNE_RELIABILITY_TABLE, and kept by pytest --junitxml): trials finished, retried, lost.
    A trial is lost when it failed and nothing retried it, or is still RUNNING; with `max_retry`, a failed
    retry that already had `max_retry` tries before it was given up as configured, not lost."""
    from optuna.trial import TrialState

    retried_numbers = {t.user_attrs["retry_of"] for t in all_trials if "retry_of" in t.user_attrs}
    retried_again = {n for u in all_trials for n in (u.system_attrs.get("retry_history") or [])}
    lost = [t.number for t in all_trials if t.state == TrialState.RUNNING
            or (t.state == TrialState.FAIL and t.number not in retried_numbers and t.number not in retried_again
                and not (max_retry is not None and len(t.system_attrs.get("retry_history") or []) >= max_retry))]
    row = {"scenario": scenario, "workers": workers,
           "finished": sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in all_trials),
           "retried": len(retried_numbers), "lost": len(lost), "wall_s": round(time.monotonic() - started, 1)}
    record_property("tally", row)
    add_row(row)
    assert not lost, f"lost trials {lost}"
