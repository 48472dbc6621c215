"""The one training loop: every trial and every final retrain runs `fit`.

It knows nothing of Optuna. After each epoch it hands an EpochRecord to `on_epoch`; the study's
hook reports it to the trial and raises `optuna.TrialPruned` when the pruner says so.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from typing import Any

import torch

from adamtune.data import Dataset, Split

from . import rules
from .checkpoint import Checkpoint
from .config import TrainConfig
from .losses import TaskLoss
from .metrics import Scoring
from .model_source import ModelSource
from .rules import EpochRecord, Evaluation, FitResult
from .schedule import Schedule, build_schedule


def pick_device(requested: str | None = None) -> torch.device:
    """`cuda` when there is one, else `cpu`, unless asked for a specific device."""
    if requested and requested != "auto":
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def fit(cfg: TrainConfig, data: Dataset, *, device: torch.device | str = "cpu", validate: bool = True,
        model_source: ModelSource | None = None, params: dict[str, Any] | None = None,
        on_epoch: Callable[[EpochRecord], None] | None = None,
        on_start: Callable[[FitResult], None] | None = None, stop_after: int | None = None,
        checkpoint: Checkpoint | None = None, checkpoint_every: float = 0.0,
        scoring: Scoring | None = None) -> FitResult:
    """Train `cfg` on `data`; with `validate`, on the training split with per-epoch validation
    (early stopping, best weights restored), else on train+validation for `cfg.epochs` epochs.
    `model_source` is the user's model (default: the built-in `cfg.model`), built with the trial's `params`.
    Each validated epoch's record holds the metrics `scoring` names (the objective's) beside loss and accuracy.
    `stop_after` ends training after that many epochs without changing the schedule's shape (a
    per-batch one stays laid out over `cfg.epochs` epochs of the data trained on, and is cut short).
    With a `checkpoint`, the state is saved at epoch ends as `rules.checkpoint_due` says (the first, then
    every `checkpoint_every` seconds; 0: every epoch), and before an interrupt `on_epoch` raises between
    epochs (the worker's timeout, Ctrl-C, SIGTERM) goes on; a run that finds one resumes after its last
    epoch, handing the saved epochs to `on_epoch` again so the reported curve has no gap; one that cannot be
    loaded or restored is set aside and training starts from epoch 0.

    Raises DivergedError on a NaN or infinite loss; whatever `on_epoch` raises propagates.
    """
    device = torch.device(device)
    rules.check_augmentations(cfg, data)
    model = rules.seeded_model(cfg, data, model_source, params, device)
    gen = rules.batch_generator(cfg, device)
    optimizer = _optimizer(model, cfg, device)
    train = rules.training_split(data, validate)
    schedule = build_schedule(optimizer, cfg, steps_per_epoch=math.ceil(len(train) / cfg.batch_size))
    aug = rules.augmentation(cfg)
    normalize = rules.normalizer(data, device)
    task_loss = TaskLoss(data, device)
    amp = device.type == "cuda"
    result = FitResult.begin(cfg, model, device)
    best_state, since_best = None, 0
    chunk = rules.chunk_size(cfg.batch_size)
    if on_start is not None:
        on_start(result)
    saved = checkpoint.load() if checkpoint is not None else None
    saved_at: float | None = None  # time.monotonic() of the last checkpoint written or restored
    if saved is not None:
        try:
            records, best_state, since_best, result.best_epoch = _restore(saved, model, optimizer, schedule, gen,
                                                                          device)
        except Exception as exc:  # wrong keys or shapes
            assert checkpoint is not None  # saved came from it
            rules.set_aside(checkpoint, exc)
            return fit(cfg, data, device=device, validate=validate, model_source=model_source, params=params,
                       on_epoch=on_epoch, on_start=on_start, stop_after=stop_after, checkpoint=checkpoint,
                       checkpoint_every=checkpoint_every, scoring=scoring)  # a fresh model, seeded as if never begun
        result.resumed_epochs = len(records)
        saved_at = time.monotonic()
        if records and rules.ends_run(cfg, len(records), since_best, validate, stop_after):
            records[-1] = replace(records[-1], last=True)  # a run that had ended (checkpoints before `last`)
        for record in records:
            result.history.append(record)
            if on_epoch is not None:
                on_epoch(record)
        if rules.stops_early(cfg, since_best, validate):
            result.stopped_early = True

    for epoch in range(len(result.history), min(cfg.epochs, stop_after or cfg.epochs)):
        if result.stopped_early:
            break
        start = time.perf_counter()
        model.train()
        loss_sum = torch.zeros((), device=device)
        order = torch.randperm(len(train), generator=gen, device=device)
        for c in range(0, len(train), chunk):
            images, labels = rules.train_chunk(train, order[c:c + chunk], data, aug, gen, normalize)
            for i in range(0, len(labels), cfg.batch_size):
                x, y = images[i:i + cfg.batch_size], labels[i:i + cfg.batch_size]
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                    out = model(x)
                loss = rules.train_loss(task_loss, cfg, out, y).mean()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                optimizer.step()
                schedule.batch_end()
                loss_sum += loss.detach() * len(y)
        train_loss = loss_sum.item() / len(train)  # one device sync per epoch
        if error := rules.divergence(epoch, train_loss):
            raise error
        scores = Evaluation(math.nan, None)
        if validate:
            scores = evaluate(model, data.val, data, device, scoring, task_loss)
            if error := rules.divergence(epoch, train_loss, scores.loss):
                raise error
        val_loss = scores.loss if validate else None
        result.history.append(EpochRecord(epoch, train_loss, val_loss, scores.accuracy, schedule.lr,
                                          time.perf_counter() - start, metrics=scores.metrics))
        schedule.step(val_loss if validate else train_loss)
        if validate:
            since_best = rules.track_best(result, since_best)
            if since_best == 0:
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        record = rules.close_epoch(result, cfg, since_best, validate, stop_after)
        state = (model, optimizer, schedule, gen, device, best_state, since_best, result)
        due = rules.checkpoint_due(saved_at, checkpoint_every)
        if checkpoint is not None and due:
            checkpoint.save(_state(*state))
            saved_at = time.monotonic()
        if on_epoch is not None:
            try:
                on_epoch(record)
            except KeyboardInterrupt:  # the worker stops between epochs: its retry resumes after this one
                if checkpoint is not None and not due:
                    checkpoint.save(_state(*state))
                raise
        if rules.stops_early(cfg, since_best, validate):
            result.stopped_early = True
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    return result


def _state(model: torch.nn.Module, optimizer: torch.optim.Optimizer, schedule: Schedule, gen: torch.Generator,
           device: torch.device, best_state: dict | None, since_best: int, result: FitResult) -> dict[str, Any]:
    """What a checkpoint holds at an epoch end: all a run needs to go on as if never stopped."""
    return {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
            "generator": gen.get_state(), "torch_rng": torch.get_rng_state(), "cuda_rng": _cuda_rng(device),
            "best_state": best_state, "since_best": since_best, "best_epoch": result.best_epoch,
            "history": [asdict(r) for r in result.history]}


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
    records = rules.saved_history(saved)
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
def evaluate(model: torch.nn.Module, split: Split, data: Dataset, device: torch.device | str,
             scoring: Scoring | None = None, task_loss: TaskLoss | None = None, prefix: str = "val_") -> Evaluation:
    """The task's mean plain loss (no smoothing or weights, so trials compare) over `split`, a classifier's
    accuracy, and the metrics `scoring` names (keys with `prefix`)."""
    device = torch.device(device)
    task_loss = task_loss or TaskLoss(data, device)
    model.eval()
    loss_sum = torch.zeros((), device=device, dtype=torch.float64)
    correct = torch.zeros((), device=device, dtype=torch.int64)
    outputs = []
    for x, y in rules.eval_batches(split, data, device):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            out = model(x)
        loss_sum += task_loss.plain(out, y).sum().double()
        if data.task == "classification":
            correct += (out.argmax(-1) == y).sum()
        if scoring is not None and scoring.needs_predictions:
            outputs.append(out.float())
    metrics = rules.scored(scoring, task_loss, torch.cat(outputs), split.labels, prefix) if outputs else {}
    accuracy = correct.item() / len(split) if data.task == "classification" else None
    return Evaluation(loss_sum.item() / len(split), accuracy, metrics)


def _optimizer(model: torch.nn.Module, cfg: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    """Adam or AdamW, with weight decay only on the parameters `decays` names."""
    decay = [p for p in model.parameters() if rules.decays(p.shape)]
    no_decay = [p for p in model.parameters() if not rules.decays(p.shape)]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    return cls(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps, amsgrad=cfg.amsgrad,
               fused=device.type in ("cpu", "cuda") or None)
