"""Data on the device, models, batched augmentation and the one training loop every trial uses.

`TrainConfig`, the data and model sources and the errors import without torch (`adamtune check` needs only
them); the names that need torch are imported on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .config import TrainConfig
from .errors import ConfigError, DataError, DivergedError, SourceError
from .sources import DataFacts, DataSource, ModelSource

if TYPE_CHECKING:
    from ._packed import Pack, SlotOutcome, UnpackableError, fit_packed, structure_key, unpackable
    from .data import DATASETS, Dataset, Split, load_dataset
    from .loop import evaluate, fit, pick_device
    from .models import probe_model
    from .rules import EpochRecord, FitResult

_LAZY = {"DATASETS": "data", "Dataset": "data", "Split": "data", "load_dataset": "data", "EpochRecord": "rules",
         "FitResult": "rules", "evaluate": "loop", "fit": "loop", "pick_device": "loop", "probe_model": "models",
         **dict.fromkeys(("Pack", "SlotOutcome", "UnpackableError", "fit_packed", "structure_key", "unpackable"),
                         "_packed")}

__all__ = ["DATASETS", "ConfigError", "DataError", "DataFacts", "DataSource", "Dataset", "DivergedError",
           "EpochRecord", "FitResult", "ModelSource", "Pack", "SlotOutcome", "SourceError", "Split", "TrainConfig",
           "UnpackableError", "evaluate", "fit", "fit_packed", "load_dataset", "pick_device", "probe_model",
           "structure_key", "unpackable"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
