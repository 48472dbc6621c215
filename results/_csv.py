"""Trials as CSV rows, for spreadsheets and pandas, written as they are read (memory stays flat)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from ._record import TrialRecord


def trials_csv(trials: Iterable[TrialRecord], params: Sequence[str]) -> Iterator[str]:
    """CSV text, a header line and then one row per trial as it comes: number, state, value, `params_NAME`
    for each name in `params` (sampled values by their public names, as in the export: beta2, not
    one_minus_beta2), val_accuracy, epochs trained, duration in seconds."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")

    def line(cells: list[Any]) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(cells)
        return buffer.getvalue()

    yield line(["number", "state", "value", *(f"params_{n}" for n in params), "val_accuracy", "epochs", "duration"])
    for t in trials:
        yield line([t.number, t.state.upper(), _cell(t.value), *(_cell(t.params.get(n)) for n in params),
                    _cell(t.val_accuracy), t.epochs, _cell(t.seconds)])


def _cell(value: Any) -> Any:
    return "" if value is None else value
