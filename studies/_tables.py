"""Plain-text tables a person can read in a terminal or a CI log."""

from __future__ import annotations

from typing import Any, Sequence

import optuna
from optuna.trial import TrialState

from ._export import duration_seconds, epochs_trained


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    line = lambda values: "  ".join(v.ljust(w) for v, w in zip(values, widths)).rstrip()  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in cells])


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e-3 or abs(value) >= 1e4 else f"{value:.4f}"
    return str(value)


def studies_table(studies: list[optuna.Study]) -> str:
    rows = []
    for study in studies:
        trials = study.get_trials(deepcopy=False)
        count = lambda s: sum(t.state == s for t in trials)  # noqa: E731
        spec = study.user_attrs.get("spec", {})
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        best = study.best_value if complete else None
        rows.append([study.study_name, f"{spec.get('dataset', '?')}/{spec.get('model', '?')}",
                     study.direction.name.lower(), count(TrialState.COMPLETE), count(TrialState.PRUNED),
                     count(TrialState.FAIL), count(TrialState.RUNNING) + count(TrialState.WAITING), best])
    return table(["study", "data/model", "direction", "complete", "pruned", "failed", "running", "best"], rows)


def trials_table(study: optuna.Study) -> str:
    rows = []
    for t in study.get_trials(deepcopy=False):
        a = t.user_attrs
        note = "baseline" if a.get("baseline") else a.get("pruned_reason", "")
        rows.append([t.number, t.state.name.lower(), t.value, a.get("val_accuracy"), epochs_trained(t), duration_seconds(t),
                     a.get("summary", ""), note])
    return table(["#", "state", "value", "val_acc", "epochs", "seconds", "configuration", "note"], rows)


def best_table(study: optuna.Study, best: optuna.trial.FrozenTrial) -> str:
    baseline = next((t for t in study.get_trials(deepcopy=False) if t.user_attrs.get("baseline")), None)
    rows = [_trial_row("best", best)]
    if baseline is not None:
        rows.append(_trial_row("baseline", baseline))
    text = table(["", "trial", "state", "val_loss", "val_acc", "configuration"], rows)
    sampled = best.user_attrs.get("params", best.params)
    params = "\n".join(f"  {k} = {v:.6g}" if isinstance(v, float) else f"  {k} = {v}" for k, v in sampled.items())
    text += f"\n\nbest trial #{best.number} sampled:\n{params}"
    if baseline is not None and baseline.state == TrialState.COMPLETE and baseline.number != best.number:
        gain = baseline.value - best.value if study.direction.name == "MINIMIZE" else best.value - baseline.value
        text += f"\n\ngain over the baseline trial (PyTorch's Adam defaults): {gain:+.4f} on the objective"
    return text


def _trial_row(label: str, t: optuna.trial.FrozenTrial) -> list:
    return [label, t.number, t.state.name.lower(), t.user_attrs.get("val_loss", t.value),
            t.user_attrs.get("val_accuracy"), t.user_attrs.get("summary", "")]
