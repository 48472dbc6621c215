"""The terminal views: every study in a store, one study's trials, the best trial against the baseline."""

from __future__ import annotations

from ._format import fmt_param, table
from ._views import StudyView


def studies_table(views: list[StudyView]) -> str:
    rows = []
    for view in views:
        counts = view.counts
        base = view.context.base
        rows.append([view.name, f"{base.get('dataset', '?')}/{base.get('model', '?')}", view.direction,
                     counts["complete"], counts["pruned"], counts["fail"], counts["running"], counts["waiting"],
                     view.best_value])
    return table(["study", "data/model", "direction", "complete", "pruned", "failed", "running", "waiting",
                  "best"], rows)


def trials_table(view: StudyView) -> str:
    rows = [[t.number, t.state, t.value, t.val_accuracy, t.epochs, t.seconds, t.summary, t.note]
            for t in view.trials]
    return table(["#", "state", "value", "val_acc", "epochs", "seconds", "configuration", "note"], rows)


def best_table(view: StudyView) -> str:
    """The best trial next to the baseline trial, the best trial's sampled values and the gain."""
    best, baseline = view.best, view.baseline
    rows = [["best", best.number, best.state, best.val_loss, best.val_accuracy, best.summary]]
    if baseline is not None:
        rows.append(["baseline", baseline.number, baseline.state, baseline.val_loss, baseline.val_accuracy,
                     baseline.summary])
    text = table(["", "trial", "state", "val_loss", "val_acc", "configuration"], rows)
    params = "\n".join(f"  {k} = {fmt_param(v)}" for k, v in best.params.items())
    text += f"\n\nbest trial #{best.number} sampled:\n{params}"
    gain = view.gain_over_baseline()
    if gain is not None:
        text += f"\n\ngain over the baseline trial (PyTorch's Adam defaults): {gain:+.4f} on the objective"
    return text
