"""Every setting one training run needs, as one validated dataclass shared by trials and `train`."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from adamtune.data import BUILTIN_DATASETS, DATA_TYPES, KIND_SHAPES, TASKS, is_entry

from .errors import ConfigError
from .model_source import BUILTIN_MODELS

OPTIMIZERS = ("adam", "adamw")
EPOCH_SCHEDULERS = ("exponential", "step", "cosine", "plateau")  # step once per epoch; warm up in epochs
BATCH_SCHEDULERS = ("batch_exponential", "onecycle", "batch_cosine")  # step after every batch; warm up in batches
SCHEDULERS = ("none", *EPOCH_SCHEDULERS, *BATCH_SCHEDULERS)
ACTIVATIONS = ("relu", "leaky_relu", "elu")
MODELS = BUILTIN_MODELS
# The losses each task trains with; the first is its default and its plain loss (validation's). The data decide
# the task (adamtune.data.TASKS).
LOSSES = dict(zip(TASKS, (("cross_entropy",), ("mse", "l1", "huber"), ("bce",)), strict=True))
MAX_DEPTH = 4  # hidden layers of the built-in MLP
MAX_PACK = 256  # trials one packed worker trains at once: beyond it only memory grows, the program is wide enough
# torch seeds its generators with an unsigned 64-bit integer; a trial adds its number (and the packed engine a
# stream offset) to the seed, so the seed stays well below 2**64.
SEED_LIMIT = 2**63 - 1
# Upper bounds no sensible run exceeds: a study range or an exported config beyond them (lr 1e308, width 1e9,
# epochs 1e9) would diverge, exhaust memory or never end, so it is refused up front.
LIMITS = {"epochs": 10_000, "batch_size": 65_536, "width": 65_536, "step_size": 10_000, "plateau_patience": 10_000,
          "warmup_epochs": 10_000, "patience": 10_000, "random_crop": 64, "rotation": 180.0, "lr": 10.0, "eps": 1.0,
          "weight_decay": 10.0, "grad_clip": 1e6, "huber_delta": 1e3, "decay_every": 10**6, "warmup_steps": 10**6,
          "seed": SEED_LIMIT}


@dataclass(frozen=True)
class TrainConfig:
    """Defaults are PyTorch's (Adam, lr 1e-3, betas 0.9/0.999, eps 1e-8) with nothing else switched on.

    `dataset` is a built-in name or the type of the user's data (image_folder, arrays, python), `model` a
    built-in name or the user's entry point; the user's paths, entry and options travel beside the config
    (the study's `dataset:` and `model:`, an export's `data` and `model`)."""

    dataset: str = "digits"
    model: str = "mlp"
    task: str = "classification"
    epochs: int = 10
    seed: int = 0
    batch_size: int = 64
    width: int = 128
    depth: int = 1  # the built-in MLP's hidden layers (the article's: one)
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
    decay_every: int = 100  # batch_exponential: lr *= decay_rate every decay_every batches (the article's)
    decay_rate: float = 0.98
    onecycle_peak: float = 0.3  # onecycle: fraction of training at the peak (OneCycleLR's pct_start)
    cycle_beta1: bool = False  # onecycle: cycle beta1 inversely to lr (OneCycleLR's cycle_momentum)
    warmup_steps: int = 0  # linear warm-up over this many batches (per-batch schedules and none)
    loss: str = "cross_entropy"  # one of LOSSES[task]; from_dict gives the task's first when none is given
    huber_delta: float = 1.0  # huber: where the loss turns from squared to linear, in standardised target units
    class_weights: bool = False  # classification: balanced class weights; multilabel: positive weights per label
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
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> TrainConfig:
        """Build and validate; unknown keys and bad values raise ConfigError naming the key."""
        known = set(cls.field_names())
        for key in values:
            if key not in known:
                raise ConfigError(source, key, f"unknown setting (known: {', '.join(sorted(known))})")
        typed: dict[str, Any] = {}
        if "loss" not in values and values.get("task") in LOSSES:  # the task's own loss by default
            typed["loss"] = LOSSES[values["task"]][0]
        for f in fields(cls):
            if f.name in values:
                typed[f.name] = _coerce(values[f.name], type(getattr(cls, f.name)), source, f.name)
        config = cls(**typed)
        config.validate(source)
        return config

    @classmethod
    def for_trial(cls, study: Mapping[str, Any], seed: int, values: Mapping[str, Any], source: str) -> TrainConfig:
        """One trial's config: the study's settings (dataset, model, epochs), the trial's seed, then those of
        the trial's values that are settings (see `model_params` for the rest). The objective and every
        reader of a stored trial build it here, so what is shown is what trained."""
        own = model_params(values)
        settings = {k: v for k, v in values.items() if k not in own}
        return cls.from_dict({**study, "seed": seed, **settings}, source=source)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def validate(self, source: str = "config") -> None:
        def need(ok: bool, key: str, reason: str) -> None:
            if not ok:
                raise ConfigError(source, key, f"{reason}, got {getattr(self, key)!r}")

        need(self.dataset in BUILTIN_DATASETS or self.dataset in DATA_TYPES, "dataset",
             f"must be one of {', '.join((*BUILTIN_DATASETS, *DATA_TYPES))}")
        need(self.model in MODELS or is_entry(self.model), "model",
             f"must be one of {', '.join(MODELS)} or an entry point 'module:callable'")
        need(self.optimizer in OPTIMIZERS, "optimizer", f"must be one of {', '.join(OPTIMIZERS)}")
        need(self.scheduler in SCHEDULERS, "scheduler", f"must be one of {', '.join(SCHEDULERS)}")
        need(self.activation in ACTIVATIONS, "activation", f"must be one of {', '.join(ACTIVATIONS)}")
        self._validate_task(need)
        for key in ("epochs", "batch_size", "width", "depth", "step_size", "plateau_patience", "decay_every"):
            need(getattr(self, key) >= 1, key, "must be >= 1")
        for key in ("seed", "warmup_epochs", "warmup_steps", "patience", "random_crop"):
            need(getattr(self, key) >= 0, key, "must be >= 0")
        for key in ("lr", "eps"):
            need(getattr(self, key) > 0, key, "must be > 0")
        for key in ("beta1", "beta2", "dropout", "label_smoothing", "translate"):
            need(0 <= getattr(self, key) < 1, key, "must be in [0, 1)")
        for key in ("gamma", "step_gamma", "plateau_factor", "cosine_min_factor", "decay_rate"):
            need(0 < getattr(self, key) <= 1, key, "must be in (0, 1]")
        need(0 < self.onecycle_peak < 1, "onecycle_peak", "must be in (0, 1), a fraction of training")
        self._validate_warmup(need)
        need(0 <= self.random_erasing <= 1, "random_erasing", "must be a probability in [0, 1]")
        for key, limit in LIMITS.items():
            need(getattr(self, key) <= limit, key, f"must be <= {limit if isinstance(limit, int) else f'{limit:g}'}")
        for key in ("weight_decay", "grad_clip", "rotation"):
            need(getattr(self, key) >= 0, key, "must be >= 0")
        if self.hflip and self.dataset in BUILTIN_DATASETS and not BUILTIN_DATASETS[self.dataset].flip_safe:
            raise ConfigError(source, "hflip", f"{self.dataset} is not flip-invariant (a mirrored digit is "
                              "not the same digit); exclude hflip from this study's search space")

    def _validate_task(self, need: Callable[[bool, str, str], None]) -> None:
        """The loss and its options fit the task; depth is the built-in MLP's."""
        need(self.task in LOSSES, "task", f"must be one of {', '.join(LOSSES)}")
        losses = LOSSES.get(self.task, ())
        need(self.loss in losses, "loss", f"{self.task} trains with {' or '.join(losses)}")
        need(self.huber_delta > 0, "huber_delta", "must be > 0")
        need(not self.class_weights or self.task != "regression", "class_weights",
             "weights classes (classification) or labels (multilabel); regression has none")
        need(not self.label_smoothing or self.task == "classification", "label_smoothing",
             f"smooths a single-label classifier's labels; a {self.task} study leaves it at 0 (exclude: "
             "[label_smoothing])")
        need(self.depth <= MAX_DEPTH, "depth", f"the MLP's hidden layers, 1 to {MAX_DEPTH}")
        need(self.depth == 1 or self.model == "mlp" or is_entry(self.model), "depth", f"is the built-in mlp's "
             f"(and your own model's to read); {self.model} has its own layout (exclude depth from the space)")

    def _validate_warmup(self, need: Callable[[bool, str, str], None]) -> None:
        """Each schedule warms up in its own unit: epochs for per-epoch ones, batches for per-batch ones
        (onecycle warms up by itself, up to `onecycle_peak`)."""
        need(self.scheduler not in BATCH_SCHEDULERS or not self.warmup_epochs, "warmup_epochs",
             f"{self.scheduler} steps per batch, so it warms up with warmup_steps; warmup_epochs must be 0")
        need(self.scheduler not in EPOCH_SCHEDULERS or not self.warmup_steps, "warmup_steps",
             f"{self.scheduler} steps per epoch, so it warms up with warmup_epochs; warmup_steps must be 0")
        need(self.scheduler != "onecycle" or not self.warmup_steps, "warmup_steps",
             "onecycle warms up by itself until onecycle_peak; warmup_steps must be 0")
        need(not (self.warmup_steps and self.warmup_epochs), "warmup_steps",
             "give either warmup_steps or warmup_epochs, not both")


def model_params(values: Mapping[str, Any]) -> dict[str, Any]:
    """The values that are not training settings. With the user's own model they are its builder's own
    parameters; with a built-in model only a space's gate switches (`use_weight_decay`) are left."""
    return {k: v for k, v in values.items() if k not in _SETTINGS}


_SETTINGS = frozenset(TrainConfig.field_names())


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


# Which augmentation settings have a meaning for each kind of data (both loops and `adamtune check` ask).
AUGMENTATIONS = ("rotation", "translate", "hflip", "random_crop", "random_erasing")
APPLICABLE = {"image": set(AUGMENTATIONS), "signal": {"translate"}, "features": set()}


def augmentation_reason(name: str, kind: str, shape: tuple[int, ...]) -> str | None:
    """Why augmentation setting `name` cannot apply to data of `kind`, or None when it can."""
    if name not in AUGMENTATIONS or name in APPLICABLE[kind]:
        return None
    what = f"the data are {KIND_SHAPES[kind].split(' (')[0]} of shape {shape}"
    if kind == "signal":
        return f"{name} applies to images only ({what}; only translate, a shift along the length, applies)"
    return f"{name} applies to images only ({what}; no augmentation applies to feature vectors)"
