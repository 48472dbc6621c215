"""`adamtune status`: where a running study stands, which worker runs what, and who is still alive."""

from __future__ import annotations

from datetime import datetime, timezone

import optuna
import sqlalchemy
from optuna.trial import TrialState

from ._tables import table


def last_heartbeats(storage, study_name: str) -> dict[int, datetime]:
    """Trial number -> its worker's last heartbeat, read from Optuna's trial_heartbeats table
    (Optuna has no public reader for it); empty for stores without heartbeats."""
    engine = getattr(storage, "engine", None)
    if engine is None:
        return {}
    query = sqlalchemy.text(
        "SELECT t.number, h.heartbeat FROM trial_heartbeats h JOIN trials t ON t.trial_id = h.trial_id "
        "JOIN studies s ON s.study_id = t.study_id WHERE s.study_name = :name")
    with engine.connect() as conn:
        return {number: beat for number, beat in conn.execute(query, {"name": study_name})}


def status_text(study: optuna.Study, storage) -> str:
    trials = study.get_trials(deepcopy=False)
    counts = {state: sum(t.state == state for t in trials) for state in TrialState}
    lines = [f"study {study.study_name}: " + ", ".join(f"{counts[s]} {s.name.lower()}" for s in TrialState
                                                          if counts[s])]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if complete:
        best = study.best_trial
        lines.append(f"best so far: trial #{best.number} value {best.value:.4f} "
                     f"({best.user_attrs.get('summary', '')})")
    running = [t for t in trials if t.state == TrialState.RUNNING]
    if running:
        beats = last_heartbeats(storage, study.study_name)
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        rows = []
        for t in running:
            beat = beats.get(t.number)
            ago = f"{(now - beat).total_seconds():.0f} s ago" if beat else "no heartbeat"
            epochs = len(t.intermediate_values)
            rows.append([t.number, t.user_attrs.get("worker", "?"), epochs, ago, t.user_attrs.get("summary", "")])
        lines += ["", table(["running", "worker", "epochs done", "last heartbeat", "configuration"], rows)]
    return "\n".join(lines)
