"""The user's data as a Dataset: an image folder (decoded once, cached), an .npz of arrays, or what a Python
entry point returns. Memory is estimated before anything large is loaded; without explicit validation and
test parts they are carved from the training part with the same seeded split as the built-ins."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from ._arrays import Arrays, call_entry, check_arrays, npz_nbytes, read_npz
from ._entry import load_entry
from ._errors import SourceError
from ._image_folder import FolderImages, first_image_size, list_images, load_image_folder
from ._memory import free_memory, gib
from ._sources import DataSource
from ._splits import HELD_OUT, SPLIT_SEED, Dataset, Split, carve_indices, channel_stats

MEMORY_SHARE = 0.8  # the data may take at most this share of the device's free memory
_PART_KEYS = {"train": "path", "val": "val", "test": "test"}


def load_user_data(source: DataSource, root: Path, device: torch.device, task: str | None = None) -> Dataset:
    """The user's data on `device`, with its fingerprint, class names, split and task (`task`, else inferred
    from the arrays' targets; an image folder is classification); image folders are cached under
    `root`/cache/image_folder. Every problem is a SourceError naming the source's file and key."""
    if source.type == "image_folder":
        if task not in (None, "classification"):
            raise SourceError(source.origin, "task", f"{source.describe()} is a classification dataset (labels are "
                              "its folders); task: regression and multilabel need arrays or a python entry")
        parts, classes, fingerprint, skipped = _image_folder(source, root / "cache" / "image_folder", device)
        kind, scale = "image", 255.0
        task, reason = "classification", "stated" if task else "an image folder: its folders are the classes"
    else:
        arrays = _arrays(source, device, task)
        parts = {split: _tensors(x, y) for split, (x, y) in arrays.parts.items()}
        classes, fingerprint, skipped, kind = arrays.classes, arrays.fingerprint[:16], (), arrays.kind
        scale = 255.0 if kind == "image" else 1.0
        task, reason = arrays.task, arrays.task_reason
    train, val, test = _splits(source, parts)
    mean, std = channel_stats(train.images, scale)
    # Regression targets are standardised with the training split's statistics, as inputs are.
    target_mean, target_std = channel_stats(train.labels, 1.0) if task == "regression" else ((), ())
    # test: HELD_OUT of the training part; val: HELD_OUT of what remains; both by SPLIT_SEED (unless given).
    split = {"seed": SPLIT_SEED, **{part: "given" if part in parts else HELD_OUT for part in ("test", "val")}}
    return Dataset(source.describe(), train.to(device), val.to(device), test.to(device), len(classes), scale,
                   mean, std, kind=kind, classes=classes, fingerprint=fingerprint, skipped=skipped, split=split,
                   task=task, task_reason=reason, target_mean=target_mean, target_std=target_std)


def check_fits(nbytes: int, device: torch.device, source: DataSource, key: str) -> None:
    """Refuse data that would take more than MEMORY_SHARE of the device's free memory, before loading it."""
    free = free_memory(device)
    if free is not None and nbytes > MEMORY_SHARE * free:
        raise SourceError(source.origin, key, f"the data would take {gib(nbytes)} as tensors but {device} has "
                          f"{gib(free)} free (at most {MEMORY_SHARE:.0%} of it is used for data); use fewer "
                          "samples or a smaller size:, or a device with more memory")


