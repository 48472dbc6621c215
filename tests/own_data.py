"""The user's data as tests write it: image folders of PNG files, .npz arrays, entry-point modules."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def write_images(folder: Path, counts: dict[str, int], size: tuple[int, int] = (8, 8), mode: str = "L",
                 seed: int = 0) -> list[Path]:
    """`counts[class]` random PNG images of `size` (height, width) per class folder; returns their paths."""
    rng = np.random.default_rng(seed)
    paths = []
    for name, count in counts.items():
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            shape = size if mode == "L" else (*size, 3)
            path = folder / name / f"{i:03d}.png"
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode=mode).save(path)
            paths.append(path)
    return paths


def write_digit_images(folder: Path, per_class: int = 40) -> None:
    """scikit-learn's 8x8 digits as PNG files, `per_class` per class folder: data a model can learn."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    seen: dict[int, int] = {}
    for image, label in zip(digits.images, digits.target, strict=True):
        if seen.get(label, 0) >= per_class:
            continue
        seen[label] = seen.get(label, 0) + 1
        path = folder / str(label) / f"{seen[label]:03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.uint8(np.round(image * 255 / 16)), mode="L").save(path)


def digit_features(n: int = 600) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits as float feature vectors (n, 64) and labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.data[:n].astype(np.float32), digits.target[:n]


MODULE = '''
from torch import nn


def build(input_shape, num_classes, params, *, hidden=16):
    """A small MLP whose width is the study's own parameter `units`."""
    import math
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), params.get("units", hidden)), nn.ReLU(),
                         nn.Linear(params.get("units", hidden), num_classes))


def wrong_classes(input_shape, num_classes, params):
    import math
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), 7))


def raises(input_shape, num_classes, params):
    raise ValueError("no model for you")


def not_a_model(input_shape, num_classes, params):
    return 42


def load(n=300):
    """Python data entry point: digits as features."""
    from sklearn.datasets import load_digits
    digits = load_digits()
    return {"x": digits.data[:n].astype("float32"), "y": digits.target[:n], "classes": [str(i) for i in range(10)]}


def load_list():
    return [1, 2, 3]


def load_fails():
    raise RuntimeError("disk on fire")
'''


def write_module(folder: Path, name: str = "my_nets") -> Path:
    path = folder / f"{name}.py"
    path.write_text(MODULE)
    return path


def folder(tmp_path, **mapping):
    """A study's dataset: the image folder pets/ beside it, with `mapping`'s settings."""
    return {"dataset": {"type": "image_folder", "path": "pets", **mapping}}


def corrupt(tmp_path, **mapping):
    """pets/ with twelve good images and one that only looks like a PNG."""
    write_images(tmp_path / "pets", {"cat": 6, "dog": 6})
    (tmp_path / "pets" / "dog" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    return folder(tmp_path, **mapping)


def with_module(tmp_path, **changes):
    """The study `changes`, with my_nets.py (models and data entries) written beside it."""
    write_module(tmp_path)
    return changes
