"""A sample as a model sees it: in the units the data's statistics were taken in (`unit`), then normalised per
channel or feature (`Normalize`). One copy for training, evaluation, the model check and a saved model."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from adamtune.data import Dataset


class Normalize(torch.nn.Module):
    """(x - mean) / std per channel (dim 1) for images and signals, per feature for vectors, with the training
    split's statistics. A module, so a saved model (`adamtune.load_model`) carries the same step with it."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, mean: Sequence[float], std: Sequence[float], sample_dims: int) -> None:
        super().__init__()
        view = (1, -1, *([1] * (sample_dims - 1)))
        self.register_buffer("mean", torch.tensor(mean).view(view))
        self.register_buffer("std", torch.tensor(std).view(view))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def normalizer(data: Dataset, device: torch.device) -> Callable[[torch.Tensor], torch.Tensor]:
    """The data's `Normalize` on `device`."""
    return Normalize(data.mean, data.std, len(data.shape)).to(device)


def unit(x: torch.Tensor, scale: float) -> torch.Tensor:
    """float32 in the units the statistics were taken in; never writes into `x` (float data is stored as is)."""
    return x.float().div_(scale) if x.dtype != torch.float32 else (x / scale if scale != 1 else x)
