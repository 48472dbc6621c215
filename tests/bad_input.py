"""What every room's bad-input tests check: exit code 2 (or the documented code), one line, no traceback,
and nothing written to the store."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy


def row_count(url: str) -> int:
    """Rows in every table of the store (0 when the SQLite file does not exist; it is not created)."""
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).exists():
        return 0
    engine = sqlalchemy.create_engine(url)
    try:
        inspector = sqlalchemy.inspect(engine)
        with engine.connect() as conn:
            return sum(conn.execute(sqlalchemy.text(f'SELECT COUNT(*) FROM "{t}"')).scalar()
                       for t in inspector.get_table_names() if t != "alembic_version")
    finally:
        engine.dispose()


def one_line_error(result, code: int, *needles: str) -> None:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert lines and lines[-1].startswith("adamtune: error: "), result.stderr
    assert [line.startswith("study ") for line in lines[:-1]] == [True] * (len(lines) - 1), result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr
