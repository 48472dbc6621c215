"""Where a command writes what a person asked for (a report, an export, a trained model): checked before
any work is done, by writing a test file there, so a typo in a path, a read-only file system or /proc is one
line at once, not a traceback after minutes of training. A write that fails later all the same (the disk
filled up meanwhile) is one line too (`writing`)."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from adamtune.errors import InputError, OutputError


def output_dir(path: str | Path, flag: str, create: bool = True) -> Path:
    """`path` as a directory to write into, created if missing (unless not `create`: then only checked, for
    a command that may still refuse before it writes); InputError naming `flag` if it cannot be one."""
    with _looked_up(path, flag):
        return _output_dir(Path(path), flag, create)


def _output_dir(path: Path, flag: str, create: bool) -> Path:
    if path.exists() and not path.is_dir():
        raise InputError(flag, str(path), "is a file, not a directory; name a directory (it is created if missing)")
    blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise InputError(flag, str(path), f"cannot be created: {blocker} is a file")
    if not create:
        existing = next(p for p in (path, *path.parents) if p.exists())
        _test_write(existing, flag, path, "cannot be created" if existing != path else "cannot be written")
        return path
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(flag, str(path), f"cannot be created: {exc.strerror or exc}") from None
    _test_write(path, flag, path, "cannot be written")
    return path


def output_file(path: str | Path, flag: str) -> Path:
    """`path` as a file to write: its directory must exist (a typo there should not create directories)."""
    path = Path(path)
    with _looked_up(path, flag):
        if path.is_dir():
            raise InputError(flag, str(path), "is a directory; name a file")
        if not path.parent.is_dir():
            raise InputError(flag, str(path), f"directory {path.parent} does not exist")
    _test_write(path, flag, path, "cannot be written", directory=path.parent)
    return path


@contextlib.contextmanager
def _looked_up(path: str | Path, flag: str) -> Iterator[None]:
    """A path the file system cannot even look up (a name longer than it allows: ENAMETOOLONG) is one line."""
    try:
        yield
    except OSError as exc:
        raise InputError(flag, str(path), f"cannot be used: {exc.strerror or exc}") from None


@contextlib.contextmanager
def writing(path: str | Path, flag: str, partial: Path | None = None) -> Iterator[None]:
    """Turn a write that fails despite the check (a full disk) into one line (OutputError, exit 1);
    `partial`, a file the failed write leaves half written, is removed: no truncated export is left behind."""
    try:
        yield
    except OSError as exc:
        if partial is not None:
            with contextlib.suppress(OSError):
                partial.unlink()
        raise OutputError(f"{flag} {path}: writing failed: {exc.strerror or exc}"
                          + (f" ({exc.filename})" if exc.filename and str(exc.filename) != str(path) else "")) from None


def _test_write(target: Path, flag: str, path: Path, what: str, directory: Path | None = None) -> None:
    """Create and delete a file in `directory` (default: `target`): the only test a read-only mount, /proc or a
    full inode table answers truthfully (root passes every permission check, so os.access would say yes); a
    file name (`target` in `directory`) longer than the file system allows is refused here too."""
    directory = target if directory is None else directory
    try:
        if directory != target and len(os.fsencode(target.name)) > os.pathconf(directory, "PC_NAME_MAX"):
            raise OSError(errno.ENAMETOOLONG, os.strerror(errno.ENAMETOOLONG))
        with tempfile.TemporaryFile(dir=directory, prefix=".adamtune-write-test-"):
            pass
    except OSError as exc:
        raise InputError(flag, str(path), f"{what}: {exc.strerror or exc}"
                         + (f" ({directory})" if directory != path else "")) from None
