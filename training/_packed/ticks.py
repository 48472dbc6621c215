"""Slots of different batch sizes in one pack: the pack steps through the epoch a tick of rows at a time, the
greatest common divisor of its batch sizes, and each slot adds up its gradient over the ticks of its own batch
and takes its optimizer step when that batch ends. A slot's batches are its own (every slot reads all n rows
of the epoch in its own order), so its steps are those it takes alone; only the order in which a batch's
per-row gradients are summed differs (float rounding, as batched kernels already round).

BatchNorm normalises by the rows it sees at once, so a model with it keeps one batch size per pack. On a CPU
packs keep one batch size too: there every tick's optimizer step over all K rows is paid in arithmetic, and
packs grouped by batch size measured as fast or faster (the choice is `Pack`'s)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

MAX_TICKS_PER_BATCH = 16  # a batch is summed over at most this many ticks: beyond it a pack spends more in steps


def tick_size(batch_sizes: list[int]) -> int:
    return math.gcd(*batch_sizes)


def may_mix(batch_sizes: list[int]) -> bool:
    """Whether these batch sizes can share a pack: the largest batch takes at most MAX_TICKS_PER_BATCH ticks."""
    return max(batch_sizes) // tick_size(batch_sizes) <= MAX_TICKS_PER_BATCH


@dataclass
class EpochPlan:
    """One epoch's ticks: rows [t * tick, min(n, (t + 1) * tick)) at tick t; `rows[t]` each slot's batch size
    for the batch tick t is in (its last batch may be short), `values[t]` each slot's (lr, beta1) for that
    batch, and `stepping[t]` (K, 1): 1 for the slots whose batch ends at tick t, 0 for the
    others (None: all end there)."""

    tick: int
    n: int
    rows: torch.Tensor  # (ticks, K)
    values: torch.Tensor  # (ticks, K, 2) float64
    stepping: list[torch.Tensor | None]

    @property
    def ticks(self) -> int:
        return math.ceil(self.n / self.tick)


def plan_epoch(batch_sizes: list[int], n: int, step_values: list[torch.Tensor], device: torch.device) -> EpochPlan:
    """`step_values[k]` is slot k's (lr, beta1) for each of its ceil(n / batch) steps this epoch."""
    tick = tick_size(batch_sizes)
    ticks = math.ceil(n / tick)
    start = torch.arange(ticks) * tick
    end = torch.clamp(start + tick, max=n)
    rows, values, ends = [], [], []
    for size, per_step in zip(batch_sizes, step_values):
        batch = start // size
        rows.append(torch.clamp(n - batch * size, max=size))
        values.append(per_step[batch])
        ends.append((end % size == 0) | (end == n))
    every = torch.stack(ends, 1)  # (ticks, K)
    patterns: dict[tuple[bool, ...], torch.Tensor | None] = {}
    stepping = []
    for row in every.tolist():
        key = tuple(row)
        if key not in patterns:
            patterns[key] = None if all(key) else torch.tensor(key, dtype=torch.float32, device=device).unsqueeze(1)
        stepping.append(patterns[key])
    return EpochPlan(tick, n, torch.stack(rows, 1).to(device, torch.float32), torch.stack(values, 1).to(device),
                     stepping)