def _image_folder(source: DataSource, cache_dir: Path, device: torch.device):
    listings = {split: list_images(source.resolve(getattr(source, attr)), origin=source.origin,
                                   key=f"{source.key}.{attr}", skip_bad=source.skip_bad_images)
                for split, attr in _PART_KEYS.items() if getattr(source, attr)}
    classes = listings["train"].classes
    if len(classes) < 2:
        raise SourceError(source.origin, f"{source.key}.path", f"{listings['train'].folder} has a single class "
                          f"folder ({classes[0]!r}); a classifier needs at least two")
    height, width = source.size or first_image_size(listings["train"]) or (1, 1)
    count = sum(len(listing.files) for listing in listings.values())
    check_fits(count * ((source.channels or 3) * height * width + 8), device, source, f"{source.key}.path")
    loaded: dict[str, FolderImages] = {
        split: load_image_folder(listing, size=source.size, channels=source.channels,
                                 skip_bad=source.skip_bad_images, cache_dir=cache_dir, origin=source.origin,
                                 key=f"{source.key}.{_PART_KEYS[split]}")
        for split, listing in listings.items()}
    parts = {}
    for split, part in loaded.items():
        labels = part.labels
        if split != "train":
            missing = [c for c in part.classes if c not in classes]
            if missing:
                raise SourceError(source.origin, f"{source.key}.{_PART_KEYS[split]}", f"class folder {missing[0]!r} "
                                  f"is not among the training classes ({', '.join(classes)})")
            labels = torch.tensor([classes.index(c) for c in part.classes], dtype=torch.int64)[labels]
        parts[split] = (part.images, labels)
    _same_image_shape(source, parts)
    digest = hashlib.sha256()
    for split, part in loaded.items():
        digest.update(f"{split}\0{part.fingerprint}\0".encode())
    skipped = tuple(f"{_PART_KEYS[s]}: {rel}" for s, part in loaded.items() for rel in part.skipped)
    return parts, classes, digest.hexdigest()[:16], skipped


def _same_image_shape(source: DataSource, parts: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> None:
    """Grey parts become RGB when another part is colour; every part must then have the training size."""
    if any(x.shape[1] == 3 for x, _ in parts.values()):
        for split, (x, y) in parts.items():
            parts[split] = (x.expand(-1, 3, -1, -1).contiguous() if x.shape[1] == 1 else x, y)
    size = parts["train"][0].shape[2:]
    for split, (x, _) in parts.items():
        if x.shape[2:] != size:
            raise SourceError(source.origin, f"{source.key}.{_PART_KEYS[split]}", f"images are {x.shape[2]}x"
                              f"{x.shape[3]} but the training images are {size[0]}x{size[1]}; give size: "
                              "[height, width] to resize them all")


def _arrays(source: DataSource, device: torch.device, task: str | None) -> Arrays:
    if source.type == "arrays":
        key, path = f"{source.key}.path", source.resolve(source.path)
        check_fits(npz_nbytes(path, origin=source.origin, key=key), device, source, key)
        raw, where = read_npz(path, origin=source.origin, key=key), str(path)
    else:
        key = f"{source.key}.entry"
        function = load_entry(source.entry, source.folder, origin=source.origin, key=key)
        raw, where = call_entry(function, source.entry, source.kwargs, origin=source.origin, key=key), source.entry
        check_fits(sum(a.size * (1 if a.dtype == np.uint8 else 4) for a in raw.values()), device, source, key)
    return check_arrays(raw, where=where, origin=source.origin, key=key, task=task)


def _tensors(x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    if x.dtype == np.uint8 and x.ndim in (3, 4):
        images = torch.from_numpy(np.ascontiguousarray(x))
        return (images.unsqueeze(1) if x.ndim == 3 else images), torch.from_numpy(y)
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), torch.from_numpy(y)


def _splits(source: DataSource, parts: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> tuple[Split, Split, Split]:
    """The given parts; a missing test part is HELD_OUT of the training part, a missing validation part
    HELD_OUT of what remains (the built-in digits are split the same way). The carved indices are composed
    first, so the training part is copied once."""
    x, y = parts["train"]
    keep = torch.arange(len(y))
    carved = {}
    for split in ("test", "val"):
        if split not in parts:
            rest, picked = carve_indices(len(keep), round(HELD_OUT * len(keep)))
            carved[split], keep = keep[picked], keep[rest]
    test = Split(*parts["test"]) if "test" in parts else Split(x[carved["test"]], y[carved["test"]])
    val = Split(*parts["val"]) if "val" in parts else Split(x[carved["val"]], y[carved["val"]])
    if not (len(keep) and len(val) and len(test)):
        key = f"{source.key}.{'entry' if source.type == 'python' else 'path'}"
        raise SourceError(source.origin, key, f"{len(y)} training samples are too few to carve validation and "
                          "test samples from; give more, or give the val and test parts")
    train = Split(x, y) if not carved else Split(x[keep], y[keep])
    return train, val, test
