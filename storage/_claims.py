"""Which worker queues a failed trial's retry, when several look at once (workers started together each
scan the study for retries owed): the one whose claim row goes in first. Optuna's trial system attributes
are unique per (trial, key), so the database, not a read-then-write, decides."""

from __future__ import annotations

import json

import optuna
import sqlalchemy

RETRY_CLAIM = "adamtune:retry_queued"


def study_engine(study: optuna.Study) -> sqlalchemy.Engine | None:
    """The SQL engine behind the study's store (through a cache wrapper); None for stores without SQL."""
    storage = getattr(study, "_storage", None)
    engine = getattr(storage, "engine", None)
    return engine if engine is not None else getattr(getattr(storage, "_backend", None), "engine", None)


def claim_retry(study: optuna.Study, trial_id: int, claimer: str) -> bool:
    """True when `claimer` (a worker's host:pid) holds the claim to queue the retry of trial `trial_id`: it
    put the claim row in first, now or on an earlier attempt (one that lost its connection before queueing
    tries again). Always True on a store without SQL (journal file, gRPC proxy): a duplicate stays possible."""
    engine = study_engine(study)
    if engine is None:
        return True
    from optuna.storages._rdb import models

    table = models.TrialSystemAttributeModel.__table__
    mine = json.dumps(claimer)
    try:
        with engine.begin() as conn:
            conn.execute(table.insert().values(trial_id=trial_id, key=RETRY_CLAIM, value_json=mine))
    except sqlalchemy.exc.IntegrityError:
        with engine.connect() as conn:
            held = conn.execute(sqlalchemy.select(table.c.value_json).where(
                table.c.trial_id == trial_id, table.c.key == RETRY_CLAIM)).scalar_one_or_none()
        return held == mine
    return True
