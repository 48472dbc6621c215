"""Which worker queues a failed trial's retry, when several look at once (workers started together each
scan the study for retries owed): the one whose claim row goes in first. Optuna's trial system attributes
are unique per (trial, key), so the database, not a read-then-write, decides."""

from __future__ import annotations

import json
import time

import optuna
import sqlalchemy

RETRY_CLAIM = "adamtune:retry_queued"


def study_engine(study: optuna.Study) -> sqlalchemy.Engine | None:
    """The SQL engine behind the study's store (through a cache wrapper); None for stores without SQL."""
    storage = getattr(study, "_storage", None)
    engine = getattr(storage, "engine", None)
    return engine if engine is not None else getattr(getattr(storage, "_backend", None), "engine", None)


def claim_retry(study: optuna.Study, trial_id: int, claimer: str, lease: float, now: float | None = None) -> bool:
    """True when `claimer` (a worker's host:pid) holds the claim to queue the retry of trial `trial_id`: it
    put the claim row in first, now or on an earlier attempt (one that lost its connection before queueing
    tries again), or the claim it found is older than `lease` seconds (its claimer died between claiming and
    queueing, or the retry would exist: the caller looked for one first), and it took that claim over.
    Always True on a store without SQL (journal file, gRPC proxy): a duplicate stays possible. Claim times
    are each worker's own clock (`now`, default time.time()): machines' clocks must agree within the lease."""
    engine = study_engine(study)
    if engine is None:
        return True
    from optuna.storages._rdb import models

    table = models.TrialSystemAttributeModel.__table__
    now = time.time() if now is None else now
    mine = json.dumps({"by": claimer, "at": now})
    try:
        with engine.begin() as conn:
            conn.execute(table.insert().values(trial_id=trial_id, key=RETRY_CLAIM, value_json=mine))
        return True
    except sqlalchemy.exc.IntegrityError:
        pass
    this_claim = (table.c.trial_id == trial_id) & (table.c.key == RETRY_CLAIM)
    with engine.connect() as conn:
        held = conn.execute(sqlalchemy.select(table.c.value_json).where(this_claim)).scalar_one_or_none()
    holder = json.loads(held) if held is not None else {}
    holder = holder if isinstance(holder, dict) else {"by": holder, "at": 0.0}  # a claim before leases: stale
    if holder.get("by") == claimer:
        return True
    if now - float(holder.get("at", 0.0)) < lease:
        return False
    with engine.begin() as conn:  # take the stale claim over, unless another worker just did
        taken = conn.execute(sqlalchemy.update(table).where(this_claim & (table.c.value_json == held))
                             .values(value_json=mine))
    return taken.rowcount == 1
