"""Packed training: K trials of one model trained as one program, one epoch at a time.

Each slot is a whole trial: its own config (every setting may differ but the model: its width and activation
for a built-in model, padding.py; its batch size, ticks.py; its epochs), its own seed, batch order,
augmentation and dropout masks drawn from its own generators, its own Adam/AdamW state and schedule, early
stopping and checkpoint. The user's own model's trials also share what `structure_key` names, and a model
with BatchNorm its batch size. Every slot reads the whole training split each epoch, so the pack stays
epoch-aligned.

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

from adamtune.data import Dataset

from .. import rules
from ..checkpoint import Checkpoint
from ..config import TrainConfig
from ..losses import TaskLoss
from ..metrics import Scoring
from ..model_source import ModelSource
from ..rules import EpochRecord, Evaluation, FitResult
from .padding import Padding, padded_model, shapes_of, use_only
from .slot import (
    DROPOUT_STREAM,
    Slot,
    SlotOutcome,
    SlotRows,
    batch_table,
    driven_schedule,
    restore_slot,
    slot_hyper,
    slot_state,
    structure_key,
)
from .stacked import StackedModel, dropout_rates, dropout_shapes, probe
from .stacked_adam import StackedAdam
from .ticks import EpochPlan, may_mix, plan_epoch

CPU_PADDING = 2.0  # on a CPU a pack pads a built-in model's width at most 2x: padded units' arithmetic is paid there


class Pack:
    """Slots training together. `stop_after` (fit's) ends every slot after that many epochs;
    `checkpoint_every` seconds between a slot's checkpoints (0: every epoch; see `rules.checkpoint_due`);
    `width` the widest built-in model the pack will hold (its trials' widths are padded to it; default: its
    first trial's). How far a pack mixes follows the device unless asked: `max_padding`, how many times its
    width a trial may be padded to (CPU_PADDING on a CPU, where padded units cost arithmetic; any on a GPU,
    where a small model leaves it idle; None: any), and `mix_batches`, whether trials of different batch
    sizes share it (ticks.py; on a GPU only, unless asked)."""

    def __init__(self, data: Dataset, *, device: torch.device | str = "cpu", validate: bool = True,
                 model_source: ModelSource | None = None, stop_after: int | None = None,
                 checkpoint_every: float = 0.0, width: int | None = None,
                 max_padding: float | None | str = "device", mix_batches: bool | str = "device",
                 scoring: Scoring | None = None) -> None:
        self.data = data
        self.device = torch.device(device)
        self.validate = validate
        self.source = model_source
        self.stop_after = stop_after
        self.checkpoint_every = checkpoint_every
        self.train_split = rules.training_split(data, validate)
        self.normalize = rules.normalizer(data, self.device)
        self.task_loss = TaskLoss(data, self.device)
        self.scoring = scoring
        self.slots: list[Slot] = []
        self.model: StackedModel | None = None
        self.key: tuple | None = None
        self.noise_shapes: list[tuple[int, ...]] = []
        self.amp = self.device.type == "cuda"
        self.widest, self.width = width, width  # the widest it may be padded to; the width it is padded to
        by_device = CPU_PADDING if self.device.type == "cpu" else None
        self.max_padding: float | None = by_device if isinstance(max_padding, str) else max_padding
        self.mixes_batches = self.device.type != "cpu" if mix_batches == "device" else bool(mix_batches)

    # ---- slots -------------------------------------------------------------------------------------

    @property
    def user_model(self) -> bool:
        return self.source is not None and self.source.user

    def can_take(self, cfg: TrainConfig, params: dict[str, Any] | None = None) -> bool:
        """Whether trial `cfg` can join: its model's, it fits the pack's width, its batch size mixes."""
        if self.key is None or not self.slots:
            return True
        if structure_key(cfg, params, self.user_model) != self.key:
            return False
        if not self.user_model and not self._fits(cfg.width):
            return False
        sizes = [s.cfg.batch_size for s in self.slots] + [cfg.batch_size]
        return may_mix(sizes) if self.mixes_batches else len(set(sizes)) == 1

    def _fits(self, width: int) -> bool:
        assert self.width is not None
        return width <= self.width and (self.max_padding is None or width * self.max_padding >= self.width)

    def add(self, key: Hashable, cfg: TrainConfig, params: dict[str, Any] | None = None,
            checkpoint: Checkpoint | None = None) -> list[EpochRecord]:
        """Start trial `key` in a new slot (resuming from `checkpoint` when it holds one of this trial); returns
        the epochs restored from it, which the caller reports again, as `fit` does. Raises UnpackableError when
        the model cannot be stacked, ConfigError for an augmentation the data cannot take."""
        rules.check_augmentations(cfg, self.data)
        if not self.can_take(cfg, params):
            raise ValueError(f"trial {key!r} cannot join this pack (another model, a wider one or a batch size "
                             "that does not mix)")
        model = rules.seeded_model(cfg, self.data, self.source, params, self.device)  # exactly as fit's
        drop_gen = torch.Generator(device=self.device).manual_seed(cfg.seed + DROPOUT_STREAM)
        if self.model is None or not self.slots:
            self._start(model, cfg, params)
        assert self.model is not None
        padding = Padding(shapes_of(model), self.shapes, cfg.activation)
        row = self.model.rows if self.slots else 0
        if self.slots:
            self._grow()
        self.model.set_row(row, padding.embed(model.state_dict()))
        self.adam.reset(row)
        dummy, schedule = driven_schedule(cfg, math.ceil(len(self.train_split) / cfg.batch_size))
        slot = Slot(key, cfg, dict(params or {}), rules.batch_generator(cfg, self.device), drop_gen,
                    dropout_rates(model), rules.augmentation(cfg), dummy, schedule, checkpoint,
                    FitResult.begin(cfg, model, self.device), padding,
                    dropout_shapes(model, self._sample()) if padding.own != self.shapes else self.noise_shapes)
        self.slots.append(slot)
        self.adam.set_hyper(row, slot_hyper(slot))
        try:
            return self._resume(row, slot) if checkpoint is not None else []
        except _Restart:  # set aside (rules.set_aside): the slot starts again from epoch 0
            self.remove([key])
            return self.add(key, cfg, params, checkpoint)

    def _start(self, model: torch.nn.Module, cfg: TrainConfig, params: dict[str, Any] | None) -> None:
        """A new, empty pack takes the first trial's model: the user's as it is, a built-in one at the pack's
        width with every activation mixed (padding.py)."""
        if not self.user_model:
            self.width = max(self.widest or 0, cfg.width)
            if not self._fits(cfg.width):  # the widest it may take would pad this one too much
                self.width = cfg.width
            model = padded_model(cfg.model, self.data.shape, self.data.num_classes, self.width,
                                 cfg.depth).to(self.device)
        self.noise_shapes = probe(model, self._sample())
        self.model = StackedModel(model, 1, self.device)
        self.shapes = shapes_of(model)
        # bf16 autocast on CUDA, as fit; but not through BatchNorm under vmap, whose batched backward
        # wants its fp32 running statistics in the input's dtype (seen on an H200): such packs train in fp32.
        has_norm = any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())
        self.amp = self.device.type == "cuda" and not has_norm
        self.mixes_batches = self.mixes_batches and not has_norm
        self.key = structure_key(cfg, params, self.user_model)
        self.adam = StackedAdam(1, self.model.width, self.device)

    def _sample(self) -> torch.Tensor:
        """Two training samples as the model sees them: what probing a model runs on."""
        return self.normalize(rules.unit(self.train_split.images[:2].to(self.device), self.data.scale))

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
        state = slot.best_state if slot.best_state is not None else slot.padding.extract(self.model.row_state(row))
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
        n = len(self.train_split)
        model.train(True)
        activations = {s.cfg.activation for s in slots}
        use_only(model.skeleton, activations.pop() if len(activations) == 1 else None)
        rows = [SlotRows(s, self.train_split, self.data, self.normalize, self.noise_shapes, self.device)
                for s in slots]
        self.adam.read_uses()
        plan = self._plan(n)
        loss_sum = torch.zeros(k, device=self.device)
        hyper = self.adam.hyper
        # Rows are stacked a chunk at a time when every slot's chunk is the same (the usual case), else a tick.
        same_chunks = len({r.chunk for r in rows}) == 1
        span = rows[0].chunk if same_chunks else plan.tick
        for c in range(0, n, span):
            parts = [r.take(c, min(n, c + span)) for r in rows]
            xs, ys = torch.stack([p[0] for p in parts]), torch.stack([p[1] for p in parts])
            masks = [torch.stack([p[2][m] for p in parts]) for m in range(len(self.noise_shapes))]
            for i in range(0, ys.shape[1], plan.tick):
                t = (c + i) // plan.tick
                hyper[:, :2] = plan.values[t]
                x, y = xs[:, i:i + plan.tick], ys[:, i:i + plan.tick]
                loss_sum += self._step(x, y, [m[:, i:i + plan.tick] for m in masks], plan.rows[t], plan.stepping[t])
        train_losses = [total / n for total in loss_sum.tolist()]  # one device sync per epoch
        vals = self._evaluate() if self.validate else [None] * k
        seconds = (time.perf_counter() - start) / k  # each slot's share of the pack's epoch
        return [self._end_epoch(row, s, train_losses[row], vals[row], seconds) for row, s in enumerate(slots)]

    def _plan(self, n: int) -> EpochPlan:
        """The epoch's ticks, with each slot's (lr, beta1) per step: a per-batch schedule's table, else the
        values its schedule holds for the whole epoch."""
        step_values = []
        for row, s in enumerate(self.slots):
            steps = math.ceil(n / s.cfg.batch_size)
            table = batch_table(s, steps)
            step_values.append(torch.tensor(table, dtype=torch.float64) if table is not None else
                               self.adam.hyper[row, :2].cpu().expand(steps, 2))
        return plan_epoch([s.cfg.batch_size for s in self.slots], n, step_values, self.device)

    def _step(self, x: torch.Tensor, y: torch.Tensor, noises: list[torch.Tensor], batch_rows: torch.Tensor,
              stepping: torch.Tensor | None) -> torch.Tensor:
        """One tick: every slot's gradient of its rows' share of its batch's mean loss, then the optimizer
        step of the slots whose batch ends here (`stepping`; None: all). Returns each slot's summed loss (K,)."""
        assert self.model is not None
        model = self.model
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            logits = model.forward(x, noises)
        first = self.slots[0].cfg  # the loss kind and its weighting are the pack's (structure_key)
        smoothing = self.adam.column("smoothing").float().unsqueeze(1) if self.adam.uses["smoothing"] else 0.0
        delta = self.adam.column("delta").float().unsqueeze(1) if first.loss == "huber" else 1.0
        per_row = self.task_loss.per_sample(logits, y, loss=first.loss, delta=delta, smoothing=smoothing,
                                            weighted=float(first.class_weights))
        summed = per_row.sum(1)
        with warnings.catch_warnings():
            # Gradients accumulate into column slices of the flat gradient (see StackedModel._views): not
            # dense, which PyTorch notes once; they are exact (the pack-vs-alone test holds them to it).
            warnings.filterwarnings("ignore", message=".*gradient layout contract")
            (summed / batch_rows).sum().backward()
        if stepping is None:
            self.adam.step(model.flat, model.grad, model.decay)
            model.grad.zero_()
        else:
            self.adam.step(model.flat, model.grad, model.decay, stepping)
            model.grad.masked_fill_(stepping > 0, 0)
        return summed.detach()

    @torch.no_grad()
    def _evaluate(self) -> list[Evaluation]:
        """evaluate() for every slot at once: the task's plain loss, accuracy and asked metrics on validation."""
        assert self.model is not None
        split, k = self.data.val, len(self.slots)
        classifies = self.data.task == "classification"
        keep = self.scoring is not None and self.scoring.needs_predictions
        self.model.train(False)
        loss_sum = torch.zeros(k, device=self.device, dtype=torch.float64)
        correct = torch.zeros(k, device=self.device, dtype=torch.int64)
        outputs = []
        for x, y in rules.eval_batches(split, self.data, self.device):
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                logits = self.model.forward(x, shared_input=True)
            loss_sum += self.task_loss.plain(logits, y.expand(k, *y.shape)).sum(1).double()
            if classifies:
                correct += (logits.argmax(-1) == y).sum(1)
            if keep:
                outputs.append(logits.float())
        stacked = torch.cat(outputs, dim=1) if keep else None
        n = len(split)
        return [Evaluation(loss / n, c / n if classifies else None,
                           rules.scored(self.scoring, self.task_loss, stacked[row], split.labels)
                           if stacked is not None else {})
                for row, (loss, c) in enumerate(zip(loss_sum.tolist(), correct.tolist()))]

    def _end_epoch(self, row: int, s: Slot, train_loss: float, scores: Evaluation | None,
                   seconds: float) -> SlotOutcome:
        result, epoch = s.result, len(s.result.history)
        val_loss = scores.loss if scores is not None else None
        if error := rules.divergence(epoch, train_loss, val_loss):
            return SlotOutcome(s.key, None, True, error)
        result.history.append(EpochRecord(epoch, train_loss, val_loss, scores.accuracy if scores else None,
                                          s.schedule.lr, seconds, metrics=scores.metrics if scores else {}))
        s.schedule.step(val_loss if self.validate else train_loss)
        self.adam.set_hyper(row, slot_hyper(s))
        if self.validate:
            s.since_best = rules.track_best(result, s.since_best)
            if s.since_best == 0:
                assert self.model is not None
                s.best_state = s.padding.extract(self.model.row_state(row))
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
