"""torch.optim.Adam and AdamW for K stacked models at once, each slot with its own hyperparameters.

The single-tensor algorithm PyTorch documents, on the (K, P) weights of a StackedModel: per-slot lr, betas,
eps, weight decay (L2 for Adam, decoupled for AdamW, on the weights `rules.decays` names, as `fit`'s),
amsgrad, and gradient clipping by each slot's own norm. A slot's numbers never mix with
another's: every operation is row-wise.
"""

from __future__ import annotations

import torch

HYPER = ("lr", "beta1", "beta2", "eps", "l2", "decoupled", "amsgrad", "clip", "smoothing", "delta")
COLUMN = {name: i for i, name in enumerate(HYPER)}
OPTIONAL = ("l2", "decoupled", "amsgrad", "clip", "smoothing")  # terms skipped when no slot uses them
MOMENTS = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")


class StackedAdam:
    """Moments, step counts and hyperparameters (float64, one row per slot: `hyper[:, COLUMN[name]]`)."""

    def __init__(self, rows: int, width: int, device: torch.device) -> None:
        self.moments = {name: torch.zeros(rows, width, device=device) for name in MOMENTS}
        self.hyper = torch.zeros(rows, len(HYPER), dtype=torch.float64, device=device)
        self.steps = torch.zeros(rows, dtype=torch.float64, device=device)
        self.uses: dict[str, bool] = {}

    def select(self, index: torch.Tensor) -> None:
        """Keep (and repeat) these rows, as the StackedModel does."""
        self.moments = {name: t.index_select(0, index) for name, t in self.moments.items()}
        self.hyper, self.steps = self.hyper.index_select(0, index), self.steps.index_select(0, index)

    def reset(self, row: int) -> None:
        for t in self.moments.values():
            t[row] = 0
        self.steps[row] = 0

    def set_hyper(self, row: int, values: dict[str, float]) -> None:
        self.hyper[row] = torch.tensor([values[k] for k in HYPER], dtype=torch.float64)

    def read_uses(self) -> None:
        """Which optional terms any slot uses; read once an epoch (a per-step check would sync a GPU)."""
        rows = self.hyper.tolist()
        self.uses = {name: any(row[COLUMN[name]] > 0 for row in rows) for name in OPTIONAL}

    def column(self, name: str) -> torch.Tensor:
        return self.hyper[:, COLUMN[name]]

    def row_state(self, row: int) -> dict:
        return {**{name: t[row].clone() for name, t in self.moments.items()}, "step": float(self.steps[row])}

    def load_row(self, row: int, state: dict) -> None:
        for name, t in self.moments.items():
            t[row] = state[name].to(t.device)
        self.steps[row] = state["step"]

    @torch.no_grad()
    def step(self, param: torch.Tensor, grad: torch.Tensor, decay: torch.Tensor,
             stepping: torch.Tensor | None = None) -> None:
        """One step of every row of `param` (K, P) with `grad` (K, P), or only of the rows `stepping` (K, 1)
        marks with 1 (the slots whose batch ends now): every other row's weights, moments, step count and
        gradient (still accumulating) stay exactly as they are. `decay` (1, P) marks decayed weights."""
        col = {name: self.hyper[:, i].unsqueeze(1) for name, i in COLUMN.items()}
        on = stepping if stepping is not None else 1.0
        if self.uses["clip"]:
            clip = col["clip"].float()
            norm = grad.norm(dim=1, keepdim=True)
            scale = torch.where(clip > 0, (clip / (norm + 1e-6)).clamp(max=1.0), torch.ones_like(clip))
            grad.mul_(scale if stepping is None else torch.where(stepping > 0, scale, torch.ones_like(scale)))
        self.steps += on if stepping is None else stepping.squeeze(1).double()
        step = self.steps.unsqueeze(1).clamp(min=1)  # a row yet to take its first step: no 0/0 below
        lr, beta1, beta2, eps = col["lr"] * on, col["beta1"], col["beta2"], col["eps"]
        if self.uses["decoupled"]:
            param.mul_(1 - (lr * col["decoupled"]).float() * decay)
        if self.uses["l2"]:
            grad.add_(param * (col["l2"] * on).float() * decay)
        exp_avg, exp_avg_sq, max_exp_avg_sq = (self.moments[name] for name in MOMENTS)
        exp_avg.lerp_(grad, ((1 - beta1) * on).float())
        exp_avg_sq.mul_(beta2.float() if stepping is None else torch.where(stepping > 0, beta2, 1.0).float())
        exp_avg_sq.addcmul_(grad, grad * ((1 - beta2) * on).float())
        bias1 = 1 - beta1 ** step
        bias2_sqrt = (1 - beta2 ** step).sqrt()
        second = exp_avg_sq
        if self.uses["amsgrad"]:
            if stepping is None:
                torch.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
            else:
                max_exp_avg_sq.copy_(torch.where(stepping > 0, torch.maximum(max_exp_avg_sq, exp_avg_sq),
                                                 max_exp_avg_sq))
            second = torch.where(col["amsgrad"] > 0, max_exp_avg_sq, exp_avg_sq)
        denom = (second.sqrt() / bias2_sqrt.float()).add_(eps.float())
        # A row that does not step has lr 0 here: its update is exp_avg / inf, exactly 0.
        param.addcdiv_(exp_avg, denom * (bias1 / lr).float(), value=-1.0)
