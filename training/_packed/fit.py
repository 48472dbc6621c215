"""A pack run to the end (`fit_packed`, `fit`'s counterpart for `train` and tests), and `unpackable`, which
builds, stacks and runs a model once to say whether its trials can be packed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from adamtune.data import Dataset

from ..config import TrainConfig
from ..metrics import Scoring
from ..model_source import ModelSource
from ..rules import EpochRecord, FitResult
from .pack import Pack
from .stacked import UnpackableError


def unpackable(data: Dataset, cfg: TrainConfig, params: dict[str, Any] | None = None, *,
               device: torch.device | str = "cpu", model_source: ModelSource | None = None) -> str | None:
    """Why trials of this model cannot be packed (None when they can): built, stacked and run once."""
    try:
        Pack(data, device=device, model_source=model_source).add(0, cfg, params)
    except UnpackableError as exc:
        return str(exc)
    return None


def packed_params(data: Dataset, cfg: TrainConfig, params: dict[str, Any] | None = None, *,
                  device: torch.device | str = "cpu", model_source: ModelSource | None = None,
                  width: int | None = None) -> int:
    """The weights one trial takes in a pack padded to `width` (a built-in model's; the user's as built)."""
    pack = Pack(data, device=device, model_source=model_source, width=width)
    pack.add(0, cfg, params)
    assert pack.model is not None
    return pack.model.width


def fit_packed(configs: list[TrainConfig], data: Dataset, *, device: torch.device | str = "cpu",
               validate: bool = True, model_source: ModelSource | None = None,
               params: list[dict[str, Any]] | None = None, stop_after: int | None = None,
               on_epoch: Callable[[int, EpochRecord], None] | None = None,
               scoring: Scoring | None = None) -> list[FitResult]:
    """Train `configs` (trials that can share a pack: `Pack.can_take`) as one pack to the end; slot i's result
    is `results[i]`. A diverged slot's result has the epochs before it; `fit`'s counterpart for `train` and
    tests."""
    pack = Pack(data, device=device, validate=validate, model_source=model_source, stop_after=stop_after,
                width=max(cfg.width for cfg in configs), max_padding=None, mix_batches=True, scoring=scoring)
    results: dict[int, FitResult] = {}
    for i, cfg in enumerate(configs):
        pack.add(i, cfg, (params or [{}] * len(configs))[i])
    while pack.slots:
        ended = []
        for outcome in pack.epoch():
            if outcome.record is not None and on_epoch is not None:
                on_epoch(int(outcome.key), outcome.record)  # type: ignore[call-overload]
            if outcome.finished:
                results[int(outcome.key)] = pack.result(outcome.key)  # type: ignore[call-overload]
                ended.append(outcome.key)
        pack.remove(ended)
    return [results[i] for i in range(len(configs))]
