"""What every benchmark prints first (date, machine, versions, command) and the headline line last."""

from __future__ import annotations

import datetime
import os
import platform
import shlex
import statistics
import sys
import typing
from pathlib import Path

import numpy as np


def header(title: str) -> None:
    """The context a result is meaningless without; printed before any figure."""
    import optuna
    import torch
    import torchvision

    print(f"# {title}")
    print(f"date: {datetime.date.today().isoformat()}")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, "
          f"torch threads {torch.get_num_threads()}, cuda {'yes' if torch.cuda.is_available() else 'no'}")
    print(f"python {platform.python_version()}, torch {torch.__version__}, torchvision {torchvision.__version__}, "
          f"optuna {optuna.__version__}")
    print(f"command: python -m {_module()} {shlex.join(sys.argv[1:])}".rstrip())
    print(f"code: {_revision()}")
    print()


def _revision() -> str:
    """The commit the benchmarked code is at, and whether files outside benchmarks/ differ from it."""
    import subprocess

    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "--", ".",
                                ":!benchmarks"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "not a git checkout"
    return f"commit {head}" + (" with uncommitted changes" if dirty else "")


def _module() -> str:
    main = sys.modules["__main__"]
    spec = getattr(main, "__spec__", None)
    return spec.name if spec is not None else Path(sys.argv[0]).stem


def median(values: list[float]) -> float:
    return statistics.median(values)


def ratio_line(value: float, what: str) -> str:
    """The headline, always the last line of a benchmark's output."""
    return f"ratio: {value:.1f}x  ({what})"


def table(rows: list[list[str]], head: list[str]) -> str:
    """A Markdown table, pasteable into RESULTS.md."""
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"

    return "\n".join([line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


def write_mnist(root: Path, n_train: int = 60_000, n_test: int = 10_000, seed: int = 0) -> Path:
    """MNIST-format IDX files under `root/MNIST/raw` (what torchvision.datasets.MNIST and
    adamtune's load_dataset('mnist', root) read), made offline from scikit-learn's 8x8 digits:
    each digit upscaled to 20x20, placed in a 28x28 frame with a random shift of up to 2 pixels
    either way, plus Gaussian noise. Returns `root`."""
    import torch
    import torch.nn.functional as F
    from sklearn.datasets import load_digits

    digits = load_digits()
    source = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    gen = torch.Generator().manual_seed(seed)
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        pick = torch.randint(len(source), (n,), generator=gen)
        big = F.interpolate(source[pick], size=(20, 20), mode="bilinear", align_corners=False)
        canvas = F.pad(big, (6, 6, 6, 6))  # 32x32; a 28x28 window at offset 2 is centred
        dy, dx = torch.randint(0, 5, (2, n, 1), generator=gen)
        rows = (dy + torch.arange(28)).unsqueeze(2)
        cols = (dx + torch.arange(28)).unsqueeze(1)
        images = canvas[:, 0][torch.arange(n).view(n, 1, 1), rows, cols]
        images = (images * 255 + torch.randn(images.shape, generator=gen) * 12).clamp(0, 255).round()
        labels = torch.tensor(digits.target, dtype=torch.uint8)[pick]
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", images.to(torch.uint8).numpy(), 0x0803)
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels.numpy(), 0x0801)
    return root


def _write_idx(path: Path, array: np.ndarray, magic: int) -> None:
    with open(path, "wb") as fh:
        fh.write(magic.to_bytes(4, "big") + b"".join(int(dim).to_bytes(4, "big") for dim in array.shape))
        fh.write(np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def pack_value(text: str) -> int | str:
    """A `--pack` value from a benchmark's command line, checked as `adamtune run --pack` checks it
    (an argparse type: bad input is one line and exit 2)."""
    import argparse

    from adamtune.studies import StudyError, check_pack

    try:
        return check_pack(int(text) if text.isdigit() else text, "--pack", "--pack")
    except StudyError as exc:
        raise argparse.ArgumentTypeError(exc.reason) from None


def _jiffies() -> tuple[int, int, float]:
    """(busy, total) jiffies of the whole machine, and this process's CPU seconds (with reaped children)."""
    with open("/proc/stat", encoding="ascii") as fh:
        values = [int(v) for v in fh.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    own = os.times()
    return sum(values) - idle, sum(values), own.user + own.system + own.children_user + own.children_system


class OtherLoad:
    """Share of the machine's CPU used by other processes while the block ran (0.0 to 1.0).

    The machine is shared: a number measured while someone else's tests ran is marked, not hidden."""

    def __enter__(self) -> typing.Self:
        self._start = _jiffies()
        self.share = 0.0
        return self

    def __exit__(self, *exc) -> None:
        busy, total, own = (b - a for a, b in zip(self._start, _jiffies()))
        ticks = own * os.sysconf("SC_CLK_TCK")
        self.share = max(0.0, (busy - ticks) / total) if total else 0.0


def wait_until_idle(limit_s: float = 300.0, threshold: float = 0.10) -> float:
    """Wait (at most `limit_s`) until other processes use under `threshold` of the CPU for a second;
    returns their share in the last second sampled."""
    import time

    deadline = time.monotonic() + limit_s
    while True:
        with OtherLoad() as load:
            time.sleep(1.0)
        if load.share < threshold or time.monotonic() > deadline:
            return load.share


def timed(run, repeats: int, max_other: float = 0.10, retries: int = 3, idle_wait_s: float = 60.0):
    """Run `run()` `repeats` times, each after waiting for an idle CPU; a repetition during which other
    processes used more than `max_other` of the CPU is discarded and run again (at most `retries` times
    in all). Returns a list of (result, seconds, other share) of the kept repetitions."""
    import time

    kept, left = [], retries
    while len(kept) < repeats:
        wait_until_idle(idle_wait_s)
        with OtherLoad() as load:
            start = time.perf_counter()
            result = run()
            seconds = time.perf_counter() - start
        if load.share > max_other and left > 0:
            left -= 1
            print(f"  (discarded a repetition: other processes used {load.share:.0%} of the CPU)", flush=True)
            continue
        kept.append((result, seconds, load.share))
    return kept
