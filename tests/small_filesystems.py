"""Real small file systems for the full-disk and read-only tests: a tmpfs mounted for one test (as root,
or through passwordless sudo as CI has), filled by writing until the kernel answers ENOSPC."""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def tmpfs(path: Path, size: str = "4m", read_only: bool = False) -> Iterator[Path]:
    """A fresh tmpfs of `size` at `path`, owned by this user; unmounted afterwards."""
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size},uid={os.getuid()},gid={os.getgid()}" + (",ro" if read_only else "")
    _as_root("mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path))
    try:
        yield path
    finally:
        _as_root("umount", "--lazy", str(path))


def fill(directory: Path) -> Path:
    """Write zeros under `directory` until its file system is full; delete the returned file to free it."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, bytes(1 << 16))
    except OSError as exc:
        assert exc.errno == errno.ENOSPC, exc
    finally:
        os.close(fd)
    return filler


def _as_root(*command: str) -> None:
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    result = subprocess.run([*sudo, *command], check=False, capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(f"`{' '.join(command)}` failed (these tests mount a real tmpfs: run them as root or with "
                    f"passwordless sudo): {result.stderr.strip()}")
