"""The artifacts directory must take writes: checked before the store is touched, so a file in its
place, a read-only mount or a full disk is one line at start instead of a lost trial; a write that
fails mid-trial anyway (the disk filled up) fails that trial, queues its retry and stops the worker."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from adamtune.errors import AdamtuneError, InputError


class ArtifactsDirError(InputError):
    """The artifacts directory cannot be created or written (bad setting or mount: exit 2)."""

    def __init__(self, path: str | Path, reason: str) -> None:
        InputError.__init__(self, "artifacts directory", str(path), reason)
        self.path = Path(path)
        self.args = (f"artifacts directory {path}: {reason}",)


class TrialFileError(AdamtuneError):
    """A file operation failed while a trial ran (a checkpoint or artifact write on a full or
    read-only disk). The trial is failed and retried; working on would fail every trial the same way."""

    def __init__(self, number: int, root: str | Path, exc: OSError) -> None:
        self.number = number
        self.reason = f"file system error: {exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
        super().__init__(f"trial {number} stopped by a {self.reason} (artifacts directory {root}); it was marked "
                         "FAIL and its retry queued, which resumes from its last checkpoint; fix the disk, then run "
                         "again")


FILE_SYSTEM_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG, errno.EIO}


def file_system_failure(root: str | Path, exc: BaseException) -> OSError | None:
    """The file-system error behind `exc`, judged by what happened rather than by the class a library
    wrapped it in (torch's writer raised `RuntimeError: ... unexpected pos` on a full disk): an OSError,
    one with a full-disk or read-only errno behind it, or the artifacts file system now read-only or with
    no space left. None for anything else; store errors are not asked about (the store's own disk)."""
    if isinstance(exc, OSError):
        return exc
    cause = exc.__cause__ or exc.__context__
    while cause is not None:
        if isinstance(cause, OSError) and cause.errno in FILE_SYSTEM_ERRNOS:
            return cause
        cause = cause.__cause__ or cause.__context__
    try:
        stats = os.statvfs(root)
    except OSError as failed:
        return failed
    if stats.f_flag & os.ST_RDONLY:
        return OSError(errno.EROFS, os.strerror(errno.EROFS))
    if stats.f_bavail == 0:
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return None


def check_artifacts_dir(path: str | Path) -> Path:
    """Create `path` if missing and prove a file can be written and removed there; else ArtifactsDirError."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ArtifactsDirError(path, "is a file, not a directory")
    blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise ArtifactsDirError(path, f"cannot be created: {blocker} is a file, not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ArtifactsDirError(path, f"cannot be created: {exc.strerror or exc}") from None
    try:  # one byte, synced: a full disk refuses it now, not at the first checkpoint
        fd, probe = tempfile.mkstemp(dir=path, prefix=".adamtune-probe-")
        try:
            os.write(fd, b"\0")
            os.fsync(fd)
        finally:
            os.close(fd)
            Path(probe).unlink(missing_ok=True)
    except OSError as exc:
        raise ArtifactsDirError(path, f"not writable: {exc.strerror or exc}") from None
    return path

