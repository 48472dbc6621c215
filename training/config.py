"""Every setting one training run needs, as one validated dataclass shared by trials and `train`."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from .catalog import BUILTIN_DATASETS as DATASETS
from .entry import is_entry
from .errors import ConfigError
from .sources import BUILTIN_MODELS, DATA_TYPES

OPTIMIZERS = ("adam", "adamw")
SCHEDULERS = ("none", "exponential", "step", "cosine", "plateau")
ACTIVATIONS = ("relu", "leaky_relu", "elu")
MODELS = BUILTIN_MODELS


@dataclass(frozen=True)
class TrainConfig:
    """Defaults are PyTorch's (Adam, lr 1e-3, betas 0.9/0.999, eps 1e-8) with nothing else switched on.

    `dataset` is a built-in name or the type of the user's data (image_folder, arrays, python), `model` a
    built-in name or the user's entry point; the user's paths, entry and options travel beside the config
    (the study's `dataset:` and `model:`, an export's `data` and `model`)."""

    dataset: str = "digits"
    model: str = "mlp"
    epochs: int = 10
    seed: int = 0
    batch_size: int = 64
    width: int = 128
    activation: str = "relu"
    dropout: float = 0.0
    optimizer: str = "adam"
    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 0.0
    amsgrad: bool = False
    scheduler: str = "none"
    gamma: float = 0.9
    step_size: int = 5
    step_gamma: float = 0.5
    cosine_min_factor: float = 0.01
    plateau_factor: float = 0.5
    plateau_patience: int = 2
    warmup_epochs: int = 0
    label_smoothing: float = 0.0
    grad_clip: float = 0.0
    patience: int = 0
    rotation: float = 0.0
    translate: float = 0.0
    hflip: bool = False
    random_crop: int = 0
    random_erasing: float = 0.0

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> "TrainConfig":
        """Build and validate; unknown keys and bad values raise ConfigError naming the key."""
        known = set(cls.field_names())
        for key in values:
            if key not in known:
                raise ConfigError(source, key, f"unknown setting (known: {', '.join(sorted(known))})")
        typed = {}
        for f in fields(cls):
            if f.name in values:
                typed[f.name] = _coerce(values[f.name], type(getattr(cls, f.name)), source, f.name)
        config = cls(**typed)
        config.validate(source)
        return config

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def validate(self, source: str = "config") -> None:
        def need(ok: bool, key: str, reason: str) -> None:
            if not ok:
                raise ConfigError(source, key, f"{reason}, got {getattr(self, key)!r}")

        need(self.dataset in DATASETS or self.dataset in DATA_TYPES, "dataset",
             f"must be one of {', '.join((*DATASETS, *DATA_TYPES))}")
        need(self.model in MODELS or is_entry(self.model), "model",
             f"must be one of {', '.join(MODELS)} or an entry point 'module:callable'")
        need(self.optimizer in OPTIMIZERS, "optimizer", f"must be one of {', '.join(OPTIMIZERS)}")
        need(self.scheduler in SCHEDULERS, "scheduler", f"must be one of {', '.join(SCHEDULERS)}")
        need(self.activation in ACTIVATIONS, "activation", f"must be one of {', '.join(ACTIVATIONS)}")
        for key in ("epochs", "batch_size", "width", "step_size", "plateau_patience"):
            need(getattr(self, key) >= 1, key, "must be >= 1")
        for key in ("seed", "warmup_epochs", "patience", "random_crop"):
            need(getattr(self, key) >= 0, key, "must be >= 0")
        for key in ("lr", "eps"):
            need(getattr(self, key) > 0, key, "must be > 0")
        for key in ("beta1", "beta2", "dropout", "label_smoothing", "translate"):
            need(0 <= getattr(self, key) < 1, key, "must be in [0, 1)")
        for key in ("gamma", "step_gamma", "plateau_factor", "cosine_min_factor"):
            need(0 < getattr(self, key) <= 1, key, "must be in (0, 1]")
        need(0 <= self.random_erasing <= 1, "random_erasing", "must be a probability in [0, 1]")
        for key in ("weight_decay", "grad_clip", "rotation"):
            need(getattr(self, key) >= 0, key, "must be >= 0")
        if self.hflip and self.dataset in DATASETS and not DATASETS[self.dataset].flip_safe:
            raise ConfigError(source, "hflip", f"{self.dataset} is not flip-invariant (a mirrored digit is "
                              "not the same digit); exclude hflip from this study's search space")


def _coerce(value: Any, kind: type, source: str, key: str) -> Any:
    """Accept what JSON and YAML produce for each field's type, nothing looser."""
    if kind is bool:
        if isinstance(value, bool):
            return value
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
    elif isinstance(value, str):
        return value
    raise ConfigError(source, key, f"expected {kind.__name__}, got {value!r}")
