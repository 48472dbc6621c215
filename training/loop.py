"""The one training loop: every trial and every final retrain runs `fit`.

It knows nothing of Optuna. After each epoch it hands an EpochRecord to `on_epoch`; the study's
hook reports it to the trial and raises `optuna.TrialPruned` when the pruner says so.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch
import torch.nn.functional as F

from adamtune.data import Dataset, Split

from .augment import Augmentation
from .checkpoint import Checkpoint
from .config import TrainConfig, augmentation_reason
from .errors import ConfigError, DivergedError
from .model_source import ModelSource
from .models import build_checked
from .schedule import Schedule, build_schedule

EVAL_BATCH = 2048
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


def ends_run(cfg: TrainConfig, epochs_done: int, since_best: int, validate: bool, stop_after: int | None) -> bool:
    """Whether a run that has trained `epochs_done` epochs trains no more: it reached its epochs (or
    `stop_after`), or early stopping ends it. Both loops ask this, and mark that epoch's record `last`."""
    stops_early = bool(validate and cfg.patience and since_best >= cfg.patience)
    return stops_early or epochs_done >= min(cfg.epochs, stop_after or cfg.epochs)


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

    @property
    def val_loss(self) -> float | None:
        return None if self.best_epoch is None else self.history[self.best_epoch].val_loss

    @property
    def val_accuracy(self) -> float | None:
        return None if self.best_epoch is None else self.history[self.best_epoch].val_accuracy


