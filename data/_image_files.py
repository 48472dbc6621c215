"""Which files of an image folder are images, and reading one safely.

Only regular files are read, and at most MAX_IMAGE_BYTES of each: a FIFO named `x.png` would block the
read forever and a link to /dev/zero would fill memory. A broken link, a link loop, a folder linked inside
itself, an unreadable folder or a name that is not UTF-8 is a bad entry: one line naming its path, or,
with skip_bad_images, skipped and counted like an unreadable image. Paths in messages are shown with
undecodable bytes escaped (`caf\\xe9.png`), so a message always prints.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from ._entry import one_line
from ._errors import SourceError

# torchvision.datasets.folder.IMG_EXTENSIONS, plus GIF (PIL reads its first frame).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp", ".gif")
MAX_IMAGE_BYTES = 256 * 2**20  # one image file; larger is a bad file, not read
SKIP_HINT = "fix or remove it, or set skip_bad_images: true to skip such files"
_KINDS = {stat.S_IFIFO: "a FIFO", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
          stat.S_IFSOCK: "a socket", stat.S_IFDIR: "a folder"}


class BadFile(Exception):
    """A file that is not read as an image; its message is the reason, after the path."""


@dataclass(frozen=True)
class Listing:
    """The image files of a folder, in ImageFolder's order (classes sorted, files sorted within each), and
    the bad entries found (with skip_bad_images; without, the first one is an error)."""

    folder: Path
    classes: tuple[str, ...]
    # (relative path, class index, bytes, mtime ns, ctime ns, inode): the stat part of the cache key
    files: tuple[tuple[str, int, int, int, int, int], ...]
    bad: tuple[tuple[str, str], ...] = ()  # (relative path shown, reason)


def shown(path: str | Path) -> str:
    """A path as text that always prints: bytes that are not UTF-8 appear as \\xNN."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # os.fsdecode kept undecodable bytes as surrogates
        return False
    return True


def list_images(folder: Path, *, origin: str, key: str, skip_bad: bool = False) -> Listing:
    """Class sub-folders (hidden ones ignored) and their image files, at any depth below each class."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        raise SourceError(origin, key, f"{shown(folder)} cannot be read: {one_line(exc)}") from None
    if not entries:
        raise SourceError(origin, key, f"{shown(folder)} is empty; put one sub-folder of images per class in it")
    classes = tuple(e.name for e in entries if e.is_dir() and not e.name.startswith("."))
    if not classes:
        raise SourceError(origin, key, f"{shown(folder)} has no class sub-folders (an image folder holds one "
                          "sub-folder of images per class)")
    for name in classes:
        if not is_utf8(name):
            raise SourceError(origin, key, f"class folder {shown(folder / name)} has a name that is not valid "
                              "UTF-8 (class names are stored as text); rename it")
    walk = _Walk(folder, skip_bad, origin, key)
    for index, name in enumerate(classes):
        found = len(walk.files) + len(walk.bad)
        walk.folder(folder / name, f"{name}/", index, ancestors=(_identity(folder),))
        if len(walk.files) + len(walk.bad) == found:
            raise SourceError(origin, key, f"class folder {shown(folder / name)} holds no images "
                              f"({', '.join(s[1:] for s in IMAGE_SUFFIXES)})")
    return Listing(folder, classes, tuple(walk.files), tuple(walk.bad))


class _Walk:
    """Image files below a class folder in sorted order, hidden entries skipped, links followed (as os.walk
    with followlinks=True, one scandir per folder and one stat per file) but never into a folder that
    holds the link: that is a loop."""

    def __init__(self, root: Path, skip_bad: bool, origin: str, key: str) -> None:
        self.root, self.skip_bad, self.origin, self.key = root, skip_bad, origin, key
        self.files: list[tuple[str, int, int, int, int, int]] = []
        self.bad: list[tuple[str, str]] = []

    def folder(self, directory: Path, prefix: str, index: int, ancestors: tuple[tuple[int, int], ...]) -> None:
        try:
            here = _identity(directory)
            if here in ancestors:
                return self.found_bad(prefix.rstrip("/"), "is a link to a folder it is inside (a loop); remove "
                                      "the link")
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:
            return self.found_bad(prefix.rstrip("/"), f"cannot be read: {one_line(exc)}")
        for entry in entries:
            if entry.name.startswith("."):
                continue
            rel = prefix + entry.name
            if _is_dir(entry):
                if not is_utf8(entry.name):
                    self.found_bad(rel, "is a folder whose name is not valid UTF-8; rename it")
                else:
                    self.folder(Path(entry.path), f"{rel}/", index, (*ancestors, here))
            elif entry.name.lower().endswith(IMAGE_SUFFIXES):
                self.file(entry, rel, index)

    def file(self, entry: os.DirEntry, rel: str, index: int) -> None:
        if not is_utf8(entry.name):
            return self.found_bad(rel, "has a name that is not valid UTF-8; rename it")
        try:
            st = entry.stat()  # follows a link
        except OSError as exc:
            return self.found_bad(rel, _link_problem(entry.path, exc))
        problem = regular_file_problem(st)
        if problem:
            return self.found_bad(rel, problem)
        self.files.append((rel, index, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino))

    def found_bad(self, rel: str, reason: str) -> None:
        if not self.skip_bad:
            raise SourceError(self.origin, self.key, f"{shown(self.root / rel)} {reason}; {SKIP_HINT}")
        self.bad.append((shown(rel), reason))


def regular_file_problem(st: os.stat_result) -> str | None:
    """Why a file with this stat is not read as an image, or None."""
    if not stat.S_ISREG(st.st_mode):
        return f"is not a regular file ({_KINDS.get(stat.S_IFMT(st.st_mode), 'a special file')})"
    if st.st_size > MAX_IMAGE_BYTES:
        return f"is {st.st_size / 2**20:.0f} MiB; an image file may take at most {MAX_IMAGE_BYTES // 2**20} MiB"
    return None


def read_image_file(path: Path) -> bytes:
    """The bytes of a regular file of at most MAX_IMAGE_BYTES; anything else raises BadFile. Opened without
    blocking (a FIFO put in a file's place after listing does not hang) and checked on the open descriptor."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise BadFile(_link_problem(str(path), exc)) from None
    try:
        problem = regular_file_problem(os.fstat(fd))
        if problem:
            raise BadFile(problem)
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(MAX_IMAGE_BYTES + 1)
        if len(data) > MAX_IMAGE_BYTES:  # it grew after the check
            raise BadFile(f"is larger than the {MAX_IMAGE_BYTES // 2**20} MiB an image file may take")
        return data
    except OSError as exc:
        raise BadFile(f"cannot be read: {one_line(exc)}") from None
    finally:
        os.close(fd)


def _link_problem(path: str, exc: OSError) -> str:
    if os.path.islink(path):
        try:
            target = shown(os.readlink(path))
        except OSError:
            target = "?"
        if isinstance(exc, FileNotFoundError):
            return f"is a broken symbolic link (to {target})"
        if exc.errno == errno.ELOOP:
            return f"is a symbolic link loop (to {target})"
    return f"cannot be read: {one_line(exc)}"


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()  # follows a link; False for a broken one
    except OSError:
        return False


def _identity(path: Path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino
