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
from collections.abc import Hashable, Iterable
from typing import Any

import torch
import torch.nn.functional as F

from adamtune.data import Dataset

from .. import rules
from ..checkpoint import Checkpoint
from ..config import TrainConfig
from ..model_source import ModelSource
from ..rules import EpochRecord, FitResult
from .slot import (
    DROPOUT_STREAM,
    Slot,
    SlotOutcome,
    batch_table,
    driven_schedule,
    dropout_masks,
    restore_slot,
    slot_hyper,
    slot_state,
    structure_key,
)
from .stacked import StackedModel, dropout_rates, probe
from .stacked_adam import StackedAdam


class Pack:
    """Slots training together. `epochs_limit` (fit's `stop_after`) ends every slot after that many epochs;
    `checkpoint_every` seconds between a slot's checkpoints (0: every epoch; see `rules.checkpoint_due`)."""

    def __init__(self, data: Dataset, *, device: torch.device | str = "cpu", validate: bool = True,
                 model_source: ModelSource | None = None, stop_after: int | None = None,
                 checkpoint_every: float = 0.0) -> None:
        self.data = data
        self.device = torch.device(device)
        self.validate = validate
        self.source = model_source
        self.stop_after = stop_after
        self.checkpoint_every = checkpoint_every
        self.train_split = rules.training_split(data, validate)
        self.normalize = rules.normalizer(data, self.device)
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
        rules.check_augmentations(cfg, self.data)
        if not self.can_take(cfg, params):
            raise ValueError(f"trial {key!r} has another structure than this pack's")
        model = rules.seeded_model(cfg, self.data, self.source, params, self.device)  # exactly as fit's
        drop_gen = torch.Generator(device=self.device).manual_seed(cfg.seed + DROPOUT_STREAM)
        if self.model is None or not self.slots:
            self._start(model, cfg, params)
        assert self.model is not None
        row = self.model.rows if self.slots else 0
        if self.slots:
            self._grow()
        self.model.set_row(row, model.state_dict())
        self.adam.reset(row)
        dummy, schedule = driven_schedule(cfg, math.ceil(len(self.train_split) / cfg.batch_size))
        slot = Slot(key, cfg, dict(params or {}), rules.batch_generator(cfg, self.device), drop_gen,
                    dropout_rates(model), rules.augmentation(cfg), dummy, schedule, checkpoint,
                    FitResult.begin(cfg, model, self.device))
        self.slots.append(slot)
        self.adam.set_hyper(row, slot_hyper(slot))
        try:
            return self._resume(row, slot) if checkpoint is not None else []
        except _Restart:  # set aside (rules.set_aside): the slot starts again from epoch 0
            self.remove([key])
            return self.add(key, cfg, params, checkpoint)

    def _start(self, model: torch.nn.Module, cfg: TrainConfig, params: dict[str, Any] | None) -> None:
        """A new, empty pack takes the first trial's structure."""
        x = self.normalize(rules.unit(self.train_split.images[:2].to(self.device), self.data.scale))
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
        chunk = rules.chunk_size(batch)
        model.train(True)
        orders = [torch.randperm(n, generator=s.gen, device=self.device) for s in slots]
        self.adam.read_uses()
        loss_sum = torch.zeros(k, device=self.device)
        spe = math.ceil(n / batch)
        tables = [batch_table(s, spe) for s in slots]
        hyper = self.adam.hyper
        schedule = hyper[:, :2].unsqueeze(1).repeat(1, spe, 1)  # (K, steps, lr/beta1)
        for row, table in enumerate(tables):
            if table is not None:
                schedule[row] = torch.tensor(table, dtype=torch.float64)
        for c in range(0, n, chunk):
            images, labels = [], []
            for s, order in zip(slots, orders):
                chunk_images, chunk_labels = rules.train_chunk(self.train_split, order[c:c + chunk], self.data, s.aug,
                                                         s.gen, self.normalize)
                images.append(chunk_images)
                labels.append(chunk_labels)
            xs, ys = torch.stack(images), torch.stack(labels)
            masks = dropout_masks(slots, self.noise_shapes, xs.shape[1], self.device)  # K draws a chunk, not a batch
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
        for x, y in rules.eval_batches(split, self.data, self.device):
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                logits = self.model.forward(x, shared_input=True)
            loss_sum += F.cross_entropy(logits.float().transpose(1, 2), y.expand(k, -1),
                                        reduction="none").sum(1).double()
            correct += (logits.argmax(-1) == y).sum(1)
        return [(loss / len(split), c / len(split)) for loss, c in zip(loss_sum.tolist(), correct.tolist())]

    def _end_epoch(self, row: int, s: Slot, train_loss: float, val_loss: float | None, val_acc: float | None,
                   seconds: float) -> SlotOutcome:
        result, epoch = s.result, len(s.result.history)
        if error := rules.divergence(epoch, train_loss, val_loss):
            return SlotOutcome(s.key, None, True, error)
        result.history.append(EpochRecord(epoch, train_loss, val_loss, val_acc, s.schedule.lr, seconds))
        s.schedule.step(val_loss if self.validate else train_loss)
        self.adam.set_hyper(row, slot_hyper(s))
        if self.validate:
            s.since_best = rules.track_best(result, s.since_best)
            if s.since_best == 0:
                assert self.model is not None
                s.best_state = self.model.row_state(row)
        result.stopped_early = rules.stops_early(s.cfg, s.since_best, self.validate)
        record = rules.close_epoch(result, s.cfg, s.since_best, self.validate, self.stop_after)
        if s.checkpoint is not None and not record.last and rules.checkpoint_due(s.saved_at, self.checkpoint_every):
            self._save(row, s)
        return SlotOutcome(s.key, record, record.last)

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
            self.adam.set_hyper(row, slot_hyper(s))
        except Exception as exc:  # wrong keys or shapes
            rules.set_aside(s.checkpoint, exc, " in a pack")
            raise _Restart() from None
        s.result.resumed_epochs = len(records)
        s.result.history.extend(records)
        s.saved_at = time.monotonic()
        if rules.stops_early(s.cfg, s.since_best, self.validate):
            s.result.stopped_early = True
        return records


class _Restart(Exception):
    """A checkpoint could not be restored: the caller adds the trial again, fresh."""