def pick_device(requested: str | None = None) -> torch.device:
    """`cuda` when there is one, else `cpu`, unless asked for a specific device."""
    if requested and requested != "auto":
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def fit(cfg: TrainConfig, data: Dataset, *, device: torch.device | str = "cpu", validate: bool = True,
        model_source: ModelSource | None = None, params: dict[str, Any] | None = None,
        on_epoch: Callable[[EpochRecord], None] | None = None,
        on_start: Callable[[FitResult], None] | None = None, stop_after: int | None = None,
        checkpoint: Checkpoint | None = None) -> FitResult:
    """Train `cfg` on `data`; with `validate`, on the training split with per-epoch validation
    (early stopping, best weights restored), else on train+validation for `cfg.epochs` epochs.
    `model_source` is the user's model (default: the built-in `cfg.model`), built with the trial's `params`.
    `stop_after` ends training after that many epochs without changing the schedule's shape (a
    per-batch one stays laid out over `cfg.epochs` epochs of the data trained on, and is cut short).
    With a `checkpoint`, the state is saved at every epoch end, and a run that finds one resumes after
    its last epoch, handing the saved epochs to `on_epoch` again so the reported curve has no gap; one
    that cannot be loaded or restored is set aside and training starts from epoch 0.

    Raises DivergedError on a NaN or infinite loss; whatever `on_epoch` raises propagates.
    """
    device = torch.device(device)
    for name in ("rotation", "translate", "hflip", "random_crop", "random_erasing"):
        reason = augmentation_reason(name, data.kind, data.shape) if getattr(cfg, name) else None
        if reason:
            raise ConfigError("config", name, reason)
    torch.manual_seed(cfg.seed)  # model initialisation and dropout
    gen = torch.Generator(device=device).manual_seed(cfg.seed)  # batch order and augmentation
    source = model_source or ModelSource.builtin(cfg.model)
    model = build_checked(source, data, cfg, params or {}, device)  # output shape, parameters, memory
    optimizer = _optimizer(model, cfg, device)
    train = data.train if validate else _concat(data.train, data.val)
    schedule = build_schedule(optimizer, cfg, steps_per_epoch=math.ceil(len(train) / cfg.batch_size))
    aug = Augmentation(cfg.rotation, cfg.translate, cfg.hflip, cfg.random_crop, cfg.random_erasing)
    normalize = _normalizer(data, device)
    amp = device.type == "cuda"
    result = FitResult(cfg, model, str(device), sum(p.numel() for p in model.parameters()))
    best_state, since_best = None, 0
    chunk = max(1, CHUNK // cfg.batch_size) * cfg.batch_size
    if on_start is not None:
        on_start(result)
    saved = checkpoint.load() if checkpoint is not None else None
    if saved is not None:
        try:
            records, best_state, since_best, result.best_epoch = _restore(saved, model, optimizer, schedule, gen,
                                                                          device)
        except Exception as exc:  # wrong keys or shapes: start over rather than lose the trial
            assert checkpoint is not None  # saved came from it
            checkpoint.set_aside(f"cannot be restored ({type(exc).__name__}: {' '.join(str(exc).split())[:200]})")
            return fit(cfg, data, device=device, validate=validate, model_source=model_source, params=params,
                       on_epoch=on_epoch, on_start=on_start, stop_after=stop_after,
                       checkpoint=checkpoint)  # a fresh model, seeded as if never begun
        result.resumed_epochs = len(records)
        if records and ends_run(cfg, len(records), since_best, validate, stop_after):
            records[-1] = replace(records[-1], last=True)  # a run that had ended (checkpoints before `last`)
        for record in records:
            result.history.append(record)
            if on_epoch is not None:
                on_epoch(record)
        if validate and cfg.patience and since_best >= cfg.patience:
            result.stopped_early = True

    for epoch in range(len(result.history), min(cfg.epochs, stop_after or cfg.epochs)):
        if result.stopped_early:
            break
        start = time.perf_counter()
        model.train()
        loss_sum = torch.zeros((), device=device)
        order = torch.randperm(len(train), generator=gen, device=device)
        for c in range(0, len(train), chunk):
            # Gather, augment and normalize whole batches a chunk at a time: the same batches with the
            # same per-sample augmentation, but a dozen small tensor ops per chunk instead of per batch.
            idx = order[c:c + chunk]
            images = _unit(train.images.index_select(0, idx), data.scale)
            if data.kind == "image":
                images = aug.erase(normalize(aug.warp(images, gen)), gen)
            else:  # a signal is shifted along its length (translate); feature vectors are not augmented
                images = normalize(aug.shift(images, gen) if data.kind == "signal" else images)
            labels = train.labels.index_select(0, idx)
            for i in range(0, len(idx), cfg.batch_size):
                x, y = images[i:i + cfg.batch_size], labels[i:i + cfg.batch_size]
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                    loss = F.cross_entropy(model(x), y, label_smoothing=cfg.label_smoothing)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                optimizer.step()
                schedule.batch_end()
                loss_sum += loss.detach() * len(y)
        train_loss = loss_sum.item() / len(train)  # one device sync per epoch
        if not math.isfinite(train_loss):
            raise DivergedError(f"training loss became {train_loss} in epoch {epoch}")
        val_loss = val_acc = None
        if validate:
            val_loss, val_acc = evaluate(model, data.val, data, device)
            if not math.isfinite(val_loss):
                raise DivergedError(f"validation loss became {val_loss} in epoch {epoch}")
        record = EpochRecord(epoch, train_loss, val_loss, val_acc, schedule.lr, time.perf_counter() - start)
        result.history.append(record)
        schedule.step(val_loss if validate else train_loss)
        if validate:
            if result.best_epoch is None or val_loss < result.history[result.best_epoch].val_loss:  # type: ignore[operator]
                result.best_epoch, since_best = epoch, 0
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                since_best += 1
        if ends_run(cfg, epoch + 1, since_best, validate, stop_after):
            record = result.history[-1] = replace(record, last=True)
        if checkpoint is not None:
            checkpoint.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                             "schedule": schedule.state_dict(), "generator": gen.get_state(),
                             "torch_rng": torch.get_rng_state(), "cuda_rng": _cuda_rng(device),
                             "best_state": best_state, "since_best": since_best,
                             "best_epoch": result.best_epoch, "history": [asdict(r) for r in result.history]})
        if on_epoch is not None:
            on_epoch(record)
        if validate and cfg.patience and since_best >= cfg.patience:
            result.stopped_early = True
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    return result


RESUME_KEYS = ("model", "optimizer", "schedule", "generator", "torch_rng", "best_state", "since_best", "best_epoch",
               "history")


def _cuda_rng(device: torch.device) -> torch.Tensor | None:
    """The GPU's own generator (dropout on CUDA draws from it, not from the CPU's): without it a run
    resumed on a GPU draws other dropout masks than the uninterrupted run."""
    return torch.cuda.get_rng_state(device) if device.type == "cuda" else None


