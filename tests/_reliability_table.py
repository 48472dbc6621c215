"""The reliability table: one row per reliability scenario (what `tally` in reliability_tests/workers.py
records), printed in pytest's terminal summary and written as Markdown to $ADAMTUNE_RELIABILITY_TABLE.

tests/conftest.py registers this module as a plugin; rows live in this process (no xdist here).
"""

from __future__ import annotations

import os
from pathlib import Path

TABLE_ENV = "ADAMTUNE_RELIABILITY_TABLE"
COLUMNS = ("scenario", "workers", "finished", "retried", "lost", "wall_s")
ROWS: list[dict] = []


def add_row(row: dict) -> None:
    ROWS.append({key: row[key] for key in COLUMNS})


def markdown() -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(str(row[key]) for key in COLUMNS) + " |" for row in ROWS]
    return "\n".join(lines) + "\n"


def pytest_terminal_summary(terminalreporter) -> None:
    if not ROWS:
        return
    terminalreporter.section("reliability table")
    for line in markdown().splitlines():
        terminalreporter.write_line(line)
    path = os.environ.get(TABLE_ENV)
    if path:
        Path(path).write_text(markdown())
        terminalreporter.write_line(f"written to {path}")
