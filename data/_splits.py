"""A dataset as tensors: train/validation/test splits, the statistics inputs are normalised with, and the
one seeded way every dataset without explicit parts is split."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ._sources import DataFacts

SPLIT_SEED = 0  # the train/validation/test split never depends on a trial's seed
HELD_OUT = 0.2  # without explicit parts: test is this share of all samples, validation this share of the rest


@dataclass(frozen=True)
class Split:
    images: torch.Tensor  # uint8 images (N, C, H, W), or float32 feature vectors (N, D) / signals (N, C, L)
    labels: torch.Tensor  # int64 (N,) class labels; float32 (N, T) regression targets or (N, C) 0/1 labels

    def __len__(self) -> int:
        return len(self.labels)

    def to(self, device: torch.device | str) -> Split:
        return Split(self.images.to(device), self.labels.to(device))


@dataclass(frozen=True)
class Dataset:
    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int  # the model's output width: classes, regression targets (T) or labels (C)
    scale: float  # raw value that means "white": 255, or 16 for scikit-learn's digits; 1 for float data
    mean: tuple[float, ...]  # per channel (per feature for vectors), of the training split divided by scale
    std: tuple[float, ...]
    kind: str = "image"  # image, signal or features: which augmentations and models apply
    classes: tuple[str, ...] = ()
    fingerprint: str = ""  # of the user's files or arrays; "" for a built-in dataset
    skipped: tuple[str, ...] = ()  # unreadable images skipped (skip_bad_images: true)
    split: dict | None = None  # how validation and test were made (the user's data): "given", or a share
    task: str = "classification"  # classification, regression or multilabel: what `labels` hold
    task_reason: str = ""  # how the task was decided, for what check says: "stated", "inferred: y is float"
    target_mean: tuple[float, ...] = ()  # regression: per target, of the training split (targets are
    target_std: tuple[float, ...] = ()  # standardised with these; a constant target gets std 1); else ()

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.train.images.shape[1:])

    @property
    def facts(self) -> DataFacts:
        classes = self.classes or tuple(str(i) for i in range(self.num_classes))
        return DataFacts(self.fingerprint, classes, self.shape, self.kind,
                         (len(self.train), len(self.val), len(self.test)), self.skipped, self.split or {},
                         self.task, self.task_reason)


def carve(split: Split, n: int) -> tuple[Split, Split]:
    """(rest, carved): `n` samples chosen by the fixed split seed, and the others in that seed's order."""
    rest, carved = carve_indices(len(split), n)
    return Split(split.images[rest], split.labels[rest]), Split(split.images[carved], split.labels[carved])


def carve_indices(length: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The indices `carve` picks: (rest, carved)."""
    order = torch.randperm(length, generator=torch.Generator().manual_seed(SPLIT_SEED))
    return order[n:], order[:n]


def channel_stats(x: torch.Tensor, scale: float) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Mean and standard deviation per channel (dim 1: per feature for vectors) of `x / scale`. uint8 data
    are counted per value (exact, and no float copy of a large dataset); other data are summed in float64
    chunks of about 32 MB. A constant channel gets std 1 (it is only centred), so normalising never
    divides by zero."""
    if x.dtype == torch.uint8:
        counts = torch.stack([torch.bincount(x[:, c].reshape(-1), minlength=256) for c in range(x.shape[1])])
        values = torch.arange(256, dtype=torch.float64) / scale
        count = counts.sum(dim=1).double()
        mean = (counts.double() * values).sum(dim=1) / count
        squares = (counts.double() * (values.view(1, -1) - mean.view(-1, 1)).square()).sum(dim=1)
    else:
        dims = (0, *range(2, x.ndim))
        per_sample = math.prod(x.shape[2:])
        rows = max(1, (1 << 22) // max(1, x.shape[1] * per_sample))
        count = torch.tensor(float(len(x) * per_sample), dtype=torch.float64)
        total = torch.zeros(x.shape[1], dtype=torch.float64)
        for i in range(0, len(x), rows):
            total += x[i:i + rows].double().div_(scale).sum(dim=dims)
        mean = total / count
        centre = mean.view(1, -1, *([1] * (x.ndim - 2)))
        squares = torch.zeros_like(total)
        for i in range(0, len(x), rows):
            squares += (x[i:i + rows].double().div_(scale) - centre).square_().sum(dim=dims)
    std = (squares / (count - 1).clamp(min=1)).sqrt()
    std = torch.where(std > 0, std, torch.ones_like(std))
    return tuple(mean.tolist()), tuple(std.tolist())
