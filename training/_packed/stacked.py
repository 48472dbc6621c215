"""K models of one structure as one program: weights stacked along a leading slot dimension and the forward
pass run under `torch.func.vmap`, so one batched matmul (or grouped convolution) trains every slot.

The weights live in one (K, P) tensor, so a pack's optimizer step is a dozen tensor operations whatever the
model. BatchNorm keeps per-slot running statistics (stacked buffers, updated in place under vmap, as each
model alone would). Dropout masks come from outside (`forward`'s `noises`): each slot draws its own with its
own generator, so a trial's masks depend neither on the pack's size nor on its slot.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.func import functional_call, vmap

from ..rules import decays


class UnpackableError(Exception):
    """The model cannot be stacked; the message says why (the worker then trains one trial at a time)."""


class _Noise(nn.Module):
    """Stands in for nn.Dropout in the shared skeleton: multiplies by the slot's mask, already scaled."""

    def __init__(self) -> None:
        super().__init__()
        self.noise: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if not self.training or self.noise is None else x * self.noise


class StackedModel:
    """The stacked weights, buffers and the skeleton that runs them. `models` fixes the structure (names,
    shapes); rows are set with `set_row` and moved with `keep_rows`."""

    def __init__(self, model: nn.Module, rows: int, device: torch.device) -> None:
        reason = unpackable_reason(model)
        if reason:
            raise UnpackableError(reason)
        self.device = device
        self.skeleton = copy.deepcopy(model).to(device)
        self.noise_modules: list[_Noise] = _swap_dropouts(self.skeleton)
        self.shapes = {name: tuple(p.shape) for name, p in model.named_parameters()}
        self.sizes = {name: math.prod(shape) for name, shape in self.shapes.items()}
        self.decay = torch.cat([torch.full((n,), float(decays(self.shapes[name])))
                                for name, n in self.sizes.items()]).to(device).view(1, -1)  # 1: decayed
        self.width = sum(self.sizes.values())
        self.flat = torch.zeros(rows, self.width, device=device)
        self.grad = torch.zeros_like(self.flat)
        self.buffers = {name: torch.stack([b.detach().to(device)] * rows) for name, b in model.named_buffers()}
        self.has_conv = any(isinstance(m, nn.modules.conv._ConvNd) for m in model.modules())
        self._views()

    @property
    def rows(self) -> int:
        return self.flat.shape[0]

    def _views(self) -> None:
        """Per-parameter leaves sharing the flat tensor's storage, with gradients accumulating in place into
        the flat gradient: the optimizer then steps one tensor, not one per parameter."""
        self.params: dict[str, torch.Tensor] = {}
        start = 0
        for name, n in self.sizes.items():
            shape = (self.rows, *self.shapes[name])
            leaf = self.flat[:, start:start + n].view(shape).detach().requires_grad_()
            leaf.grad = self.grad[:, start:start + n].view(shape)
            self.params[name] = leaf
            start += n

    def set_row(self, row: int, state: dict[str, torch.Tensor]) -> None:
        """Put one model's state (a state_dict) in `row`."""
        with torch.no_grad():
            self.flat[row] = torch.cat([state[name].detach().to(self.device, torch.float32).reshape(-1)
                                        for name in self.sizes])
            for name, buf in self.buffers.items():
                buf[row] = state[name].to(self.device)

    def row_state(self, row: int) -> dict[str, torch.Tensor]:
        """One model's state_dict (copies), as `load_state_dict` of the model takes it."""
        out: dict[str, torch.Tensor] = {}
        start = 0
        for name, n in self.sizes.items():
            out[name] = self.flat[row, start:start + n].detach().clone().view(self.shapes[name])
            start += n
        out.update((name, buf[row].clone()) for name, buf in self.buffers.items())
        return out

    def keep_rows(self, rows: Sequence[int]) -> None:
        """Drop every other row (ended slots that nothing refills): the pack gets smaller, not idle."""
        index = torch.tensor(list(rows), device=self.device, dtype=torch.long)
        self.flat = self.flat.index_select(0, index)
        self.grad = torch.zeros_like(self.flat)
        self.buffers = {name: buf.index_select(0, index) for name, buf in self.buffers.items()}
        self._views()

    def forward(self, x: torch.Tensor, noises: Sequence[torch.Tensor] = (), shared_input: bool = False
                ) -> torch.Tensor:
        """Logits (K, B, classes) of every row on its own batch x (K, B, ...), or on one batch (B, ...)
        with `shared_input`; `noises` are the dropout masks, one (K, B, ...) per dropout module."""

        if self.rows == 1 and self.has_conv:
            return self._forward_as_two(x, noises, shared_input)
        return self._forward(self.params, self.buffers, x, tuple(noises), shared_input)

    def _forward_as_two(self, x: torch.Tensor, noises: Sequence[torch.Tensor], shared_input: bool) -> torch.Tensor:
        """One row run as two (the second a detached copy, its output dropped): oneDNN computes a single
        convolution's weight gradient in another order than a grouped one's (a 1-channel first layer, seen on
        an AVX-512 CPU: 6e-3 apart after 3 epochs), so a trial alone would not train as it trains in a pack."""
        params = {name: torch.cat([p, p.detach()]) for name, p in self.params.items()}
        buffers = {name: torch.cat([b, b]) for name, b in self.buffers.items()}
        xs = x if shared_input else torch.cat([x, x])
        out = self._forward(params, buffers, xs, tuple(torch.cat([m, m]) for m in noises), shared_input)
        with torch.no_grad():
            for name, b in self.buffers.items():  # BatchNorm's running statistics, updated in the copy
                b.copy_(buffers[name][:1])
        return out[:1]

    def _forward(self, params, buffers, x, noises, shared_input: bool) -> torch.Tensor:
        def one(params, buffers, xs, masks):
            for module, mask in zip(self.noise_modules, masks):
                module.noise = mask
            try:
                return functional_call(self.skeleton, (params, buffers), (xs,))
            finally:
                for module in self.noise_modules:
                    module.noise = None

        return vmap(one, in_dims=(0, 0, None if shared_input else 0, 0), randomness="error")(
            params, buffers, x, noises)

    def train(self, mode: bool = True) -> None:
        self.skeleton.train(mode)


