"""Write scikit-learn's 8x8 handwritten digits as PNG files, one folder per class, next to this script:
data/digits/0/0000.png ... data/digits/9/1796.png. The image folder examples/image_folder/digits_folder.yaml
trains on; a stand-in for a folder of your own images. Offline: the digits ship with scikit-learn."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits


def main() -> None:
    out = Path(__file__).resolve().parent / "data" / "digits"
    digits = load_digits()
    pixels = np.round(digits.images * (255 / 16)).astype(np.uint8)  # 0..16 grey levels -> 0..255
    for index, (image, label) in enumerate(zip(pixels, digits.target, strict=True)):
        folder = out / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image, mode="L").save(folder / f"{index:04d}.png")
    print(f"wrote {len(pixels)} PNG files ({pixels.shape[1]}x{pixels.shape[2]}, grey) in 10 class folders under {out}")


if __name__ == "__main__":
    main()
