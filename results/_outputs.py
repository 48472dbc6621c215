"""Where a command writes what a person asked for (a report, an export, a trained model): checked before
any work is done, so a typo in a path is one line at once, not a traceback after minutes of training."""

from __future__ import annotations

from pathlib import Path

from adamtune.errors import InputError


def output_dir(path: str | Path, flag: str, create: bool = True) -> Path:
    """`path` as a directory to write into, created if missing (unless not `create`: then only checked, for
    a command that may still refuse before it writes); InputError naming `flag` if it cannot be one."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(flag, str(path), "is a file, not a directory; name a directory (it is created if missing)")
    blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise InputError(flag, str(path), f"cannot be created: {blocker} is a file")
    if not create:
        return path
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(flag, str(path), f"cannot be created: {exc.strerror or exc}") from None
    return path


def output_file(path: str | Path, flag: str) -> Path:
    """`path` as a file to write: its directory must exist (a typo there should not create directories)."""
    path = Path(path)
    if path.is_dir():
        raise InputError(flag, str(path), "is a directory; name a file")
    if not path.parent.is_dir():
        raise InputError(flag, str(path), f"directory {path.parent} does not exist")
    return path