def _swap_dropouts(model: nn.Module) -> list[_Noise]:
    """Replace each nn.Dropout by a _Noise, in forward order of registration; returns them."""
    swapped = []
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Dropout:
                noise = _Noise()
                setattr(parent, name, noise)
                swapped.append(noise)
    return swapped


def dropout_rates(model: nn.Module) -> list[float]:
    """Each nn.Dropout's rate, in the order `_swap_dropouts` replaces them."""
    return [child.p for parent in model.modules() for _, child in parent.named_children() if type(child) is nn.Dropout]


def unpackable_reason(model: nn.Module) -> str | None:
    """Why `model` cannot be stacked, from what it holds; None when nothing stands in the way. What only a
    forward pass shows (data-dependent control flow, a random op) is caught by `probe`."""
    for name, module in model.named_modules():
        if isinstance(module, nn.modules.dropout._DropoutNd) and type(module) is not nn.Dropout:
            return f"{name} is a {type(module).__name__}; only nn.Dropout masks can be drawn per trial"
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.momentum is None:
            return f"{name} is a {type(module).__name__} with momentum=None (a cumulative average)"
    if any(p.dtype != torch.float32 for p in model.parameters()):
        return "its parameters are not all float32"
    if not any(True for _ in model.parameters()):
        return "it has no parameters"
    return None


@torch.no_grad()
def dropout_shapes(model: nn.Module, x: torch.Tensor) -> list[tuple[int, ...]]:
    """The shape of one sample at each nn.Dropout of `model` (for its masks), from an eval-mode pass on `x`."""
    shapes: list[tuple[int, ...]] = []
    hooks = [m.register_forward_pre_hook(lambda _m, args: shapes.append(tuple(args[0].shape[1:])))
             for parent in model.modules() for _, m in parent.named_children() if type(m) is nn.Dropout]
    training = model.training
    model.eval()
    try:
        model(x)
    finally:
        model.train(training)
        for hook in hooks:
            hook.remove()
    return shapes


@torch.no_grad()
def probe(model: nn.Module, x: torch.Tensor) -> list[tuple[int, ...]]:
    """Run `model` stacked twice on the sample batch `x` (B, ...): raises UnpackableError with the reason
    when vmap cannot run it or its stacked output is not the model's own; returns `dropout_shapes`."""
    shapes = dropout_shapes(model, x)
    model.eval()
    expected = model(x)
    stacked = StackedModel(model, 2, x.device)
    for row in range(2):
        stacked.set_row(row, model.state_dict())
    stacked.train(False)
    try:
        out = stacked.forward(torch.stack([x, x]))
    except Exception as exc:  # whatever vmap refuses: control flow on values, .item(), a random op
        raise UnpackableError(f"torch.func.vmap cannot run its forward pass ({type(exc).__name__}: "
                              f"{' '.join(str(exc).split())[:200]})") from None
    if not torch.allclose(out[0], expected, rtol=1e-4, atol=1e-5):
        raise UnpackableError("its stacked forward pass does not give the model's own output")
    return shapes
