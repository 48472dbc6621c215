"""The built-in datasets and what a study may assume about each, without loading anything (no torch),
so a study file is checked in a fraction of a second."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DatasetFacts:
    flip_safe: bool  # does a mirrored image keep its label?
    val_size: int | float  # validation samples carved from the training set (a fraction if < 1)
    offline: bool = False  # ships with a package, so it works without a download


BUILTIN_DATASETS: dict[str, DatasetFacts] = {
    "digits": DatasetFacts(flip_safe=False, val_size=0.2, offline=True),
    "mnist": DatasetFacts(flip_safe=False, val_size=10_000),
    "fashion_mnist": DatasetFacts(flip_safe=True, val_size=10_000),
    "cifar10": DatasetFacts(flip_safe=True, val_size=5_000),
}
