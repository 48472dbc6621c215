"""Inputs to a trained model, read into the units its training data had: image files (decoded as an image
folder's images are), folders of them, or an .npz holding `x` as the training arrays did. Every problem is
one SourceError naming the input, before anything is predicted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ._arrays import read_npz
from ._errors import SourceError
from ._image_files import IMAGE_SUFFIXES
from ._image_folder import decode_image
from ._sources import KIND_SHAPES

SOURCE = "predict"  # what the messages name as the source of a bad input


@dataclass(frozen=True)
class Inputs:
    """Samples in raw units, (N, *shape), and a name for each: the file, or `file.npz[i]`."""

    names: list[str]
    x: torch.Tensor


@dataclass(frozen=True)
class InputSpec:
    """What a trained model takes: one sample's shape, its kind, and the raw value meaning "white" (`scale`:
    255, or 16 for scikit-learn's digits; 1 for numbers); `resize` when training resized every image."""

    shape: tuple[int, ...]
    kind: str
    scale: float
    resize: bool = False


def read_inputs(paths: list[str | Path], spec: InputSpec) -> Inputs:
    """Image files, folders of them (every image file below, sorted; hidden entries skipped) and .npz files,
    in the order given; raises SourceError for a missing path, an unreadable image, an image of another size
    or a wrong-shaped array."""
    names: list[str] = []
    parts: list[torch.Tensor] = []
    if not paths:
        raise SourceError(SOURCE, "INPUTS", "give image files, folders of images or .npz files")
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise SourceError(SOURCE, str(path), "does not exist")
        if path.suffix.lower() == ".npz" and path.is_file():
            x = _npz(path, spec)
            names += [f"{path}[{i}]" for i in range(len(x))]
            parts.append(x)
            continue
        if path.is_dir():
            files = _images_below(path)
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            files = [path]
        else:
            raise SourceError(SOURCE, str(path), f"is neither an image file ({', '.join(IMAGE_SUFFIXES)}) nor an "
                              ".npz file")
        if spec.kind != "image":
            raise SourceError(SOURCE, str(path), f"{'holds images' if path.is_dir() else 'is an image'}, but the "
                              f"model takes {_takes(spec)}; give an .npz file holding x")
        names += [str(f) for f in files]
        parts.append(torch.stack([_image(f, spec) for f in files]))
    return Inputs(names, torch.cat(parts) if len(parts) > 1 else parts[0])


def _images_below(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES
                   and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    if not files:
        raise SourceError(SOURCE, str(folder), f"holds no image files ({', '.join(IMAGE_SUFFIXES)})")
    return files


def _image(path: Path, spec: InputSpec) -> torch.Tensor:
    """One image file as the training images were read (8 bits, the model's channels, resized where training
    resized), in the training data's units."""
    channels, height, width = spec.shape
    array, _, problem = decode_image(path, (height, width) if spec.resize else None, channels)
    if problem is not None:
        raise SourceError(SOURCE, str(path), problem)
    if array.shape[0] == 1 and channels == 3:  # a grey image for a colour model, as a colour folder reads it
        array = np.repeat(array, 3, axis=0)
    if array.shape[1:] != (height, width):
        raise SourceError(SOURCE, str(path), f"is {array.shape[1]}x{array.shape[2]} pixels but the model takes "
                          f"{height}x{width} images: resize it")
    image = torch.from_numpy(np.array(array))  # a copy: PIL's array is read-only
    return image if spec.scale == 255 else image.float() * (spec.scale / 255)  # 8 bits in the data's units


def _npz(path: Path, spec: InputSpec) -> torch.Tensor:
    arrays = read_npz(path, origin=SOURCE, key=str(path))
    if "x" not in arrays:
        raise SourceError(SOURCE, str(path), f"holds no array 'x' (it holds {', '.join(sorted(arrays)) or 'none'}); "
                          "x holds the samples, as in training")
    given = x = arrays["x"]
    if spec.kind == "image" and x.ndim == 3 and spec.shape[0] == 1:
        x = x[:, None]  # (N, H, W) grey images
    if x.shape[1:] != spec.shape or (spec.kind == "image") != (x.dtype == np.uint8 and x.ndim == 4):
        raise SourceError(SOURCE, f"{path}: x", f"has shape {given.shape} ({given.dtype}) but the model takes "
                          f"{_takes(spec)}")
    if x.dtype.kind not in "buif":
        raise SourceError(SOURCE, f"{path}: x", f"has dtype {x.dtype}; x holds numbers")
    if spec.kind == "image":
        return torch.from_numpy(np.ascontiguousarray(x))
    finite = np.isfinite(x.reshape(len(x), -1)).all(axis=1) if x.dtype.kind == "f" else None
    if finite is not None and not finite.all():
        raise SourceError(SOURCE, f"{path}: x", f"holds NaN or inf (first in sample {int(np.argmin(finite))})")
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))


def _takes(spec: InputSpec) -> str:
    """What the model takes, in words: `uint8 images (C, H, W) of shape (1, 8, 8)`."""
    what = KIND_SHAPES[spec.kind]
    return f"{'uint8 ' if spec.kind == 'image' else ''}{what} of shape {spec.shape}"
