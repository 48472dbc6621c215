"""Training-loop throughput: the article's DataLoader pipeline against adamtune's shared loop.

The same model (MLP 784-128-10, ReLU), optimizer (Adam, lr 1e-3), batch size (64), number of
samples (one epoch over 60,000 MNIST-format training images written by this benchmark) and
augmentation semantics (a uniform random rotation of up to 10 degrees per sample, zero fill, no
flip), three ways:

  A  torchvision.datasets.MNIST + Compose([RandomRotation(10), ToTensor()]) + DataLoader(batch_size=64,
     shuffle=True), the article's loop (zero_grad, forward, cross-entropy, backward, step, loss.item())
  B  the same with DataLoader(num_workers=2, pin_memory=True)
  C  adamtune: training.fit(TrainConfig(dataset='mnist', model='mlp', width=128, batch_size=64,
     rotation=10, epochs=1), validate=False), which trains on train+validation = the same 60,000 images

each with and without augmentation. Time is wall time of the epoch(s) including everything the
pipeline does per epoch (DataLoader worker start-up for B; model and optimizer construction for C),
excluding the one-off dataset load. Headline ratio: C/A samples per second with augmentation.

    python -m benchmarks.loop_throughput            # ~1.5 min on a 2-core CPU
    python -m benchmarks.loop_throughput --repeats 5 --profile
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ._common import header, median, ratio_line, table, timed, write_mnist

TARGET = 8.0


def article_epoch(root: Path, augment: bool, workers: int, seed: int) -> tuple[int, float]:
    """One epoch of the article's pipeline; returns (samples, seconds)."""
    import torchvision
    from torchvision import transforms

    steps = [transforms.RandomRotation(10)] if augment else []
    dataset = torchvision.datasets.MNIST(str(root), train=True, download=False,
                                         transform=transforms.Compose([*steps, transforms.ToTensor()]))
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    options = {"num_workers": workers, "pin_memory": True} if workers else {}
    running_loss, samples = 0.0, 0
    model.train()
    start = time.perf_counter()
    with warnings.catch_warnings():  # pin_memory without an accelerator: PyTorch warns and ignores it
        warnings.filterwarnings("ignore", message=".*pin_memory.*")
        for images, labels in torch.utils.data.DataLoader(dataset, batch_size=64, shuffle=True, **options):
            optimizer.zero_grad()
            loss = F.cross_entropy(model(images), labels)
            loss.backward()
            optimizer.step()
            running_loss += loss.item()
            samples += len(labels)
    return samples, time.perf_counter() - start


def adamtune_epoch(root: Path, augment: bool, seed: int) -> tuple[int, float]:
    """One epoch of `training.fit` on train+validation (60,000 images); returns (samples, seconds)."""
    from adamtune.training import TrainConfig, fit, load_dataset

    data = load_dataset("mnist", root)  # cached per process: loaded once, not timed
    cfg = TrainConfig(dataset="mnist", model="mlp", width=128, batch_size=64, lr=1e-3, epochs=1, seed=seed,
                      rotation=10.0 if augment else 0.0)
    start = time.perf_counter()
    fit(cfg, data, device="cpu", validate=False)
    return len(data.train) + len(data.val), time.perf_counter() - start


PIPELINES = {
    "A article": lambda root, augment, seed: article_epoch(root, augment, 0, seed),
    "B article, 2 workers": lambda root, augment, seed: article_epoch(root, augment, 2, seed),
    "C adamtune fit": adamtune_epoch,
}


def profile(root: Path, augment: bool) -> None:
    """torch.profiler over one epoch of A and of C: which operators take the time."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    for name in ("A article", "C adamtune fit"):
        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            PIPELINES[name](root, augment, 0)
        print(f"\n## torch.profiler, {name}, augmentation {'on' if augment else 'off'} (top 15 by self CPU time)")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))


def _fmt(value: float, spec: str) -> str:
    return "-" if math.isnan(value) else spec.format(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.loop_throughput", description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="epochs timed per pipeline and setting (default 3)")
    parser.add_argument("--quick", action="store_true", help="one epoch each (about 40 s)")
    parser.add_argument("--data-dir", type=Path, help="where the IDX files are or go (default: a temp dir)")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's, = cores)")
    parser.add_argument("--profile", action="store_true", help="also run torch.profiler over A and C")
    parser.add_argument("--pipelines", nargs="+", choices=["A", "B", "C"], default=["A", "B", "C"],
                        help="which to run (default all; the headline needs A and C)")
    args = parser.parse_args(argv)
    repeats = 1 if args.quick else args.repeats
    if args.threads:
        torch.set_num_threads(args.threads)
    header("Training-loop throughput: article pipeline (A, B) vs adamtune's fit (C)")
    with tempfile.TemporaryDirectory(prefix="adamtune-bench-") as tmp:
        root = args.data_dir or Path(tmp)
        if not (root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").exists():
            write_mnist(root)
        print(f"data: 60,000 + 10,000 synthetic 28x28 MNIST-format images under {root}")
        print("A and B rotate with PIL nearest-neighbour (RandomRotation's default), C with bilinear grid_sample;")
        print("all draw a uniform angle in [-10, 10] degrees per sample and fill with zeros. B's pin_memory=True")
        print("has no effect without an accelerator (PyTorch ignores it).")
        print(f"each figure: best of {repeats} one-epoch runs, each started on an idle CPU (other processes only")
        print("ever add time on this shared machine); a run during which they took >10% of the CPU is redone.\n")
        PIPELINES["C adamtune fit"](root, False, 0)  # warm-up: first-call costs (allocator, dispatch) not timed
        rates: dict[tuple[str, bool], float] = {}
        for augment in (True, False):
            for name, run in PIPELINES.items():
                if name[0] not in args.pipelines:
                    continue
                runs = timed(lambda run=run, augment=augment: run(root, augment, 0), repeats)
                samples = runs[0][0][0]
                seconds = sorted(result[1] for result, _, _ in runs)
                rates[name, augment] = samples / seconds[0]
                other = max(share for _, _, share in runs)
                print(f"{name:22s} augmentation {'on ' if augment else 'off'}  {samples} samples"
                      f"  best {seconds[0]:6.2f} s"
                      f"  median {median(seconds):6.2f} s  {rates[name, augment]:9,.0f} samples/s"
                      f"  (other load <= {other:.0%})", flush=True)
        if args.profile:
            profile(root, True)
    rows = []
    for augment in (True, False):
        a, b, c = (rates.get((name, augment), math.nan) for name in PIPELINES)
        rows.append([f"{'on' if augment else 'off'}", *(_fmt(v, "{:,.0f}") for v in (a, b, c)),
                     _fmt(c / a, "{:.1f}x"), _fmt(c / b, "{:.1f}x")])
    print()
    print(table(rows, ["augmentation", "A samples/s", "B samples/s", "C samples/s", "C/A", "C/B"]))
    if "A" not in args.pipelines or "C" not in args.pipelines:
        return 0
    headline = rates["C adamtune fit", True] / rates["A article", True]
    print(f"\ntarget: C/A >= {TARGET:.0f}x with augmentation: {'met' if headline >= TARGET else 'MISSED'}")
    print(ratio_line(headline, "C/A samples per second, with augmentation"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
