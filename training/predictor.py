"""A trained model that takes inputs in the units its data had and applies the training's preprocessing itself
(`rules.unit`, then `rules.Normalize`), so a saved model is used without adamtune's data pipeline."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from adamtune.errors import InputError

from . import rules


class Predictor(torch.nn.Module):
    """`model` behind the training's preprocessing: `forward(x)` takes a batch (N, *input_shape), or one
    sample, in raw units (uint8 images 0..255, or 0..16 for scikit-learn's digits; numbers as the training
    arrays held them; grey images may drop their channel) and returns the model's logits (N, classes).
    `classes`, `input_shape`, `task` and `card` (the whole model.json) say what it is."""

    def __init__(self, model: torch.nn.Module, *, input_shape: Sequence[int], scale: float, mean: Sequence[float],
                 std: Sequence[float], classes: Sequence[str], task: str, card: dict[str, Any]) -> None:
        super().__init__()
        self.model = model
        self.normalize = rules.Normalize(mean, std, len(input_shape))
        self.input_shape = tuple(input_shape)
        self.scale = scale
        self.classes = list(classes)
        self.task = task
        self.card = card

    def forward(self, x: Any) -> torch.Tensor:
        return self.model(self.normalize(rules.unit(self.batched(x), self.scale)))

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
    def predict(self, x: Any, batch: int = rules.EVAL_BATCH) -> tuple[list[str], torch.Tensor]:
        """Each sample's class name and its probability (softmax of the logits), a batch at a time."""
        x = self.batched(x)
        was_training = self.training
        self.eval()
        try:
            probabilities = torch.cat([self(x[i:i + batch]).float().softmax(1) for i in range(0, len(x), batch)])
        finally:
            self.train(was_training)
        confidence, index = probabilities.max(1)
        return [self.classes[i] for i in index.tolist()], confidence.cpu()
