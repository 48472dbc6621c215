"""Datasets as tensors on the training device, with a fixed, seeded validation split: the built-ins here
(what a study may assume about each is in `_catalog`, how each is read in BUILTIN_LOADERS), the user's
image folders, arrays and entries in `_user_data`.

Holding whole datasets as tensors (no PIL, no DataLoader) is what makes a trial fast: a batch
is one index operation on memory already on the device.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import torch

from ._catalog import BUILTIN_DATASETS
from ._errors import DataError
from ._sources import DataSource
from ._splits import HELD_OUT, SPLIT_SEED, Dataset, Split, carve, channel_stats
from ._user_data import load_user_data

__all__ = ["BUILTIN_LOADERS", "HELD_OUT", "SPLIT_SEED", "Dataset", "Split", "data_root", "load_dataset"]

Loader = Callable[[Path | None], tuple[Split, Split, float]]  # data root -> (full train, test, scale)


def data_root(root: str | Path | None = None) -> Path:
    """`--data-root`, else `ADAMTUNE_DATA`, else ~/.cache/adamtune/data."""
    if root:
        return Path(root)
    return Path(os.environ.get("ADAMTUNE_DATA") or Path.home() / ".cache" / "adamtune" / "data")


def _digits(_root: Path | None) -> tuple[Split, Split, float]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.tensor(bunch.images, dtype=torch.uint8).unsqueeze(1)
    labels = torch.tensor(bunch.target, dtype=torch.int64)
    rest, test = carve(Split(images, labels), round(HELD_OUT * len(labels)))
    return rest, test, 16.0


def _torchvision(cls_name: str, folder: str) -> Loader:
    def load(root: Path | None) -> tuple[Split, Split, float]:
        import torchvision

        cls = getattr(torchvision.datasets, cls_name)
        root = data_root(root)
        parts = []
        for train in (True, False):
            parts.append(_split_of(_open_torchvision(cls, root, train, folder, cls_name)))
        return parts[0], parts[1], 255.0

    return load


def _open_torchvision(cls, root: Path, train: bool, folder: str, name: str):
    try:
        return cls(str(root), train=train, download=False)
    except RuntimeError:
        pass  # not on disk: try to download it
    try:
        return cls(str(root), train=train, download=True)
    except Exception as exc:
        why = " ".join(f"{type(exc).__name__}: {exc}".split())
        raise DataError(
            f"{name} is not under {root / folder} and could not be downloaded ({why}). "
            f"Put the files there (or point --data-root / ADAMTUNE_DATA at their parent), "
            f"or use studies/digits_mlp.yaml, which works offline."
        ) from None


def _split_of(ds) -> Split:
    data = ds.data
    images = torch.as_tensor(data if not hasattr(data, "numpy") else data.numpy())
    images = images.unsqueeze(1) if images.ndim == 3 else images.permute(0, 3, 1, 2)  # CIFAR is NHWC
    return Split(images.contiguous().to(torch.uint8), torch.as_tensor(ds.targets, dtype=torch.int64))


# How each built-in dataset is read; what a study may assume about it is BUILTIN_DATASETS (no torch).
BUILTIN_LOADERS: dict[str, Loader] = {
    "digits": _digits,
    "mnist": _torchvision("MNIST", "MNIST/raw"),
    "fashion_mnist": _torchvision("FashionMNIST", "FashionMNIST/raw"),
    "cifar10": _torchvision("CIFAR10", "cifar-10-batches-py"),
}
assert BUILTIN_LOADERS.keys() == BUILTIN_DATASETS.keys()


def load_dataset(source: str | DataSource, root: str | Path | None = None,
                 device: str | torch.device = "cpu", task: str | None = None) -> Dataset:
    """The dataset with train/val/test splits on `device`. A built-in is cached per process so workers load
    once; the user's image folders are cached on disk under `root`/cache (see _image_folder), their arrays
    are read again (a changed file must be seen).

    `task` (classification, regression or multilabel; None: inferred from the targets) applies to the user's
    arrays and Python entries. Image folders and built-ins are classification: another task is a SourceError
    for a folder, and for a built-in a DataError (its study file and key are not known here: the caller
    names them)."""
    if isinstance(source, str):
        source = DataSource.builtin(source)
    if source.user:
        return load_user_data(source, data_root(root), torch.device(device), task)
    name = source.name
    if task not in (None, "classification"):
        raise DataError(f"{name} is a classification dataset (labels are its classes); task: regression and "
                        "multilabel need arrays or a python entry")
    return _load(name, str(data_root(root)) if name != "digits" else None, str(torch.device(device)))


@lru_cache(maxsize=4)
def _load(name: str, root: str | None, device: str) -> Dataset:
    full, test, scale = BUILTIN_LOADERS[name](Path(root) if root else None)
    val_size = BUILTIN_DATASETS[name].val_size
    n_val = val_size if isinstance(val_size, int) else round(val_size * len(full))
    if len(full) <= n_val:  # a truncated copy: nothing would be left to train on
        raise DataError(f"{name} under {root} has {len(full):,} training images, but its validation split alone "
                        f"takes {n_val:,}; the files are incomplete (the full set has more): replace them")
    train, val = carve(full, n_val)
    mean, std = channel_stats(train.images, scale)
    num_classes = int(full.labels.max()) + 1
    return Dataset(name, train.to(device), val.to(device), test.to(device), num_classes, scale, mean, std,
                   task_reason="a built-in dataset: its classes")
