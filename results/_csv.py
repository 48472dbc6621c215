"""Trials as CSV rows, for spreadsheets and pandas."""

from __future__ import annotations

import csv
import io
from typing import Any, Sequence

from ._record import TrialRecord


def trials_csv(trials: Sequence[TrialRecord], param_order: Sequence[str] = ()) -> str:
    """One CSV row per trial: number, state, value, `params_NAME` (the sampled values by their public names,
    as in the export: beta2, not one_minus_beta2), val_accuracy, epochs trained, duration in seconds.
    Columns follow `param_order` (the study's search space), then any other parameter as first seen."""
    names = [n for n in param_order if any(n in t.params for t in trials)]
    for t in trials:
        names.extend(n for n in t.params if n not in names)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["number", "state", "value", *(f"params_{n}" for n in names), "val_accuracy", "epochs",
                     "duration"])
    for t in trials:
        writer.writerow([t.number, t.state.upper(), _cell(t.value), *(_cell(t.params.get(n)) for n in names),
                         _cell(t.val_accuracy), t.epochs, _cell(t.seconds)])
    return buffer.getvalue()


def _cell(value: Any) -> Any:
    return "" if value is None else value
