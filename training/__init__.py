"""Data on the device, models, batched augmentation and the one training loop every trial uses.

`TrainConfig` and the errors import without torch (`adamtune check` needs only them); the names that
need torch are imported on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .config import TrainConfig
from .errors import ConfigError, DataError, DivergedError

if TYPE_CHECKING:
    from .data import DATASETS, Dataset, Split, load_dataset
    from .loop import EpochRecord, FitResult, evaluate, fit, pick_device

_LAZY = {"DATASETS": "data", "Dataset": "data", "Split": "data", "load_dataset": "data", "EpochRecord": "loop",
         "FitResult": "loop", "evaluate": "loop", "fit": "loop", "pick_device": "loop"}

__all__ = ["DATASETS", "ConfigError", "DataError", "Dataset", "DivergedError", "EpochRecord", "FitResult",
           "Split", "TrainConfig", "evaluate", "fit", "load_dataset", "pick_device"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
