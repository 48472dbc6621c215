"""Packed training: K trials of one model structure trained as one program, one epoch at a time.

Each slot is a whole trial: its own config (every continuous setting may differ), its own seed, batch order,
augmentation and dropout masks drawn from its own generators, its own Adam/AdamW state and schedule, early
stopping and checkpoint. What the slots share is the structure (`structure_key`): model, width, activation,
batch size, epochs and the data, so every slot has the same steps per epoch and the pack stays epoch-aligned.

A trial's numbers do not depend on the pack: the same trial packed alone (K = 1) gives the same per-epoch
losses (to float rounding of batched kernels). The caller (the study's packed worker, `fit_packed`) adds
slots, runs epochs, reads each slot's records and ends or refills slots between epochs.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Hashable, Iterable
from dataclasses import replace
from typing import Any

import torch
import torch.nn.functional as F

from adamtune.data import Dataset

from .augment import Augmentation
from .checkpoint import Checkpoint
from .config import MAX_PACK, TrainConfig, augmentation_reason
from .errors import ConfigError, DivergedError
from .loop import CHUNK, EpochRecord, FitResult, _concat, _normalizer, _unit, ends_run
from .model_source import ModelSource
from .models import build_checked
from .pack_slot import Slot, SlotOutcome, restore_slot, slot_state
from .schedule import BatchSchedule, build_schedule
from .stacked import StackedModel, UnpackableError, dropout_rates, probe
from .stacked_adam import StackedAdam

DROPOUT_STREAM = 0x5EED  # the dropout generator's seed is the trial's seed plus this: a stream of its own
SHARED = ("dataset", "model", "epochs", "batch_size", "width", "activation")  # settings a pack's slots share


def structure_key(cfg: TrainConfig, params: dict[str, Any] | None = None, user_model: bool = False) -> tuple:
    """What trials must agree on to share a pack: the shared settings, and for the user's own model every
    value its builder gets that is not a training setting (any of them may change the model's shapes)."""
    own = sorted((k, repr(v)) for k, v in (params or {}).items()
                 if user_model and k not in TrainConfig.field_names())
    return (*(getattr(cfg, name) for name in SHARED), *own)


class Pack:
    """Slots training together. `epochs_limit` (fit's `stop_after`) ends every slot after that many epochs;
    `checkpoint_every` seconds between a slot's checkpoints (0: every epoch)."""

    def __init__(self, data: Dataset, *, device: torch.device | str = "cpu", validate: bool = True,
                 model_source: ModelSource | None = None, stop_after: int | None = None,
                 checkpoint_every: float = 0.0) -> None:
        self.data = data
        self.device = torch.device(device)
        self.validate = validate
        self.source = model_source
        self.stop_after = stop_after
        self.checkpoint_every = checkpoint_every
        self.train_split = data.train if validate else _concat(data.train, data.val)
        self.normalize = _normalizer(data, self.device)
        self.slots: list[Slot] = []
        self.model: StackedModel | None = None
        self.key: tuple | None = None
        self.noise_shapes: list[tuple[int, ...]] = []
        self.amp = self.device.type == "cuda"

    # ---- slots -------------------------------------------------------------------------------------

    def can_take(self, cfg: TrainConfig, params: dict[str, Any] | None = None) -> bool:
        return self.key is None or not self.slots or self._key(cfg, params) == self.key

    def _key(self, cfg: TrainConfig, params: dict[str, Any] | None) -> tuple:
        return structure_key(cfg, params, self.source is not None and self.source.user)

    def add(self, key: Hashable, cfg: TrainConfig, params: dict[str, Any] | None = None,
            checkpoint: Checkpoint | None = None) -> list[EpochRecord]:
        """Start trial `key` in a new slot (resuming from `checkpoint` when it holds one of this trial); returns
        the epochs restored from it, which the caller reports again, as `fit` does. Raises UnpackableError when
        the model cannot be stacked, ConfigError for an augmentation the data cannot take."""
        for name in ("rotation", "translate", "hflip", "random_crop", "random_erasing"):
            reason = augmentation_reason(name, self.data.kind, self.data.shape) if getattr(cfg, name) else None
            if reason:
                raise ConfigError("config", name, reason)
        if not self.can_take(cfg, params):
            raise ValueError(f"trial {key!r} has another structure than this pack's")
        torch.manual_seed(cfg.seed)  # the model is initialised exactly as fit initialises it
        model = build_checked(self.source or ModelSource.builtin(cfg.model), self.data, cfg, params or {},
                              self.device)  # output shape, parameters, memory: as `fit` checks them
        drop_gen = torch.Generator(device=self.device).manual_seed(cfg.seed + DROPOUT_STREAM)
        if self.model is None or not self.slots:
            self._start(model, cfg, params)
        assert self.model is not None
        row = self.model.rows if self.slots else 0
        if self.slots:
            self._grow()
        self.model.set_row(row, model.state_dict())
        self.adam.reset(row)
        steps = math.ceil(len(self.train_split) / cfg.batch_size)
        dummy = torch.optim.Adam([torch.zeros(1)], lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
        dummy._opt_called = True  # type: ignore[attr-defined]  # it never steps; its schedule must not warn
        slot = Slot(key, cfg, dict(params or {}), torch.Generator(device=self.device).manual_seed(cfg.seed),
                     drop_gen, dropout_rates(model),
                     Augmentation(cfg.rotation, cfg.translate, cfg.hflip, cfg.random_crop, cfg.random_erasing),
                     dummy, build_schedule(dummy, cfg, steps), checkpoint,
                     FitResult(cfg, model, str(self.device), sum(p.numel() for p in model.parameters())))
        self.slots.append(slot)
        self._set_hyper(row, slot)
        try:
            return self._resume(row, slot) if checkpoint is not None else []
        except _Restart:  # set aside: this slot starts again from epoch 0, seeded as if never begun
            self.remove([key])
            return self.add(key, cfg, params, checkpoint)

    def _start(self, model: torch.nn.Module, cfg: TrainConfig, params: dict[str, Any] | None) -> None:
        """A new, empty pack takes the first trial's structure."""
        x = self.normalize(_unit(self.train_split.images[:2].to(self.device), self.data.scale))
        self.noise_shapes = probe(model, x)
        self.model = StackedModel(model, 1, self.device)
        # bf16 autocast on CUDA, as fit; but not through BatchNorm under vmap, whose batched backward
        # wants its fp32 running statistics in the input's dtype (seen on an H200): such packs train in fp32.
        has_norm = any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())
        self.amp = self.device.type == "cuda" and not has_norm
        self.key = self._key(cfg, params)
        self.adam = StackedAdam(1, self.model.width, self.device)

    def _grow(self) -> None:
        assert self.model is not None
        rows = list(range(self.model.rows)) + [0]
        self._select(rows)

    def _select(self, rows: list[int]) -> None:
        """Keep (and repeat) rows of every per-slot tensor; a repeated row is overwritten by the caller."""
        assert self.model is not None
        self.model.keep_rows(rows)
        self.adam.select(torch.tensor(rows, device=self.device, dtype=torch.long))

    def _set_hyper(self, row: int, slot: Slot) -> None:
        cfg, group = slot.cfg, slot.dummy.param_groups[0]
        adamw = cfg.optimizer == "adamw"
        values = {"lr": group["lr"], "beta1": group["betas"][0], "beta2": cfg.beta2, "eps": cfg.eps,
                  "l2": 0.0 if adamw else cfg.weight_decay, "decoupled": cfg.weight_decay if adamw else 0.0,
                  "amsgrad": float(cfg.amsgrad), "clip": cfg.grad_clip, "smoothing": cfg.label_smoothing}
        self.adam.set_hyper(row, values)

    def remove(self, keys: Iterable[Hashable]) -> None:
        """End these slots (pruned, finished, diverged, failed); the pack shrinks to the others."""
        gone = set(keys)
        keep = [i for i, s in enumerate(self.slots) if s.key not in gone]
        if len(keep) == len(self.slots):
            return
        self.slots = [self.slots[i] for i in keep]
        if self.slots:
            self._select(keep)

    def result(self, key: Hashable) -> FitResult:
        """The slot's FitResult, its model holding the best epoch's weights (or the last, without validation)."""
        row, slot = self._find(key)
        assert self.model is not None
        state = slot.best_state if slot.best_state is not None else self.model.row_state(row)
        slot.result.model.load_state_dict(state)
        return slot.result

    def slot_result(self, key: Hashable) -> FitResult:
        """The slot's FitResult as it stands (device, parameter count, history so far)."""
        return self._find(key)[1].result

    def _find(self, key: Hashable) -> tuple[int, Slot]:
        return next((i, s) for i, s in enumerate(self.slots) if s.key == key)

    @property
    def keys(self) -> list[Hashable]:
        return [s.key for s in self.slots]

    # ---- one epoch -------------------------------------------------------------------------------

    def epoch(self) -> list[SlotOutcome]:
        """Train every slot one epoch (each on its own batches), then evaluate, step schedules, checkpoint.
        Slots that end (last epoch, early stop, divergence) stay until the caller `remove`s them.
        cuDNN may not round convolutions to TF32 here: a trial's numbers must not depend on its pack's size."""
        with torch.backends.cudnn.flags(enabled=True, benchmark=False, deterministic=True, allow_tf32=False):
            return self._epoch()

    def _epoch(self) -> list[SlotOutcome]:
        assert self.model is not None and self.slots
        start = time.perf_counter()
        model, slots, k = self.model, self.slots, len(self.slots)
        batch = slots[0].cfg.batch_size
        n = len(self.train_split)
        chunk = max(1, CHUNK // batch) * batch
        model.train(True)
        orders = [torch.randperm(n, generator=s.gen, device=self.device) for s in slots]
        self.adam.read_uses()
        loss_sum = torch.zeros(k, device=self.device)
        spe = math.ceil(n / batch)
        tables = [self._batch_table(s, spe) for s in slots]
        hyper = self.adam.hyper
        schedule = hyper[:, :2].unsqueeze(1).repeat(1, spe, 1)  # (K, steps, lr/beta1)
        for row, table in enumerate(tables):
            if table is not None:
                schedule[row] = torch.tensor(table, dtype=torch.float64)
        for c in range(0, n, chunk):
            images, labels = [], []
            for s, order in zip(slots, orders):
                idx = order[c:c + chunk]
                images.append(self._augment(s, _unit(self.train_split.images.index_select(0, idx), self.data.scale)))
                labels.append(self.train_split.labels.index_select(0, idx))
            xs, ys = torch.stack(images), torch.stack(labels)
            masks = self._noises(xs.shape[1])  # a chunk's masks at once: K draws a chunk, not K a batch
            for i in range(0, xs.shape[1], batch):
                hyper[:, :2] = schedule[:, (c + i) // batch]
                x, y = xs[:, i:i + batch], ys[:, i:i + batch]
                loss = self._step(x, y, [m[:, i:i + batch] for m in masks])
                loss_sum += loss.detach() * y.shape[1]
        train_losses = [total / n for total in loss_sum.tolist()]  # one device sync per epoch
        vals: list[tuple[float | None, float | None]] = list(self._evaluate()) if self.validate else [(None, None)] * k
        seconds = (time.perf_counter() - start) / k  # each slot's share of the pack's epoch
        return [self._end_epoch(row, s, train_losses[row], vals[row][0], vals[row][1], seconds)
                for row, s in enumerate(slots)]

    def _augment(self, s: Slot, images: torch.Tensor) -> torch.Tensor:
        """As fit does, with the slot's generator and magnitudes."""
        if self.data.kind == "image":
            return s.aug.erase(self.normalize(s.aug.warp(images, s.gen)), s.gen)
        return self.normalize(s.aug.shift(images, s.gen) if self.data.kind == "signal" else images)

    def _noises(self, rows: int) -> list[torch.Tensor]:
        """One scaled mask per dropout module (K, rows, ...) for `rows` samples: each slot keeps a unit with
        probability 1 - p, drawn from the slot's own generator (uniforms, compared: a tenth of bernoulli_'s cost
        on CPU), and scales it by 1 / (1 - p) as nn.Dropout does; p = 0 draws nothing."""
        out = []
        for m, shape in enumerate(self.noise_shapes):
            masks = []
            for s in self.slots:
                keep = 1 - s.drop_rates[m]
                if keep < 1:
                    u = torch.rand((rows, *shape), device=self.device, generator=s.drop_gen)
                    masks.append(u.lt_(keep).div_(keep))
                else:
                    masks.append(torch.ones((rows, *shape), device=self.device))
            out.append(torch.stack(masks))
        return out

    def _step(self, x: torch.Tensor, y: torch.Tensor, noises: list[torch.Tensor]) -> torch.Tensor:
        """One optimizer step of every slot; returns each slot's mean training loss (K,)."""
        assert self.model is not None
        model = self.model
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            logits = model.forward(x, noises)
        logp = F.log_softmax(logits.float(), dim=-1)
        nll = -logp.gather(-1, y.unsqueeze(-1)).squeeze(-1).mean(1)
        smoothing = self.adam.column("smoothing").float()
        loss = nll if not self.adam.uses["smoothing"] else (1 - smoothing) * nll + smoothing * (-logp.mean(-1).mean(1))
        model.grad.zero_()
        with warnings.catch_warnings():
            # Gradients accumulate into column slices of the flat gradient (see StackedModel._views): not
            # dense, which PyTorch notes once; they are exact (the pack-vs-alone test holds them to it).
            warnings.filterwarnings("ignore", message=".*gradient layout contract")
            loss.sum().backward()
        self.adam.step(model.flat, model.grad, model.decay)
        return loss

    @torch.no_grad()
    def _evaluate(self) -> list[tuple[float, float]]:
        """evaluate() for every slot at once: mean plain cross-entropy and accuracy on the validation split."""
        assert self.model is not None
        split, k = self.data.val, len(self.slots)
        self.model.train(False)
        loss_sum = torch.zeros(k, device=self.device, dtype=torch.float64)
        correct = torch.zeros(k, device=self.device, dtype=torch.int64)
        for i in range(0, len(split), 2048):
            x = self.normalize(_unit(split.images[i:i + 2048].to(self.device), self.data.scale))
            y = split.labels[i:i + 2048].to(self.device)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                logits = self.model.forward(x, shared_input=True)
            loss_sum += F.cross_entropy(logits.float().transpose(1, 2), y.expand(k, -1),
                                        reduction="none").sum(1).double()
            correct += (logits.argmax(-1) == y).sum(1)
        return [(loss / len(split), c / len(split)) for loss, c in zip(loss_sum.tolist(), correct.tolist())]

    def _batch_table(self, s: Slot, steps_per_epoch: int) -> list[tuple[float, float]] | None:
        """A per-batch schedule's (lr, beta1) for each batch of the coming epoch, stepped on its dummy optimizer
        exactly as fit steps it; None for a per-epoch schedule (its values change at epoch ends)."""
        if not isinstance(s.schedule, BatchSchedule):
            return None
        group, out = s.dummy.param_groups[0], []
        for _ in range(steps_per_epoch):
            out.append((group["lr"], group["betas"][0]))
            s.schedule.batch_end()
        return out

    def _end_epoch(self, row: int, s: Slot, train_loss: float, val_loss: float | None, val_acc: float | None,
                   seconds: float) -> SlotOutcome:
        result, epoch = s.result, len(s.result.history)
        if not math.isfinite(train_loss):
            return SlotOutcome(s.key, None, True, DivergedError(f"training loss became {train_loss} in epoch {epoch}"))
        if val_loss is not None and not math.isfinite(val_loss):
            return SlotOutcome(s.key, None, True,
                               DivergedError(f"validation loss became {val_loss} in epoch {epoch}"))
        record = EpochRecord(epoch, train_loss, val_loss, val_acc, s.schedule.lr, seconds)
        result.history.append(record)
        s.schedule.step(val_loss if self.validate else train_loss)
        self._set_hyper(row, s)
        if self.validate:
            if result.best_epoch is None or val_loss < result.history[result.best_epoch].val_loss:  # type: ignore[operator]
                result.best_epoch, s.since_best = epoch, 0
                assert self.model is not None
                s.best_state = self.model.row_state(row)
            else:
                s.since_best += 1
        stopped = bool(self.validate and s.cfg.patience and s.since_best >= s.cfg.patience)
        result.stopped_early = stopped
        last = ends_run(s.cfg, epoch + 1, s.since_best, self.validate, self.stop_after)
        if last:
            record = result.history[-1] = replace(record, last=True)
        if s.checkpoint is not None and not last and (
                time.monotonic() - s.saved_at >= self.checkpoint_every):
            self._save(row, s)
        return SlotOutcome(s.key, record, last)

    # ---- checkpoints -----------------------------------------------------------------------------

    def save_checkpoints(self) -> None:
        """Write every slot's checkpoint now, whatever `checkpoint_every` says (between epochs only: a worker
        stopping on its timeout keeps all it trained)."""
        for row, slot in enumerate(self.slots):
            if slot.checkpoint is not None:
                self._save(row, slot)

    def _save(self, row: int, s: Slot) -> None:
        assert self.model is not None and s.checkpoint is not None
        s.checkpoint.save(slot_state(self.model, self.adam, row, s))
        s.saved_at = time.monotonic()

    def _resume(self, row: int, s: Slot) -> list[EpochRecord]:
        """Restore the slot from its checkpoint; one that is not a packed checkpoint of this structure is set
        aside (the trial starts again from epoch 0, as fit does)."""
        assert s.checkpoint is not None and self.model is not None
        saved = s.checkpoint.load()
        if saved is None:
            return []
        try:
            records = restore_slot(saved, self.model, self.adam, row, s)
            self._set_hyper(row, s)
        except Exception as exc:  # wrong keys or shapes: start over rather than lose the trial
            s.checkpoint.set_aside(f"cannot be restored in a pack ({type(exc).__name__}: "
                                   f"{' '.join(str(exc).split())[:200]})")
            raise _Restart() from None
        s.result.resumed_epochs = len(records)
        s.result.history.extend(records)
        s.saved_at = time.monotonic()
        if self.validate and s.cfg.patience and s.since_best >= s.cfg.patience:
            s.result.stopped_early = True
        return records


class _Restart(Exception):
    """A checkpoint could not be restored: the caller adds the trial again, fresh."""


def unpackable(data: Dataset, cfg: TrainConfig, params: dict[str, Any] | None = None, *,
               device: torch.device | str = "cpu", model_source: ModelSource | None = None) -> str | None:
    """Why trials of this model cannot be packed (None when they can): built, stacked and run once."""
    try:
        Pack(data, device=device, model_source=model_source).add(0, cfg, params)
    except UnpackableError as exc:
        return str(exc)
    return None


def fit_packed(configs: list[TrainConfig], data: Dataset, *, device: torch.device | str = "cpu",
               validate: bool = True, model_source: ModelSource | None = None,
               params: list[dict[str, Any]] | None = None, stop_after: int | None = None,
               on_epoch: Callable[[int, EpochRecord], None] | None = None) -> list[FitResult]:
    """Train `configs` (one structure) as one pack to the end; slot i's result is `results[i]`. A diverged
    slot's result has the epochs before it; `fit`'s counterpart for `train` and tests."""
    pack = Pack(data, device=device, validate=validate, model_source=model_source, stop_after=stop_after)
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


__all__ = ["MAX_PACK", "Pack", "SlotOutcome", "UnpackableError", "fit_packed", "structure_key", "unpackable"]
