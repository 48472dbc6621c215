"""Every image mode PIL opens, as 8-bit grey or RGB over its real range, or refused by name.

PIL's own `convert("L")` clips 16-bit, 32-bit and float pixels to 0..255 (a 16-bit PNG then holds only 0
and 255); here each is scaled from its range instead, as torchvision's `convert_image_dtype` does:
16-bit 0..65535 and 32-bit integers (PIL's mode for 16-bit data from some formats; values must lie in
0..65535) by 255/65535, floats from 0..1 by 255. 1-bit is 0/255; alpha is dropped; palette, CMYK, YCbCr,
LAB and HSV are converted to RGB by PIL.
"""

from __future__ import annotations

from typing import Any

import numpy as np

GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
_COLOUR_MODES = frozenset({"RGB", "RGBA", "RGBa", "RGBX", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV"})
_SIXTEEN_BIT = frozenset({"I;16", "I;16B", "I;16L", "I;16N"})
SUPPORTED = sorted(GREY_MODES | _COLOUR_MODES)


class ModeError(Exception):
    """An image whose pixels cannot be read as 8 bits; the message is the reason, after the path."""


def eight_bit(image: Any, grey: bool) -> Any:
    """`image` (a PIL image) as mode L when `grey`, else RGB, over its real range."""
    from PIL import Image

    mode = image.mode
    if mode in ("1", "L", "LA", "La"):
        out = image.convert("L")
    elif mode in _SIXTEEN_BIT:
        out = Image.fromarray(_scaled(np.asarray(image), 65535))
    elif mode == "I":
        pixels = np.asarray(image)
        if pixels.size and (pixels.min() < 0 or pixels.max() > 65535):
            raise ModeError(f"has 32-bit integer pixels from {pixels.min()} to {pixels.max()}; integer images "
                            "are read as 0..65535: save it with 8 or 16 bits per pixel")
        out = Image.fromarray(_scaled(pixels, 65535))
    elif mode == "F":
        pixels = np.asarray(image)
        finite = np.isfinite(pixels)
        if not finite.all() or (pixels.size and (pixels.min() < 0 or pixels.max() > 1)):
            low, high = (pixels[finite].min(), pixels[finite].max()) if finite.any() else (np.nan, np.nan)
            extra = "" if finite.all() else ", and NaN or inf"
            raise ModeError(f"has floating-point pixels from {low:g} to {high:g}{extra}; float images are "
                            "read as 0..1: scale it to 0..1 or save it with 8 bits per pixel")
        out = Image.fromarray(_scaled(pixels, 1.0))
    elif mode in ("P", "PA"):
        out = image.convert("RGBA").convert("RGB")  # a palette's transparency goes through RGBA
    elif mode in _COLOUR_MODES:
        out = image.convert("RGB")
    else:
        raise ModeError(f"has image mode {mode!r}, which is not read (modes read: {', '.join(SUPPORTED)})")
    if grey and out.mode != "L":
        out = out.convert("L")
    return out


def _scaled(pixels: np.ndarray, top: float) -> np.ndarray:
    """0..top as 0..255 uint8, rounded (65535 / 257 = 255 exactly)."""
    return np.round(pixels.astype(np.float64) * (255.0 / top)).astype(np.uint8)
