"""Failing a trial and queueing its retry, as a heartbeat would later: for the trial a worker held when it
stopped, and for the FAIL trials whose retry was never queued."""

from __future__ import annotations

import copy
import logging

import optuna
from optuna.trial import TrialState

from adamtune.storage import Attr, claim_retry, optuna_experimental

from ._objective import WORKER, Objective
from ._spec import StudySpec

log = logging.getLogger("adamtune")


def retry_interrupted(study: optuna.Study, objective: Objective, spec: StudySpec) -> None:
    """Mark this worker's unfinished trial FAIL and enqueue its retry, as a heartbeat would later. The trial
    is let go only once that is done: called again by `Store.call` after the store was unreachable, it
    must try again, not find nothing to do and leave the trial RUNNING (seen with PostgreSQL stopped)."""
    if objective.current is None:
        return
    retry_trial(study, objective.current, spec)
    objective.current = None


def queue_owed_retries(study: optuna.Study, spec: StudySpec) -> None:
    """Queue the retry of every FAIL trial that has none and fewer than `max_retry` retries behind it: its
    worker failed it but the store refused the retry (a full disk takes the small FAIL write, not the new
    trial), or the worker died in between. Each starting worker looks, so nothing failed is lost; a trial
    whose model was refused at its values is not retried (it would fail the same way), and of workers
    starting together only the first to claim a trial queues its retry; a claim older than the heartbeat's
    grace period with no retry behind it (its claimer died in between) is taken over."""
    everything = study.get_trials(deepcopy=False)
    retried = {t.system_attrs["retry_history"][-1] for t in everything if t.system_attrs.get("retry_history")}
    for trial in everything:
        history = trial.system_attrs.get("retry_history", [])
        if (trial.state == TrialState.FAIL and trial.number not in retried and not trial.user_attrs.get(Attr.REFUSED)
                and len(history) < spec.heartbeat.max_retry
                and claim_retry(study, trial._trial_id, WORKER, lease=spec.heartbeat.grace_period)):
            retry_trial(study, trial.number, spec)
            log.warning("trial %d is FAIL and its retry was never queued: queued now", trial.number)


def retry_trial(study: optuna.Study, number: int, spec: StudySpec) -> None:
    """Mark trial `number` FAIL (unless it is already) and enqueue its retry, as a heartbeat would later."""
    trial = next(t for t in study.get_trials(deepcopy=False) if t.number == number)
    if trial.state == TrialState.RUNNING:  # Optuna could not write FAIL while the store was down
        study.tell(number, state=TrialState.FAIL)
        trial = next(t for t in study.get_trials(deepcopy=False) if t.number == number)
    if trial.state == TrialState.FAIL:
        trial = copy.copy(trial)  # the retry starts without the failed run's reason
        trial.user_attrs = {k: v for k, v in trial.user_attrs.items() if k != Attr.FAIL_REASON}
        with optuna_experimental():
            optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=spec.heartbeat.max_retry)(study, trial)
