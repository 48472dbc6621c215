"""What a trial minimises, per task, and how its outputs become predictions, in one copy that `fit` and the
packed engine both call (so a packed trial's loss is its loss alone).

- classification: cross-entropy over logits, with label smoothing, optionally weighted by balanced class
  weights (scikit-learn's `compute_class_weight("balanced")` on the training split);
- regression: MSE, L1 or Huber on targets standardised with the training split's mean and deviation (the
  model predicts standardised values; predictions are turned back into the user's units);
- multilabel: binary cross-entropy over one logit per label, optionally with positive weights (negatives /
  positives per label in the training split, as `BCEWithLogitsLoss`'s documentation suggests).

A setting may be a number (one trial) or a (K, 1) column (one per slot of a pack): every formula broadcasts
over leading dimensions, and a per-sample loss has the outputs' shape without the last dimension.
`plain` is the task's unweighted, unsmoothed loss, the same whatever a trial trains with, so validation
losses compare across trials (the Huber trial's and the L1 trial's are both judged by squared error).
"""

from __future__ import annotations

from functools import cached_property

import torch
import torch.nn.functional as F

from .config import LOSSES

Setting = float | torch.Tensor  # one trial's value, or a (K, 1) column of a pack's


class TaskLoss:
    """The loss of `data`'s task with the statistics it needs from the training split, on `device`."""

    def __init__(self, data, device: torch.device) -> None:
        self.task, self._data, self._device = data.task, data, device
        self.mean = self.std = None
        if self.task == "regression":
            self.mean = torch.tensor(data.target_mean, dtype=torch.float32, device=device)
            self.std = torch.tensor(data.target_std, dtype=torch.float32, device=device)

    @cached_property
    def class_weight(self) -> torch.Tensor | None:
        """Balanced class weights, computed the first time a trial asks for them (most never do)."""
        if self.task != "classification":
            return None
        return balanced_class_weights(self._data.train.labels, self._data.num_classes).to(self._device)

    @cached_property
    def pos_weight(self) -> torch.Tensor | None:
        """Positive weights per label, computed the first time a trial asks for them."""
        return positive_weights(self._data.train.labels).to(self._device) if self.task == "multilabel" else None

    def per_sample(self, out: torch.Tensor, y: torch.Tensor, *, loss: str, delta: Setting = 1.0,
                   smoothing: Setting = 0.0, weighted: Setting = 0.0) -> torch.Tensor:
        """The training loss of each sample (outputs `out` (..., C), targets `y`); `weighted` is 0 or 1."""
        out = out.float()
        if self.task == "classification":
            logp = F.log_softmax(out, dim=-1)
            nll = -logp.gather(-1, y.unsqueeze(-1)).squeeze(-1)
            per = nll if _zero(smoothing) else (1 - smoothing) * nll + smoothing * (-logp.mean(-1))
            assert self.class_weight is not None
            return per if _zero(weighted) else per * (1 + weighted * (self.class_weight[y] - 1))
        if self.task == "regression":
            diff = out - self.standardise(y)
            if loss == "mse":
                return diff.square().mean(-1)
            if loss == "l1":
                return diff.abs().mean(-1)
            if isinstance(delta, torch.Tensor):
                delta = delta.unsqueeze(-1)  # (K, 1) -> (K, 1, 1): per slot, over samples and targets
            size = diff.abs()
            return torch.where(size < delta, 0.5 * size.square(), delta * (size - 0.5 * delta)).mean(-1)
        assert self.pos_weight is not None
        if isinstance(weighted, torch.Tensor):
            weighted = weighted.unsqueeze(-1)
        positive = 1 + weighted * (self.pos_weight - 1) if not _zero(weighted) else 1.0
        return -(positive * y * F.logsigmoid(out) + (1 - y) * F.logsigmoid(-out)).mean(-1)

    def plain(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The task's plain loss of each sample: cross-entropy, squared error (standardised) or BCE."""
        return self.per_sample(out, y, loss=LOSSES[self.task][0])

    def standardise(self, y: torch.Tensor) -> torch.Tensor:
        assert self.mean is not None and self.std is not None
        return (y - self.mean) / self.std

    def predictions(self, out: torch.Tensor) -> torch.Tensor:
        """What metrics read: class probabilities, values in the user's units, or label probabilities."""
        return predictions(self.task, out, self.mean, self.std)


def predictions(task: str, out: torch.Tensor, mean: torch.Tensor | None = None,
                std: torch.Tensor | None = None) -> torch.Tensor:
    """A model's outputs as what they predict, the one copy metrics and a saved model (`Predictor`) read: class
    probabilities, values in the user's units (regression: `mean` and `std` of the training targets), or label
    probabilities."""
    out = out.float()
    if task == "classification":
        return out.softmax(-1)
    if task == "regression":
        assert mean is not None and std is not None
        return out * std + mean
    return out.sigmoid()


def balanced_class_weights(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """scikit-learn's balanced weights (n / (k * count)) of the classes present; an absent class gets 1."""
    import numpy as np
    from sklearn.utils.class_weight import compute_class_weight

    y = labels.cpu().numpy()
    present = np.unique(y)
    weights = torch.ones(num_classes, dtype=torch.float32)
    weights[torch.as_tensor(present)] = torch.as_tensor(
        compute_class_weight("balanced", classes=present, y=y), dtype=torch.float32)
    return weights


def positive_weights(labels: torch.Tensor) -> torch.Tensor:
    """Per label, negatives over positives in the training split (1 for a label never positive)."""
    positives = labels.float().sum(0)
    negatives = len(labels) - positives
    return torch.where(positives > 0, negatives / positives.clamp(min=1), torch.ones_like(positives)).float()


def _zero(value: Setting) -> bool:
    return not isinstance(value, torch.Tensor) and value == 0
