"""Models (built-in or the user's entry point), batched augmentation, checkpoints and the one training loop
every trial uses, with its packed counterpart (`_packed/`); both obey one copy of the rules they share
(`rules.py`). It trains on what `adamtune.data` loads and knows nothing of Optuna; callers import from here,
never from a module inside.

`TrainConfig`, `ModelSource` and the errors import without torch (`adamtune check` needs only them); the
names that need torch are imported on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .checkpoint import Checkpoint
from .config import LIMITS, LOSSES, MAX_PACK, TrainConfig, augmentation_reason, model_params
from .errors import ConfigError, DivergedError
from .metrics import METRICS, MetricError, Scoring, UserMetric, applicable, metric_problem
from .model_source import BUILTIN_MODELS, ModelSource, model_schema

if TYPE_CHECKING:
    from ._packed import (
        Pack,
        SlotOutcome,
        UnpackableError,
        fit_packed,
        packed_params,
        shared_settings,
        structure_key,
        unpackable,
    )
    from .loop import evaluate, fit, pick_device
    from .models import make_model, probe_model
    from .predictor import Predictor
    from .rules import EpochRecord, FitResult

_LAZY = {"EpochRecord": "rules", "FitResult": "rules", "evaluate": "loop", "fit": "loop", "pick_device": "loop",
         "probe_model": "models", "make_model": "models", "Predictor": "predictor",
         **dict.fromkeys(("Pack", "SlotOutcome", "UnpackableError", "fit_packed", "packed_params", "shared_settings",
                          "structure_key", "unpackable"), "_packed")}

__all__ = ["BUILTIN_MODELS", "LIMITS", "LOSSES", "MAX_PACK", "METRICS", "Checkpoint", "ConfigError", "DivergedError",
           "EpochRecord", "FitResult", "MetricError", "ModelSource", "Scoring", "UserMetric", "applicable",
           "metric_problem", "Pack", "Predictor", "SlotOutcome", "TrainConfig", "UnpackableError",
           "augmentation_reason", "evaluate", "fit", "fit_packed", "make_model", "model_params", "model_schema",
           "packed_params", "pick_device", "probe_model", "shared_settings", "structure_key", "unpackable"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
