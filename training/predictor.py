"""A trained model that takes inputs in the units its data had, applies the training's preprocessing itself
(`inputs.unit`, then `inputs.Normalize`) and gives what its outputs predict (`losses.predictions`), so a saved model
is used without adamtune's data pipeline."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from adamtune.errors import InputError

from . import rules
from .inputs import Normalize, unit
from .losses import predictions
from .metrics import LABEL_THRESHOLD


class Predictor(torch.nn.Module):
    """`model` behind the training's preprocessing: `forward(x)` takes a batch (N, *input_shape), or one
    sample, in raw units (uint8 images 0..255, or 0..16 for scikit-learn's digits; numbers as the training
    arrays held them; grey images may drop their channel) and returns what the model predicts, (N, outputs):
    class probabilities, regression values in the targets' units, or label probabilities, by `task`.
    `classes` names the outputs (classes, targets or labels); `card` is the whole model.json."""

    target_mean: torch.Tensor | None
    target_std: torch.Tensor | None

    def __init__(self, model: torch.nn.Module, *, input_shape: Sequence[int], scale: float, mean: Sequence[float],
                 std: Sequence[float], classes: Sequence[str], task: str, card: dict[str, Any],
                 target_mean: Sequence[float] | None = None, target_std: Sequence[float] | None = None) -> None:
        super().__init__()
        self.model = model
        self.normalize = Normalize(mean, std, len(input_shape))
        self.input_shape = tuple(input_shape)
        self.scale = scale
        self.classes = list(classes)
        self.task = task
        self.card = card
        for name, values in (("target_mean", target_mean), ("target_std", target_std)):  # regression's units
            self.register_buffer(name, None if values is None else torch.tensor(values, dtype=torch.float32))

    def forward(self, x: Any) -> torch.Tensor:
        outputs = self.model(self.normalize(unit(self.batched(x), self.scale)))
        return predictions(self.task, outputs, self.target_mean, self.target_std)

    def batched(self, x: Any) -> torch.Tensor:
        """`x` as a batch (N, *input_shape) on the model's device: one sample gets its batch dimension, grey
        images (N, H, W) their channel; any other shape is an InputError."""
        x = torch.as_tensor(x, device=self.normalize.mean.device)
        shape, grey = self.input_shape, len(self.input_shape) == 3 and self.input_shape[0] == 1
        if tuple(x.shape) == shape or (grey and tuple(x.shape) == shape[1:]):
            x = x.reshape(1, *shape)
        elif grey and x.ndim == 3 and tuple(x.shape[1:]) == shape[1:]:
            x = x.unsqueeze(1)
        if tuple(x.shape[1:]) != shape:
            raise InputError("model input", "x", f"has shape {tuple(x.shape)}; the model takes a batch "
                             f"(N, {', '.join(map(str, shape))}) or one sample {shape}")
        return x

    @torch.no_grad()
    def predict(self, x: Any, batch: int = rules.EVAL_BATCH) -> torch.Tensor:
        """`forward` in eval mode without gradients, `batch` samples at a time (on the CPU)."""
        x = self.batched(x)
        was_training = self.training
        self.eval()
        try:
            return torch.cat([self(x[i:i + batch]).float().cpu() for i in range(0, len(x), batch)])
        finally:
            self.train(was_training)

    def answers(self, predicted: torch.Tensor) -> list:
        """Each row of `predict`'s output in words: the most likely class's name (classification), the names of
        the labels at or above LABEL_THRESHOLD (multilabel), or {target: value} (regression)."""
        if self.task == "classification":
            return [self.classes[i] for i in predicted.argmax(1).tolist()]
        if self.task == "multilabel":
            return [[c for c, on in zip(self.classes, row) if on] for row in (predicted >= LABEL_THRESHOLD).tolist()]
        return [dict(zip(self.classes, row)) for row in predicted.tolist()]
