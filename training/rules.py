"""The rules a trial's training obeys, alone (`fit`) or in a pack (`training/_packed/`), in one copy each:
"a packed trial trains exactly as it trains alone" rests on both loops calling these, not on copies that agree.

What each epoch writes (`EpochRecord`, `FitResult`), seeding, which augmentations the data can take and how a
chunk is augmented by the data's kind, units and normalisation, the validation batches, the best epoch and
early stopping, divergence, which weights decay, when a checkpoint is written and one that cannot be restored.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from adamtune.data import Dataset, Split

from .augment import Augmentation
from .checkpoint import Checkpoint
from .config import AUGMENTATIONS, TrainConfig, augmentation_reason
from .errors import ConfigError, DivergedError
from .inputs import normalizer, unit
from .losses import TaskLoss
from .metrics import Scoring
from .model_source import ModelSource
from .models import build_checked

EVAL_BATCH = 2048  # validation samples evaluated at once
CHUNK = 1024  # training samples gathered and augmented at once, rounded down to whole batches


@dataclass(frozen=True)
class EpochRecord:
    epoch: int  # 0-based, the step reported to the trial
    train_loss: float
    val_loss: float | None
    val_accuracy: float | None
    lr: float  # the epoch's last batch's: a per-batch schedule's shape shows at epoch ends
    seconds: float
    last: bool = False  # the run ends after it (its last epoch, or early stopping): it is never pruned
    metrics: dict[str, float] = field(default_factory=dict)  # the objective's metric (val_rmse, ...) when asked

    def value(self, key: str) -> float | None:
        """A series by name: train_loss, val_loss, val_accuracy, or a metric this epoch computed."""
        return getattr(self, key) if key in _FIELDS else self.metrics.get(key)


_FIELDS = ("train_loss", "val_loss", "val_accuracy", "lr", "seconds")


@dataclass
class FitResult:
    config: TrainConfig
    model: torch.nn.Module
    device: str
    param_count: int
    history: list[EpochRecord] = field(default_factory=list)
    best_epoch: int | None = None  # 0-based epoch of the lowest validation loss
    stopped_early: bool = False
    resumed_epochs: int = 0  # epochs restored from a checkpoint instead of trained

    @classmethod
    def begin(cls, cfg: TrainConfig, model: torch.nn.Module, device: torch.device) -> FitResult:
        return cls(cfg, model, str(device), sum(p.numel() for p in model.parameters()))

    @property
    def val_loss(self) -> float | None:
        return None if self.best_epoch is None else self.history[self.best_epoch].val_loss

    @property
    def val_accuracy(self) -> float | None:
        return None if self.best_epoch is None else self.history[self.best_epoch].val_accuracy

    def value(self, key: str) -> float | None:
        """Series `key` at the best epoch (the objective's value a complete trial reports)."""
        return None if self.best_epoch is None else self.history[self.best_epoch].value(key)


# ---- the start: seeds, the model, the data -----------------------------------------------------------

def seeded_model(cfg: TrainConfig, data: Dataset, source: ModelSource | None, params: dict[str, Any] | None,
                 device: torch.device) -> torch.nn.Module:
    """The trial's model (`source`, default the built-in `cfg.model`) initialised from the global generator seeded
    with `cfg.seed` (alone, dropout draws from it next), and checked: output shape, parameters, memory."""
    torch.manual_seed(cfg.seed)
    return build_checked(source or ModelSource.builtin(cfg.model), data, cfg, params or {}, device)


def batch_generator(cfg: TrainConfig, device: torch.device) -> torch.Generator:
    """Batch order and augmentation draw from a generator of their own, seeded with the trial's seed."""
    return torch.Generator(device=device).manual_seed(cfg.seed)


def check_augmentations(cfg: TrainConfig, data: Dataset) -> None:
    """Raises ConfigError for an augmentation setting the data's kind cannot take (rotating a signal, ...)."""
    for name in AUGMENTATIONS:
        reason = augmentation_reason(name, data.kind, data.shape) if getattr(cfg, name) else None
        if reason:
            raise ConfigError("config", name, reason)


def augmentation(cfg: TrainConfig) -> Augmentation:
    return Augmentation(cfg.rotation, cfg.translate, cfg.hflip, cfg.random_crop, cfg.random_erasing)


def training_split(data: Dataset, validate: bool) -> Split:
    """The training split; without validation (a final retrain) train and validation together."""
    if validate:
        return data.train
    return Split(torch.cat([data.train.images, data.val.images]), torch.cat([data.train.labels, data.val.labels]))


def chunk_size(batch_size: int) -> int:
    return max(1, CHUNK // batch_size) * batch_size


def train_chunk(train: Split, idx: torch.Tensor, data: Dataset, aug: Augmentation, gen: torch.Generator,
                normalize: Callable[[torch.Tensor], torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Samples `idx` of `train`, augmented by the data's kind and normalized, and their labels. Whole batches
    a chunk at a time: the same per-sample augmentation, a dozen tensor ops a chunk instead of a batch."""
    images = unit(train.images.index_select(0, idx), data.scale)
    if data.kind == "image":
        images = aug.erase(normalize(aug.warp(images, gen)), gen)
    else:  # a signal is shifted along its length (translate); feature vectors are not augmented
        images = normalize(aug.shift(images, gen) if data.kind == "signal" else images)
    return images, train.labels.index_select(0, idx)


def eval_batches(split: Split, data: Dataset, device: torch.device) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """`split` in batches of EVAL_BATCH on the device, its inputs as training sees them but not augmented: what
    `evaluate` and a pack's evaluation score."""
    normalize = normalizer(data, device)
    for i in range(0, len(split), EVAL_BATCH):
        yield (normalize(unit(split.images[i:i + EVAL_BATCH].to(device), data.scale)),
               split.labels[i:i + EVAL_BATCH].to(device))


@dataclass(frozen=True)
class Evaluation:
    """One model's (or slot's) loss on a split, its accuracy (classification), and the metrics asked for."""

    loss: float
    accuracy: float | None
    metrics: dict[str, float] = field(default_factory=dict)


def scored(scoring: Scoring | None, task_loss: TaskLoss, outputs: torch.Tensor, targets: torch.Tensor,
           prefix: str = "val_") -> dict[str, float]:
    """The metrics `scoring` asks for of one model's outputs on a split (on the host, by scikit-learn or the
    user's function), by name with `prefix`; none when the loops' own loss and accuracy are all it asks."""
    if scoring is None or not scoring.needs_predictions:
        return {}
    predictions = task_loss.predictions(outputs).double().cpu().numpy()
    values = scoring.compute(task_loss.task, predictions, targets.cpu().numpy())
    return {prefix + name: v for name, v in values.items()}


def train_loss(task_loss: TaskLoss, cfg: TrainConfig, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """One trial's per-sample training loss as its config says (a pack passes its columns to TaskLoss)."""
    return task_loss.per_sample(out, y, loss=cfg.loss, delta=cfg.huber_delta, smoothing=cfg.label_smoothing,
                                weighted=float(cfg.class_weights))


# ---- each epoch's end ---------------------------------------------------------------------------------

def divergence(epoch: int, train_loss: float, val_loss: float | None = None) -> DivergedError | None:
    """The error that ends a run whose loss became NaN or infinite in `epoch`, or None."""
    if not math.isfinite(train_loss):
        return DivergedError(f"training loss became {train_loss} in epoch {epoch}")
    if val_loss is not None and not math.isfinite(val_loss):
        return DivergedError(f"validation loss became {val_loss} in epoch {epoch}")
    return None


def track_best(result: FitResult, since_best: int) -> int:
    """After a validated epoch's record is appended: 0 when its validation loss is the lowest so far (strictly:
    a tie keeps the earlier epoch), which becomes the best epoch, whose weights the caller keeps; else the
    epochs since the best, one more."""
    record = result.history[-1]
    if result.best_epoch is None or record.val_loss < result.history[result.best_epoch].val_loss:  # type: ignore[operator]
        result.best_epoch = record.epoch
        return 0
    return since_best + 1


def stops_early(cfg: TrainConfig, since_best: int, validate: bool) -> bool:
    """Early stopping: `cfg.patience` validated epochs in a row without a new best (0: never)."""
    return bool(validate and cfg.patience and since_best >= cfg.patience)


def ends_run(cfg: TrainConfig, epochs_done: int, since_best: int, validate: bool, stop_after: int | None) -> bool:
    """Whether a run that has trained `epochs_done` epochs trains no more: it reached its epochs (or
    `stop_after`), or early stopping ends it. That epoch's record is marked `last`."""
    return stops_early(cfg, since_best, validate) or epochs_done >= min(cfg.epochs, stop_after or cfg.epochs)


def close_epoch(result: FitResult, cfg: TrainConfig, since_best: int, validate: bool,
                stop_after: int | None) -> EpochRecord:
    """The latest record as it is reported: marked `last` (in the history too) when the run ends after it."""
    record = result.history[-1]
    if ends_run(cfg, len(result.history), since_best, validate, stop_after):
        record = result.history[-1] = replace(record, last=True)
    return record


def decays(shape: Sequence[int]) -> bool:
    """Weight decay applies to weight matrices and kernels only, never to biases or norm scales: it is a tuned
    setting, and decaying those would tune something else."""
    return len(shape) >= 2


# ---- checkpoints ----------------------------------------------------------------------------------

def checkpoint_due(saved_at: float | None, every: float) -> bool:
    """Whether a trial's checkpoint is written at this epoch's end: after its first epoch (`saved_at` None:
    none written or restored in this run), then once `every` seconds have passed since the last one (0: at
    every epoch end). A worker that stops between epochs writes one whatever this says, so a killed worker's
    retry loses at most `every` seconds of training and one that was stopped loses none."""
    return saved_at is None or time.monotonic() - saved_at >= every


def saved_history(saved: dict) -> list[EpochRecord]:
    """A checkpoint's epoch records; raises ValueError unless they are the epochs 0, 1, 2, ... in order."""
    records = [EpochRecord(**row) for row in saved["history"]]
    if [r.epoch for r in records] != list(range(len(records))):
        raise ValueError("its history is not the epochs 0, 1, 2, ... in order")
    return records


def set_aside(checkpoint: Checkpoint, exc: Exception, where: str = "") -> None:
    """A checkpoint that cannot be restored (wrong keys or shapes, another structure) is set aside with the
    reason, and the trial starts again from epoch 0, seeded as if never begun: start over rather than lose it."""
    checkpoint.set_aside(f"cannot be restored{where} ({type(exc).__name__}: {' '.join(str(exc).split())[:200]})")