def _restore(saved: dict, model: torch.nn.Module, optimizer: torch.optim.Optimizer, schedule: Schedule,
             gen: torch.Generator, device: torch.device) -> tuple[list[EpochRecord], dict | None, int, int | None]:
    """Load a checkpoint into the freshly built training state; raises on a missing key or a shape
    that does not fit, so a damaged file is caught here rather than epochs later."""
    missing = [key for key in RESUME_KEYS if key not in saved]
    if missing:
        raise ValueError(f"missing entries {missing}")
    records = [EpochRecord(**row) for row in saved["history"]]
    if [r.epoch for r in records] != list(range(len(records))):
        raise ValueError("its history is not the epochs 0, 1, 2, ... in order")
    best_epoch, best_state = saved["best_epoch"], saved["best_state"]
    if best_epoch is not None and not 0 <= best_epoch < len(records):
        raise ValueError(f"best_epoch {best_epoch} lies outside its {len(records)} epochs")
    _check_shapes("model weights", saved["model"], model.state_dict())
    model.load_state_dict(saved["model"])
    if best_state is not None:
        _check_shapes("best weights", best_state, model.state_dict())
    optimizer.load_state_dict(saved["optimizer"])
    for group in optimizer.param_groups:
        for param in group["params"]:
            moments = {k: v for k, v in optimizer.state.get(param, {}).items() if torch.is_tensor(v) and v.dim()}
            _check_shapes("optimizer state", moments, {k: param for k in moments})
    schedule.load_state_dict(saved["schedule"])
    gen.set_state(saved["generator"])
    torch.set_rng_state(saved["torch_rng"])
    if device.type == "cuda" and saved.get("cuda_rng") is not None:  # absent in checkpoints written on a CPU
        torch.cuda.set_rng_state(saved["cuda_rng"], device)
    return records, best_state, int(saved["since_best"]), best_epoch


def _check_shapes(what: str, found: dict, expected: dict) -> None:
    """Same keys and shapes; `load_state_dict` would copy the half that fits, a fused step crash later."""
    if set(found) != set(expected):
        missing, unexpected = sorted(map(str, expected.keys() - found)), sorted(map(str, found.keys() - expected))
        raise ValueError(f"{what}: missing {missing[:3]}, unexpected {unexpected[:3]}")
    for key, tensor in expected.items():
        if tuple(found[key].shape) != tuple(tensor.shape):
            raise ValueError(f"{what} {key} has shape {tuple(found[key].shape)}, expected {tuple(tensor.shape)}")


@torch.no_grad()
def evaluate(model: torch.nn.Module, split: Split, data: Dataset, device: torch.device | str) -> tuple[float, float]:
    """Mean plain cross-entropy (no label smoothing, so trials compare) and accuracy over `split`."""
    device = torch.device(device)
    model.eval()
    normalize = _normalizer(data, device)
    loss_sum = torch.zeros((), device=device, dtype=torch.float64)
    correct = torch.zeros((), device=device, dtype=torch.int64)
    for i in range(0, len(split), EVAL_BATCH):
        x = normalize(_unit(split.images[i:i + EVAL_BATCH].to(device), data.scale))
        y = split.labels[i:i + EVAL_BATCH].to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits = model(x)
        loss_sum += F.cross_entropy(logits.float(), y, reduction="sum").double()
        correct += (logits.argmax(1) == y).sum()
    return loss_sum.item() / len(split), correct.item() / len(split)


def _optimizer(model: torch.nn.Module, cfg: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    """Weight decay on weight matrices and kernels only, never on biases or norm scales."""
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    return cls(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps, amsgrad=cfg.amsgrad,
               fused=device.type in ("cpu", "cuda") or None)


def _normalizer(data: Dataset, device: torch.device) -> Callable[[torch.Tensor], torch.Tensor]:
    """Per channel (dim 1) for images and signals, per feature for vectors."""
    view = (1, -1, *([1] * (len(data.shape) - 1)))
    mean = torch.tensor(data.mean, device=device).view(view)
    std = torch.tensor(data.std, device=device).view(view)
    return lambda x: (x - mean) / std


def _unit(x: torch.Tensor, scale: float) -> torch.Tensor:
    """float32 in the units the statistics were taken in; never writes into `x` (float data is stored as is)."""
    return x.float().div_(scale) if x.dtype != torch.float32 else (x / scale if scale != 1 else x)


def _concat(a: Split, b: Split) -> Split:
    return Split(torch.cat([a.images, b.images]), torch.cat([a.labels, b.labels]))
