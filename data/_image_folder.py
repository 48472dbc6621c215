"""An image folder (one sub-folder per class, as torchvision's ImageFolder reads it) decoded once with PIL
and cached as a uint8 tensor.

The cache key is a SHA-256 of every image's path, size in bytes, modification time, status-change time
(ctime, ns) and inode, plus the decoding options, so finding the cache costs one `stat` per file. Any write
to a file sets its ctime to the clock's time, and no user call sets it back (`touch -d` or `os.utime`
restore the mtime, not the ctime), so a file rewritten even with the same size and mtime misses the cache,
as does an added, removed, copied or restored file. The data fingerprint is a SHA-256 of the files' relative
paths and contents, computed while decoding and kept in the cache: a cache entry is only ever read for files
that were not written since they were hashed, so the fingerprint a worker presents is that of the contents
it trains on, and two machines holding the same files agree on it whatever their mtimes.
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

from ._entry import one_line
from ._errors import SourceError
from ._image_files import SKIP_HINT, BadFile, Listing, list_images, read_image_file
from ._image_modes import GREY_MODES, ModeError, eight_bit
from ._stored_file import StoredFile

__all__ = ["FolderImages", "Listing", "decode_image", "first_image_size", "list_images", "load_image_folder"]

CACHE_VERSION = 2  # 2: ctime and inode in the key, bad entries, every image mode over its real range


class ImageCache(StoredFile):
    """One decoded folder on disk; an unusable entry is set aside and the folder decoded again."""

    noun = "image cache"
    expected = "decoded images"
    instead = "the images are decoded again"


@dataclass(frozen=True)
class FolderImages:
    """One decoded folder: images (N, C, H, W) uint8, labels (N,) int64 indexing `classes`."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]
    fingerprint: str  # SHA-256 (hex) of the files' relative paths and contents
    skipped: tuple[str, ...]  # relative paths of unreadable images skipped (skip_bad_images)
    from_cache: bool


def cache_key(listing: Listing, size: tuple[int, int] | None, channels: int | None, skip_bad: bool) -> str:
    text = json.dumps([CACHE_VERSION, size, channels, skip_bad, listing.classes, listing.files, listing.bad])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def first_image_size(listing: Listing) -> tuple[int, int] | None:
    """(height, width) of the first readable image, from its header alone (for the memory estimate)."""
    from PIL import Image

    for rel, *_ in listing.files[:20]:
        try:
            with Image.open(io.BytesIO(read_image_file(listing.folder / rel))) as img:
                return img.height, img.width
        except Exception:  # an unreadable image is reported when decoding
            continue
    return None


def load_image_folder(listing: Listing, *, size: tuple[int, int] | None, channels: int | None,
                      skip_bad: bool, cache_dir: Path, origin: str, key: str) -> FolderImages:
    """The decoded folder, from the cache when its key matches, else decoded (in threads: PIL releases the
    GIL) and written to the cache atomically, so workers racing on one machine never read half a file."""
    cache = ImageCache(cache_dir / f"{cache_key(listing, size, channels, skip_bad)}.pt")
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
        results = list(pool.map(lambda p: decode_image(p, size, channels), paths, chunksize=64))
    digest = hashlib.sha256()
    arrays, labels, skipped = [], [], [rel for rel, _ in listing.bad]
    for rel, reason in listing.bad:
        digest.update(f"{rel}\0bad\0{reason}".encode())
    first: tuple[str, tuple[int, int]] | None = None
    for (rel, index, *_), (array, file_hash, problem) in zip(listing.files, results, strict=True):
        digest.update(rel.encode() + b"\0" + file_hash)
        if problem is not None:
            if skip_bad:
                skipped.append(rel)
                continue
            raise SourceError(origin, key, f"{listing.folder / rel} {problem}; {SKIP_HINT}")
        if first is None:
            first = (rel, array.shape[1:])
        elif array.shape[1:] != first[1]:
            raise SourceError(origin, key, f"images differ in size: {first[0]} is {_hw(first[1])} but {rel} is "
                              f"{_hw(array.shape[1:])}; give size: [height, width] to resize them all")
        arrays.append(array)
        labels.append(index)
    if not arrays:
        raise SourceError(origin, key, f"none of the {len(paths) + len(listing.bad)} images in {listing.folder} "
                          "could be read")
    if any(a.shape[0] == 3 for a in arrays):  # colour wins: grey images are repeated into RGB
        arrays = [np.repeat(a, 3, axis=0) if a.shape[0] == 1 else a for a in arrays]
    images = torch.from_numpy(np.stack(arrays))
    return FolderImages(images, torch.tensor(labels, dtype=torch.int64), listing.classes, digest.hexdigest(),
                        tuple(skipped), from_cache=False)


def decode_image(path: Path, size: tuple[int, int] | None, channels: int | None):
    """(array (C, H, W) uint8 or None, SHA-256 of the file, problem or None): one image as a folder's images
    are read (8 bits over its mode's range, grey or RGB, resized to `size`); a trained model's inputs too."""
    from PIL import Image

    try:
        data = read_image_file(path)
    except BadFile as exc:
        return None, b"unreadable", str(exc)
    file_hash = hashlib.sha256(data).digest()
    try:
        with Image.open(io.BytesIO(data)) as opened:
            grey = channels == 1 or (channels is None and opened.mode in GREY_MODES)
            image = eight_bit(opened, grey)
            if size is not None and image.size != (size[1], size[0]):
                image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            array = np.asarray(image, dtype=np.uint8)
    except Image.UnidentifiedImageError:
        return None, file_hash, "is not a readable image (not an image format PIL can read)"
    except ModeError as exc:
        return None, file_hash, str(exc)
    except Exception as exc:  # PIL raises many kinds for a corrupt file
        return None, file_hash, f"is not a readable image ({one_line(exc)})"
    return (array[None] if array.ndim == 2 else array.transpose(2, 0, 1)), file_hash, None


def _hw(shape) -> str:
    return f"{shape[0]}x{shape[1]}"
