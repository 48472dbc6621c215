"""A model of your own: adamtune calls build(input_shape, num_classes, params, **kwargs) once per trial.

`input_shape` is one sample's shape, here (channels, length); `params` holds the trial's values by name:
the ones this study adds to the search space (`channels`, `layers`) next to the training settings
(`dropout`, `lr`, ...); `kernel_size` comes from the study's `model:` mapping.
"""

from __future__ import annotations

from torch import nn


def build(input_shape: tuple[int, ...], num_classes: int, params: dict, *, kernel_size: int = 5) -> nn.Module:
    channels, length = input_shape
    width = params.get("channels", 16)
    layers: list[nn.Module] = []
    for _ in range(params.get("layers", 2)):
        layers += [nn.Conv1d(channels, width, kernel_size, padding=kernel_size // 2), nn.BatchNorm1d(width),
                   nn.ReLU(), nn.MaxPool1d(2)]
        channels = width
    return nn.Sequential(*layers, nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Dropout(params.get("dropout", 0.0)),
                         nn.Linear(width, num_classes))
