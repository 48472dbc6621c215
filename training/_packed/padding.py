"""Built-in models of different widths and activations in one pack: each slot's model sits in the top-left
corner of a model built at the pack's width, the rest of its rows zero.

Why zeros are exact: every built-in activation maps 0 to 0, so a padded unit's output is 0 whatever its
slot; the next layer's weights on that unit are 0 too, so its gradient is 0, and Adam (and weight decay) keep
a zero weight with a zero gradient at 0 for ever. A slot's real units therefore see exactly what they would
see alone. BatchNorm's padded channels (weight and bias 0) normalise to 0 as well. Each slot's activation is
its own: `MixedActivation` applies the one its row's `code` buffer names.

Checkpoints hold a slot's own (unpadded) shapes, so a retried trial resumes in a pack of any width.
"""

from __future__ import annotations

import torch
from torch import nn

from ..models import ACTIVATIONS, build_model

ACTIVATION_CODES = {name: float(i) for i, name in enumerate(ACTIVATIONS)}


class MixedActivation(nn.Module):
    """The activation its `code` buffer names (stacked per slot: each row its own); `only`, when every slot
    has the same one, skips the others (the pack sets it each epoch)."""

    def __init__(self) -> None:
        super().__init__()
        self.code: torch.Tensor
        self.register_buffer("code", torch.zeros(()))
        self.choices = nn.ModuleList(cls() for cls in ACTIVATIONS.values())
        self.only: int | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.only is not None:
            return self.choices[self.only](x)
        out = self.choices[0](x)
        for i, act in enumerate(self.choices[1:], start=1):  # torch.where: each branch's gradient only where chosen
            out = torch.where(self.code == i, act(x), out)
        return out


def use_only(model: nn.Module, activation: str | None) -> None:
    """Every MixedActivation of `model` applies `activation` alone (None: each slot's own)."""
    for module in model.modules():
        if isinstance(module, MixedActivation):
            module.only = None if activation is None else int(ACTIVATION_CODES[activation])


def padded_model(name: str, shape: tuple[int, ...], num_classes: int, width: int, depth: int = 1) -> nn.Module:
    """The pack's skeleton: built-in model `name` at `width`, every activation a MixedActivation."""
    model = build_model(name, shape, num_classes, width, "relu", 0.0, depth)
    for parent in list(model.modules()):
        for child_name, child in list(parent.named_children()):
            if type(child) in ACTIVATIONS.values():
                setattr(parent, child_name, MixedActivation())
    return model


class Padding:
    """One slot's shapes inside the pack's: `embed` puts its state in the corner of zeros (and its activation
    code in place), `extract` cuts it back out. Names the pack has that the slot lacks are the codes."""

    def __init__(self, own: dict[str, tuple[int, ...]], padded: dict[str, tuple[int, ...]], activation: str) -> None:
        extra = set(own) - set(padded)
        if extra or any(len(own[k]) != len(padded[k]) or any(a > b for a, b in zip(own[k], padded[k])) for k in own):
            raise ValueError(f"a model of shapes {own} does not fit in one of {padded}")
        self.own, self.padded = own, padded
        self.code = ACTIVATION_CODES.get(activation, 0.0)  # the user's model has no MixedActivation

    def embed(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {name: _pad(state[name], shape) if name in self.own else torch.tensor(self.code)
                for name, shape in self.padded.items()}

    def extract(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {name: state[name][_corner(shape)].clone() for name, shape in self.own.items()}

    def embed_flat(self, flat: torch.Tensor, names: list[str]) -> torch.Tensor:
        """A flat vector in the slot's own layout (`names`' parameters in order) laid out in the pack's."""
        own = _unflatten(flat, names, self.own)
        return torch.cat([_pad(own[name], self.padded[name]).reshape(-1) for name in names])

    def extract_flat(self, flat: torch.Tensor, names: list[str]) -> torch.Tensor:
        padded = _unflatten(flat, names, self.padded)
        return torch.cat([padded[name][_corner(self.own[name])].reshape(-1) for name in names])


def shapes_of(model: nn.Module) -> dict[str, tuple[int, ...]]:
    return {name: tuple(t.shape) for name, t in model.state_dict().items()}


def _corner(shape: torch.Size | tuple[int, ...]) -> tuple[slice, ...]:
    return tuple(slice(0, n) for n in shape)


def _unflatten(flat: torch.Tensor, names: list[str], shapes: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    out, start = {}, 0
    for name in names:
        n = int(torch.Size(shapes[name]).numel())
        out[name] = flat[start:start + n].view(shapes[name])
        start += n
    return out


def _pad(tensor: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    if tuple(tensor.shape) == tuple(shape):
        return tensor
    full = torch.zeros(shape, dtype=tensor.dtype, device=tensor.device)
    full[_corner(tensor.shape)] = tensor
    return full
