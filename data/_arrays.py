"""Arrays the user brings: an .npz file (read with allow_pickle=False, so it cannot run code) or what a Python
entry point returns, both holding x, y and optionally x_val, y_val, x_test, y_test and classes.

`x` is uint8 images (N, H, W) / (N, C, H, W), or numbers: feature vectors (N, D) or 1-D signals (N, C, L);
`y` the targets of the task (see _targets: class labels 0..K-1, numbers, or 0/1 per label). Every check
names the array and the reason.
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._entry import one_line
from ._errors import SourceError
from ._targets import check_targets

PARTS = (("x", "y"), ("x_val", "y_val"), ("x_test", "y_test"))
ALLOWED = {name for pair in PARTS for name in pair} | {"classes"}


@dataclass(frozen=True)
class Arrays:
    """Checked arrays: `parts` maps train/val/test (those given) to (x, y), y converted for the task (int64
    (N,) class labels, float32 (N, T) targets or (N, C) 0/1 labels); `classes` names the classes, targets or
    labels."""

    parts: dict[str, tuple[np.ndarray, np.ndarray]]
    classes: tuple[str, ...]
    kind: str  # image, signal or features
    fingerprint: str
    task: str = "classification"
    task_reason: str = ""  # how the task was decided: "stated", or "inferred: y is float"


def npz_nbytes(path: Path, *, origin: str, key: str) -> int:
    """The memory the arrays will take as tensors (uint8 images as they are, other x as float32, labels as
    int64), read from the .npy headers inside the archive without loading any array."""
    total = 0
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                name = info.filename.removesuffix(".npy")
                with archive.open(info) as fh:
                    version = np.lib.format.read_magic(fh)
                    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                        np.lib.format.read_array_header_2_0
                    shape, _, dtype = read(fh)
                if dtype.hasobject:
                    raise SourceError(origin, key, f"{path}: array {name!r} holds Python objects, which load only "
                                      "by unpickling (never done here); save plain numeric arrays")
                count = int(np.prod(shape, dtype=np.int64))
                total += count * (8 if name.startswith("y") else 1 if _is_images(dtype, len(shape)) else 4)
    except SourceError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise SourceError(origin, key, f"{path} is not an .npz archive written by numpy.savez "
                          f"({one_line(exc)})") from None
    return total


def read_npz(path: Path, *, origin: str, key: str) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise SourceError(origin, key, f"{path} holds pickled objects, which are never loaded; save plain "
                              "numeric arrays") from None
        raise SourceError(origin, key, f"{path} cannot be read: {one_line(exc)}") from None
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise SourceError(origin, key, f"{path} cannot be read: {one_line(exc)}") from None


def call_entry(function: Callable[..., Any], entry: str, kwargs: dict, *, origin: str, key: str) -> dict:
    """What the user's data entry point returns, as numpy arrays by name."""
    try:
        returned = function(**kwargs)
    except Exception as exc:  # whatever the user's function raises
        raise SourceError(origin, key, f"{entry} raised {one_line(exc)}") from None
    if not isinstance(returned, Mapping):
        raise SourceError(origin, key, f"{entry} returned {type(returned).__name__}, not a mapping with "
                          "x and y (and optionally x_val, y_val, x_test, y_test, classes)")
    out = {}
    for name, value in returned.items():
        if hasattr(value, "detach"):  # a torch tensor
            value = value.detach().cpu().numpy()
        try:
            out[str(name)] = np.asarray(value)
        except (ValueError, TypeError) as exc:
            raise SourceError(origin, key, f"{entry} returned {name!r} that is not an array: {one_line(exc)}") \
                from None
    return out


def check_arrays(arrays: dict[str, np.ndarray], *, where: str, origin: str, key: str,
                 task: str | None = None) -> Arrays:
    """Validate x/y pairs, and the targets and classes for `task` (None: inferred from y); `where` names the
    file or entry point in messages."""

    def bad(reason: str) -> SourceError:
        return SourceError(origin, key, f"{where}: {reason}")

    unknown = sorted(set(arrays) - ALLOWED)
    if unknown:
        raise bad(f"unknown array {unknown[0]!r} (allowed: {', '.join(sorted(ALLOWED))})")
    for name in ("x", "y"):
        if name not in arrays:
            raise bad(f"no array {name!r}; it needs x (samples) and y (targets: integer labels 0..K-1, "
                      "numbers, or 0/1 per label)")
    parts: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    kind = ""
    for split, (xn, yn) in zip(("train", "val", "test"), PARTS, strict=True):
        if (xn in arrays) != (yn in arrays):
            raise bad(f"{xn if xn in arrays else yn} is given without {yn if xn in arrays else xn}")
        if xn not in arrays:
            continue
        x, y = arrays[xn], arrays[yn]
        part_kind = _kind(x, xn, bad)
        if kind and (part_kind != kind or x.shape[1:] != parts["train"][0].shape[1:]):
            raise bad(f"{xn} has shape {x.shape} ({x.dtype}) but x has {parts['train'][0].shape} "
                      f"({parts['train'][0].dtype}); every part needs the same sample shape and kind")
        kind = kind or part_kind
        if len(x) == 0:
            raise bad(f"{xn} holds no samples")
        if y.ndim == 0:
            raise bad(f"{yn} is a single value; it holds one target per sample")
        if len(x) != len(y):
            raise bad(f"{xn} has {len(x)} samples but {yn} has {len(y)} labels")
        if part_kind != "image":
            finite = np.isfinite(x.reshape(len(x), -1)).all(axis=1) if x.dtype.kind == "f" else None
            if finite is not None and not finite.all():
                raise bad(f"{xn} holds NaN or inf (first in sample {int(np.argmin(finite))})")
        parts[split] = (x, y)
    y_name = {split: yn for split, (_, yn) in zip(("train", "val", "test"), PARTS, strict=True)}
    targets = check_targets({y_name[split]: y for split, (_, y) in parts.items()}, arrays.get("classes"), bad, task)
    parts = {split: (x, targets.ys[y_name[split]]) for split, (x, _) in parts.items()}
    return Arrays(parts, targets.names, kind, _fingerprint(arrays), targets.task, targets.reason)


def _is_images(dtype: np.dtype, ndim: int) -> bool:
    return dtype == np.uint8 and ndim in (3, 4)


def _kind(x: np.ndarray, name: str, bad: Callable[[str], SourceError]) -> str:
    if x.dtype.kind not in "buif":
        raise bad(f"{name} has dtype {x.dtype}; x holds numbers (uint8 images, or float features)")
    if _is_images(x.dtype, x.ndim):
        if x.ndim == 4 and x.shape[1] not in (1, 3, 4) and x.shape[3] in (1, 3, 4):
            raise bad(f"{name} has shape {x.shape}, which looks channels-last (N, H, W, C); images are "
                      "(N, C, H, W): use x.transpose(0, 3, 1, 2)")
        return "image"
    if x.ndim == 2:
        return "features"
    if x.ndim == 3:
        return "signal"
    raise bad(f"{name} has shape {x.shape} ({x.dtype}); x is uint8 images (N, H, W) or (N, C, H, W), "
              "feature vectors (N, D) or 1-D signals (N, C, L)")


def _fingerprint(arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 of every array's name, dtype, shape and bytes."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}\0{array.dtype.str}\0{array.shape}\0".encode())
        digest.update(array.data)
    return digest.hexdigest()
