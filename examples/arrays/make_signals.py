"""Write signals.npz next to this script: 1-D signals of four wave shapes (sine, square, triangle, sawtooth)
with random frequency, phase, amplitude and noise, as float32 arrays (N, 1, 64); a stand-in for arrays of
your own. x, y hold the training part (validation is carved from it), x_test, y_test a held-out test part,
classes the wave names. Offline, and the same file every time (seeded)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

CLASSES = ("sine", "square", "triangle", "sawtooth")
LENGTH = 64
NOISE = 0.3


def waves(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    labels = rng.integers(0, len(CLASSES), n)
    t = np.arange(LENGTH) / LENGTH
    cycles = rng.uniform(1.5, 6.0, (n, 1))
    phase = (cycles * t + rng.uniform(0, 1, (n, 1))) % 1.0  # position within the cycle, 0..1
    shapes = np.stack([np.sin(2 * np.pi * phase), np.where(phase < 0.5, 1.0, -1.0),
                       4 * np.abs(phase - 0.5) - 1, 2 * phase - 1])  # (4, n, LENGTH)
    x = shapes[labels, np.arange(n)] * rng.uniform(0.5, 2.0, (n, 1)) + rng.normal(0, NOISE, (n, LENGTH))
    return x[:, None, :].astype(np.float32), labels


def main() -> None:
    rng = np.random.default_rng(0)
    x, y = waves(1500, rng)
    x_test, y_test = waves(500, rng)
    out = Path(__file__).resolve().parent / "signals.npz"
    np.savez(out, x=x, y=y, x_test=x_test, y_test=y_test, classes=np.array(CLASSES))
    print(f"wrote {out}: x {x.shape} float32, {len(x_test)} test signals, classes {', '.join(CLASSES)}")


if __name__ == "__main__":
    main()
