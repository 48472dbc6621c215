"""Whole-batch augmentation on the training device, with random parameters drawn per sample.

torchvision.transforms.v2 applied to a batch tensor draws one set of parameters for the whole
batch; per-sample rotation/shift/flip is one batched affine grid instead, and erasing is a mask.
A 1-D signal (B, C, L) has one augmentation: `translate`, a shift along its length.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Augmentation:
    rotation: float = 0.0  # max degrees either way
    translate: float = 0.0  # max shift as a fraction of the side
    hflip: bool = False
    random_crop: int = 0  # padding in pixels: a whole-pixel shift with zero fill
    random_erasing: float = 0.0  # probability per sample

    @property
    def geometric(self) -> bool:
        return bool(self.rotation or self.translate or self.hflip or self.random_crop)

    @property
    def active(self) -> bool:
        return self.geometric or self.random_erasing > 0

    def warp(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Rotate, shift and flip each image of (B, C, H, W) with its own parameters; zero fill."""
        if not self.geometric:
            return x
        b, _, h, w = x.shape
        u = torch.rand(b, 5, generator=gen, device=x.device)
        angle = (u[:, 0] * 2 - 1) * math.radians(self.rotation)
        cos, sin = angle.cos(), angle.sin()
        flip = torch.where(u[:, 1] < 0.5, -1.0, 1.0) if self.hflip else torch.ones_like(cos)
        # affine_grid works in [-1, 1] coordinates: a shift of f of the side is 2f, one pixel is 2/size.
        tx = (u[:, 2] * 2 - 1) * 2 * self.translate
        ty = (u[:, 3] * 2 - 1) * 2 * self.translate
        if self.random_crop:
            shifts = torch.randint(-self.random_crop, self.random_crop + 1, (b, 2), generator=gen, device=x.device)
            tx = tx + shifts[:, 0] * 2.0 / w
            ty = ty + shifts[:, 1] * 2.0 / h
        theta = torch.stack([torch.stack([cos * flip, -sin, tx], 1), torch.stack([sin * flip, cos, ty], 1)], 1)
        # affine_grid's own (B, H*W, 3) x (B, 3, 2) bmm is slow on CPU; one broadcast matmul against the
        # shared pixel grid gives the same grid (to float rounding) in half the time.
        grid = torch.matmul(_pixel_grid(h, w, x.device, x.dtype), theta.transpose(1, 2)).view(b, h, w, 2)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    def shift(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Shift each signal of (B, C, L) by its own whole number of samples, up to `translate` of the
        length either way; zero fill, as an image's shift fills with black."""
        if not self.translate:
            return x
        b, c, n = x.shape
        u = torch.rand(b, generator=gen, device=x.device)
        steps = ((u * 2 - 1) * self.translate * n).round().long()
        source = torch.arange(n, device=x.device).view(1, n) - steps.view(b, 1)  # out[t] = x[t - step]
        inside = (source >= 0) & (source < n)
        shifted = x.gather(2, source.clamp(0, n - 1).unsqueeze(1).expand(b, c, n))
        return shifted * inside.unsqueeze(1)

    def erase(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """RandomErasing's semantics (area 2-33%, aspect 0.3-3.3, value 0) with a mask per sample."""
        if self.random_erasing <= 0:
            return x
        b, _, h, w = x.shape
        u = torch.rand(b, 5, generator=gen, device=x.device)
        area = 0.02 + u[:, 0] * (0.33 - 0.02)
        aspect = torch.exp(math.log(0.3) + u[:, 1] * (math.log(1 / 0.3) - math.log(0.3)))
        eh = (area * aspect).sqrt().mul(h).clamp(1, h).floor()
        ew = (area / aspect).sqrt().mul(w).clamp(1, w).floor()
        top = (u[:, 2] * (h - eh + 1)).floor()
        left = (u[:, 3] * (w - ew + 1)).floor()
        rows = torch.arange(h, device=x.device).view(1, h, 1)
        cols = torch.arange(w, device=x.device).view(1, 1, w)
        inside = ((rows >= top.view(b, 1, 1)) & (rows < (top + eh).view(b, 1, 1))
                  & (cols >= left.view(b, 1, 1)) & (cols < (left + ew).view(b, 1, 1)))
        chosen = (u[:, 4] < self.random_erasing).view(b, 1, 1)
        return x.masked_fill((inside & chosen).unsqueeze(1), 0.0)


def _pixel_grid(h: int, w: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(H*W, 3): each pixel centre's (x, y, 1) in affine_grid's [-1, 1] coordinates (align_corners=False)."""
    ys = (torch.arange(h, device=device, dtype=dtype) * 2 + 1) / h - 1
    xs = (torch.arange(w, device=device, dtype=dtype) * 2 + 1) / w - 1
    return torch.stack([xs.repeat(h), ys.repeat_interleave(w), torch.ones(h * w, device=device, dtype=dtype)], 1)
