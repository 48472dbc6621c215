"""An image folder of the user's: the first load (decode every PNG with PIL, hash the files, write the cache)
against every later one (stat the files, read the cached uint8 tensor).

The benchmark writes 10,000 small PNG files (32x32 RGB: scikit-learn's 8x8 digits upscaled, tinted and
noised, 1,000 per class in 10 class folders) into a temporary folder, then times `training.load_dataset` on
`{type: image_folder, path: ...}` end to end, as a trial's worker calls it (listing, cache lookup, decoding
or cache read, the seeded train/validation/test split and the normalisation statistics), on the CPU:

  first   an empty data cache: decode and cache (each repetition starts from an empty cache again)
  cached  the same folder again: the cache key matches, nothing is decoded

Target: the cached load well under a second. Headline ratio: first / cached.

    python -m benchmarks.image_folder            # ~1 min on a 2-core CPU (writing the PNGs included)
    python -m benchmarks.image_folder --repeats 5 --images 20000
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from ._common import header, median, ratio_line, timed

TARGET_CACHED_S = 1.0


def write_pngs(folder: Path, count: int, seed: int = 0) -> int:
    """`count` 32x32 RGB PNGs in 10 class folders; returns the bytes written."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(seed)
    total = 0
    for i in range(count):
        k = i % len(digits.images)
        grey = Image.fromarray(np.uint8(digits.images[k] * 255 / 16)).resize((32, 32), Image.Resampling.BILINEAR)
        tint = rng.uniform(0.4, 1.0, 3)
        pixels = np.asarray(grey, dtype=np.float32)[..., None] * tint + rng.normal(0, 8, (32, 32, 3))
        path = folder / str(digits.target[k]) / f"{i:05d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.uint8(pixels.clip(0, 255))).save(path)
        total += path.stat().st_size
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.image_folder", description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=10_000, help="PNG files to write (default 10,000)")
    parser.add_argument("--repeats", type=int, default=3, help="timed loads of each kind (default 3)")
    args = parser.parse_args(argv)
    from adamtune.data import DataSource, load_dataset

    header("Image folder: first load (decode + cache) vs cached load")
    with tempfile.TemporaryDirectory(prefix="adamtune-bench-") as tmp:
        folder, cache = Path(tmp) / "pngs", Path(tmp) / "cache"
        start = time.perf_counter()
        size = write_pngs(folder, args.images)
        print(f"data: {args.images:,} PNG files, 32x32 RGB, {size / 2**20:.1f} MiB in 10 class folders "
              f"(written in {time.perf_counter() - start:.1f} s, not timed)")
        source = DataSource.parse({"type": "image_folder", "path": str(folder)}, origin="benchmark", folder=tmp)
        print(f"each figure: median of {args.repeats} loads, each started on an idle CPU; a load during which "
              "other processes took >10% of the CPU is redone.\n")

        def first():
            shutil.rmtree(cache, ignore_errors=True)
            return load_dataset(source, cache)

        firsts = timed(first, args.repeats)
        cached = timed(lambda: load_dataset(source, cache), args.repeats)
        data = cached[0][0]
        cache_files = list((cache / "cache" / "image_folder").glob("*.pt"))
        first_s = median([s for _, s, _ in firsts])
        cached_s = median([s for _, s, _ in cached])
        print(f"dataset: {len(data.train)}/{len(data.val)}/{len(data.test)} train/validation/test, shape "
              f"{data.shape}, {data.num_classes} classes, fingerprint {data.fingerprint}; cache file "
              f"{sum(f.stat().st_size for f in cache_files) / 2**20:.1f} MiB")
        print(f"first load (decode {args.images:,} PNGs, hash, write cache): {first_s:6.3f} s  "
              f"({first_s / args.images * 1e6:.0f} us per image; runs {', '.join(f'{s:.3f}' for _, s, _ in firsts)})")
        print(f"cached load (stat {args.images:,} files, read the cache):   {cached_s:6.3f} s  "
              f"(runs {', '.join(f'{s:.3f}' for _, s, _ in cached)})")
        print(f"\ntarget: cached load < {TARGET_CACHED_S:.0f} s: {'met' if cached_s < TARGET_CACHED_S else 'MISSED'}")
        print(ratio_line(first_s / cached_s, "first load / cached load"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
