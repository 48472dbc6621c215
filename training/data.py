"""Datasets as uint8 tensors on the training device, with a fixed, seeded validation split.

Holding whole datasets as tensors (no PIL, no DataLoader) is what makes a trial fast: a batch
is one index operation on memory already on the device.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import torch

from .catalog import BUILTIN_DATASETS, DatasetFacts
from .errors import DataError

SPLIT_SEED = 0  # the train/validation/test split never depends on a trial's seed


@dataclass(frozen=True)
class Split:
    images: torch.Tensor  # uint8, (N, C, H, W)
    labels: torch.Tensor  # int64, (N,)

    def __len__(self) -> int:
        return len(self.labels)

    def to(self, device: torch.device | str) -> "Split":
        return Split(self.images.to(device), self.labels.to(device))


@dataclass(frozen=True)
class Dataset:
    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int
    scale: float  # raw pixel value that means "white": 255, or 16 for scikit-learn's digits
    mean: tuple[float, ...]  # per channel, of the training split in [0, 1] units
    std: tuple[float, ...]

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.train.images.shape[1:])


@dataclass(frozen=True)
class DatasetInfo:
    load: Callable[[Path | None], tuple[Split, Split, float]]  # -> (full train, test, scale)
    facts: DatasetFacts

    @property
    def flip_safe(self) -> bool:
        return self.facts.flip_safe

    @property
    def val_size(self) -> int | float:
        return self.facts.val_size


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
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(SPLIT_SEED))
    n_test = round(0.2 * len(labels))
    test, rest = order[:n_test], order[n_test:]
    return Split(images[rest], labels[rest]), Split(images[test], labels[test]), 16.0


def _torchvision(cls_name: str, folder: str) -> Callable[[Path | None], tuple[Split, Split, float]]:
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
    except Exception as exc:  # noqa: BLE001 - any download failure means the same to the user
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


_LOADERS = {
    "digits": _digits,
    "mnist": _torchvision("MNIST", "MNIST/raw"),
    "fashion_mnist": _torchvision("FashionMNIST", "FashionMNIST/raw"),
    "cifar10": _torchvision("CIFAR10", "cifar-10-batches-py"),
}
DATASETS: dict[str, DatasetInfo] = {name: DatasetInfo(_LOADERS[name], facts) for name, facts in BUILTIN_DATASETS.items()}


def load_dataset(name: str, root: str | Path | None = None, device: str | torch.device = "cpu") -> Dataset:
    """The dataset with train/val/test splits on `device`; cached per process so workers load once."""
    return _load(name, str(data_root(root)) if name != "digits" else None, str(torch.device(device)))


@lru_cache(maxsize=4)
def _load(name: str, root: str | None, device: str) -> Dataset:
    info = DATASETS[name]
    full, test, scale = info.load(Path(root) if root else None)
    n_val = info.val_size if isinstance(info.val_size, int) else round(info.val_size * len(full))
    order = torch.randperm(len(full), generator=torch.Generator().manual_seed(SPLIT_SEED))
    val_idx, train_idx = order[:n_val], order[n_val:]
    train = Split(full.images[train_idx], full.labels[train_idx])
    val = Split(full.images[val_idx], full.labels[val_idx])
    pixels = train.images.double().div(scale)
    mean = tuple(pixels.mean(dim=(0, 2, 3)).tolist())
    std = tuple(pixels.std(dim=(0, 2, 3)).tolist())
    num_classes = int(full.labels.max()) + 1
    return Dataset(name, train.to(device), val.to(device), test.to(device), num_classes, scale, mean, std)
