"""Data on the device, models, batched augmentation and the one training loop every trial uses.

`TrainConfig`, the data and model sources and the errors import without torch (`adamtune check` needs only
them); the names that need torch are imported on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .config import TrainConfig, model_params
from .errors import ConfigError, DataError, DivergedError, SourceError
from .sources import DataFacts, DataSource, ModelSource

if TYPE_CHECKING:
    from .data import DATASETS, Dataset, Split, load_dataset
    from .loop import EpochRecord, FitResult, evaluate, fit, pick_device
    from .models import probe_model

_LAZY = {"DATASETS": "data", "Dataset": "data", "Split": "data", "load_dataset": "data", "EpochRecord": "loop",
         "FitResult": "loop", "evaluate": "loop", "fit": "loop", "pick_device": "loop", "probe_model": "models"}

__all__ = ["DATASETS", "ConfigError", "DataError", "DataFacts", "DataSource", "Dataset", "DivergedError",
           "EpochRecord", "FitResult", "ModelSource", "SourceError", "Split", "TrainConfig", "evaluate", "fit",
           "load_dataset", "model_params", "pick_device", "probe_model"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
