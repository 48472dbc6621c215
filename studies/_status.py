"""`adamtune status`: where a running study stands, which worker runs what, and who is still alive."""

from __future__ import annotations

import optuna
from optuna.trial import TrialState

from storage import heartbeat_ages

from ._tables import table


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
        ages = heartbeat_ages(storage, study.study_name)
        rows = []
        for t in running:
            age = ages.get(t.number)
            ago = f"{age.total_seconds():.0f} s ago" if age is not None else "no heartbeat"
            epochs = len(t.intermediate_values)
            rows.append([t.number, t.user_attrs.get("worker", "?"), epochs, ago, t.user_attrs.get("summary", "")])
        lines += ["", table(["running", "worker", "epochs done", "last heartbeat", "configuration"], rows)]
    return "\n".join(lines)
