"""The terminal views: every study in a store, one study's trials, the best trial against the baseline."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from ._format import fmt, fmt_param, table
from ._record import TrialRecord
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


TRIAL_HEADERS = ["#", "state", "value", "val_acc", "epochs", "seconds", "configuration", "note"]
STREAM_WIDTHS = [6, 8, 10, 7, 6, 8, 56]  # --all prints as it reads, so its columns cannot be measured first


def trials_table(records: Iterable[TrialRecord]) -> str:
    """A table of the given trials, columns as wide as their widest cell."""
    return table(TRIAL_HEADERS, [_trial_cells(t) for t in records])


def trials_lines(records: Iterable[TrialRecord]) -> Iterator[str]:
    """The same table line by line as the trials are read, in fixed-width columns (a study of 10,000
    trials starts printing at once instead of after the last row is read)."""
    yield _fixed(TRIAL_HEADERS)
    yield _fixed(["-" * w for w in STREAM_WIDTHS] + ["----"])
    for t in records:
        yield _fixed([fmt(v) for v in _trial_cells(t)])


def default_selection(view: StudyView, best: int = 10, latest: int = 20) -> list[TrialRecord]:
    """What `adamtune trials NAME` shows without flags: the baseline, the `best` best and the `latest`
    latest trials, once each, in trial-number order."""
    chosen: dict[int, TrialRecord] = {}
    for t in [*([view.baseline] if view.baseline else []), *(view.top(best) if view.counts["complete"] else []),
              *view.latest(latest)]:
        chosen.setdefault(t.number, t)
    return [chosen[n] for n in sorted(chosen)]


def _trial_cells(t: TrialRecord) -> list:
    return [t.number, t.state, t.value, t.val_accuracy, t.epochs, t.seconds, t.summary, t.note]


def _fixed(cells: Sequence[str]) -> str:
    return "  ".join(c.ljust(w) for c, w in zip(cells, [*STREAM_WIDTHS, 0], strict=True)).rstrip()


def best_table(view: StudyView) -> str:
    """The best trial next to the baseline trial, the best trial's sampled values and the gain."""
    best, baseline = view.best, view.baseline
    # Beside the loss: the objective's metric (val_rmse, val_macro_f1, ...), or a classifier's accuracy.
    metric = view.context.objective if view.context.objective != "val_loss" else "val_accuracy"
    rows = [["best", best.number, best.state, best.val_loss, best.at_best(metric), best.summary]]
    if baseline is not None:
        rows.append(["baseline", baseline.number, baseline.state, baseline.val_loss, baseline.at_best(metric),
                     baseline.summary])
    text = table(["", "trial", "state", "val_loss", "val_acc" if metric == "val_accuracy" else metric,
                  "configuration"], rows)
    params = "\n".join(f"  {k} = {fmt_param(v)}" for k, v in best.params.items())
    text += f"\n\nbest trial #{best.number} sampled:\n{params}"
    gain = view.gain_over_baseline()
    if gain is not None:
        text += f"\n\ngain over the baseline trial (PyTorch's Adam defaults): {gain:+.4f} on the objective"
    return text
