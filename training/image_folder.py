"""An image folder (one sub-folder per class, as torchvision's ImageFolder reads it) decoded once with PIL
and cached as a uint8 tensor.

The cache key is a SHA-256 of every image's path, size in bytes and modification time (ns), plus the
decoding options, so finding the cache costs one `stat` per file; a changed, added or removed file misses
it. The data fingerprint is different: a SHA-256 of the files' names and contents, computed while decoding
and kept in the cache, so two machines holding the same files agree on it whatever their mtimes.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .checkpoint import Checkpoint
from .entry import one_line
from .errors import SourceError

CACHE_VERSION = 1
# torchvision.datasets.folder.IMG_EXTENSIONS, plus GIF (PIL reads its first frame).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp", ".gif")
_GREY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


@dataclass(frozen=True)
class FolderImages:
    """One decoded folder: images (N, C, H, W) uint8, labels (N,) int64 indexing `classes`."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]
    fingerprint: str  # SHA-256 (hex) of the files' relative paths and contents
    skipped: tuple[str, ...]  # relative paths of unreadable images skipped (skip_bad_images)
    from_cache: bool


@dataclass(frozen=True)
class Listing:
    """The image files of a folder, in ImageFolder's order (classes sorted, files sorted within each)."""

    folder: Path
    classes: tuple[str, ...]
    files: tuple[tuple[str, int, int, int], ...]  # (relative path, class index, bytes, mtime ns)

    def cache_key(self, size: tuple[int, int] | None, channels: int | None, skip_bad: bool) -> str:
        text = json.dumps([CACHE_VERSION, size, channels, skip_bad, self.classes, self.files])
        return hashlib.sha256(text.encode()).hexdigest()[:32]


def list_images(folder: Path, *, origin: str, key: str) -> Listing:
    """Class sub-folders (hidden ones ignored) and their image files, at any depth below each class."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        raise SourceError(origin, key, f"{folder} cannot be read: {one_line(exc)}") from None
    classes = tuple(e.name for e in entries if e.is_dir() and not e.name.startswith("."))
    if not entries:
        raise SourceError(origin, key, f"{folder} is empty; put one sub-folder of images per class in it")
    if not classes:
        raise SourceError(origin, key, f"{folder} has no class sub-folders (an image folder holds one "
                          "sub-folder of images per class)")
    files: list[tuple[str, int, int, int]] = []
    for index, name in enumerate(classes):
        found = len(files)
        _walk(folder / name, f"{name}/", index, files)
        if len(files) == found:
            raise SourceError(origin, key, f"class folder {folder / name} holds no images "
                              f"({', '.join(s[1:] for s in IMAGE_SUFFIXES)})")
    return Listing(folder, classes, tuple(files))


def _walk(directory: Path, prefix: str, index: int, files: list) -> None:
    """Image files below `directory` in sorted order, hidden entries skipped, symlinks followed (as os.walk
    with followlinks=True, but one scandir and one stat per file)."""
    entries = sorted(os.scandir(directory), key=lambda e: e.name)
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            _walk(Path(entry.path), f"{prefix}{entry.name}/", index, files)
        elif entry.name.lower().endswith(IMAGE_SUFFIXES):
            stat = entry.stat()
            files.append((prefix + entry.name, index, stat.st_size, stat.st_mtime_ns))


def first_image_size(listing: Listing) -> tuple[int, int] | None:
    """(height, width) of the first readable image, from its header alone (for the memory estimate)."""
    from PIL import Image

    for rel, *_ in listing.files[:20]:
        try:
            with Image.open(listing.folder / rel) as img:
                return img.height, img.width
        except Exception:  # an unreadable image is reported when decoding
            continue
    return None


def load_image_folder(listing: Listing, *, size: tuple[int, int] | None, channels: int | None,
                      skip_bad: bool, cache_dir: Path, origin: str, key: str) -> FolderImages:
    """The decoded folder, from the cache when its key matches, else decoded (in threads: PIL releases the
    GIL) and written to the cache atomically, so workers racing on one machine never read half a file."""
    cache = Checkpoint(cache_dir / f"{listing.cache_key(size, channels, skip_bad)}.pt")
    try:
        saved = cache.load()
    except Exception:  # an unreadable cache file is only a miss
        saved = None
    if saved is not None:
        return FolderImages(saved["images"], saved["labels"], tuple(saved["classes"]), saved["fingerprint"],
                            tuple(saved["skipped"]), from_cache=True)
    decoded = _decode_all(listing, size, channels, skip_bad, origin, key)
    cache.save({"images": decoded.images, "labels": decoded.labels, "classes": list(decoded.classes),
                "fingerprint": decoded.fingerprint, "skipped": list(decoded.skipped)})
    return decoded


def _decode_all(listing: Listing, size, channels, skip_bad: bool, origin: str, key: str) -> FolderImages:
    paths = [listing.folder / rel for rel, *_ in listing.files]
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        results = list(pool.map(lambda p: _decode(p, size, channels), paths, chunksize=64))
    digest = hashlib.sha256()
    arrays, labels, skipped = [], [], []
    first: tuple[str, tuple[int, int]] | None = None
    for (rel, index, *_), (array, file_hash, problem) in zip(listing.files, results, strict=True):
        digest.update(rel.encode() + b"\0" + file_hash)
        if problem is not None:
            if skip_bad:
                skipped.append(rel)
                continue
            raise SourceError(origin, key, f"{listing.folder / rel} is not a readable image ({problem}); "
                              "fix or remove it, or set skip_bad_images: true to skip such files")
        if first is None:
            first = (rel, array.shape[1:])
        elif array.shape[1:] != first[1]:
            raise SourceError(origin, key, f"images differ in size: {first[0]} is {_hw(first[1])} but {rel} is "
                              f"{_hw(array.shape[1:])}; give size: [height, width] to resize them all")
        arrays.append(array)
        labels.append(index)
    if not arrays:
        raise SourceError(origin, key, f"none of the {len(paths)} images in {listing.folder} could be read")
    if any(a.shape[0] == 3 for a in arrays):  # colour wins: grey images are repeated into RGB
        arrays = [np.repeat(a, 3, axis=0) if a.shape[0] == 1 else a for a in arrays]
    images = torch.from_numpy(np.stack(arrays))
    return FolderImages(images, torch.tensor(labels, dtype=torch.int64), listing.classes, digest.hexdigest(),
                        tuple(skipped), from_cache=False)


def _decode(path: Path, size: tuple[int, int] | None, channels: int | None):
    """(array (C, H, W) uint8 or None, SHA-256 of the file, problem or None)."""
    from PIL import Image

    try:
        data = path.read_bytes()
    except OSError as exc:
        return None, b"unreadable", one_line(exc)
    file_hash = hashlib.sha256(data).digest()
    try:
        with Image.open(io.BytesIO(data)) as opened:
            grey = channels == 1 or (channels is None and opened.mode in _GREY_MODES)
            image = opened.convert("L" if grey else "RGB")
            if size is not None and image.size != (size[1], size[0]):
                image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            array = np.asarray(image, dtype=np.uint8)
    except Image.UnidentifiedImageError:
        return None, file_hash, "not an image format PIL can read"
    except Exception as exc:  # PIL raises many kinds for a corrupt file
        return None, file_hash, one_line(exc)
    return (array[None] if array.ndim == 2 else array.transpose(2, 0, 1)), file_hash, None


def _hw(shape) -> str:
    return f"{shape[0]}x{shape[1]}"
