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
excluding the one-off dataset load.

The machine this runs on is shared, and its speed drifts by 2x within minutes. So every pipeline
is warmed up once, then the pipelines run in turn (A C A C ..., or A B C A B C ...), and each
round gives one ratio C/A (and C/B) from epochs run back to back. Headline ratio: the median of
those paired C/A ratios, with augmentation. A ratio taken across runs (A from one, C from another)
measures the machine as much as the code.

    python -m benchmarks.loop_throughput --pipelines A C    # ~2 min on a 2-core CPU
    python -m benchmarks.loop_throughput --repeats 7 --profile
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

from ._common import OtherLoad, header, median, ratio_line, table, write_mnist

TARGET = 8.0
QUIET = 0.10  # a round is quiet when other processes used at most this share of the CPU in each epoch


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
    from adamtune.data import load_dataset
    from adamtune.training import TrainConfig, fit

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


def paired_rounds(root: Path, names: list[str], augment: bool, rounds: int) -> list[dict[str, tuple[float, float]]]:
    """`rounds` rounds of one epoch per pipeline, in turn; each round maps a pipeline to (samples/s, other load)."""
    results = []
    for number in range(1, rounds + 1):
        this_round = {}
        for name in names:
            with OtherLoad() as load:
                samples, seconds = PIPELINES[name](root, augment, 0)
            this_round[name] = (samples / seconds, load.share)
        results.append(this_round)
        print(f"  round {number} augmentation {'on ' if augment else 'off'}: " + ", ".join(
            f"{name[0]} {rate:8,.0f} samples/s (other load {share:.0%})" for name, (rate, share) in this_round.items())
            + "".join(f", C/{name[0]} {this_round['C adamtune fit'][0] / this_round[name][0]:.2f}x"
                      for name in names if name[0] != "C" and "C adamtune fit" in this_round), flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.loop_throughput", description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="rounds of one epoch per pipeline (default 5)")
    parser.add_argument("--quick", action="store_true", help="one round (about 30 s)")
    parser.add_argument("--data-dir", type=Path, help="where the IDX files are or go (default: a temp dir)")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's, = cores)")
    parser.add_argument("--profile", action="store_true", help="also run torch.profiler over A and C")
    parser.add_argument("--pipelines", nargs="+", choices=["A", "B", "C"], default=["A", "B", "C"],
                        help="which to run (default all; the headline needs A and C)")
    args = parser.parse_args(argv)
    rounds = 1 if args.quick else args.repeats
    if args.threads:
        torch.set_num_threads(args.threads)
    names = [name for name in PIPELINES if name[0] in args.pipelines]
    header("Training-loop throughput: article pipeline (A, B) vs adamtune's fit (C)")
    with tempfile.TemporaryDirectory(prefix="adamtune-bench-") as tmp:
        root = args.data_dir or Path(tmp)
        if not (root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").exists():
            write_mnist(root)
        print(f"data: 60,000 + 10,000 synthetic 28x28 MNIST-format images under {root}")
        print("A and B rotate with PIL nearest-neighbour (RandomRotation's default), C with bilinear grid_sample;")
        print("all draw a uniform angle in [-10, 10] degrees per sample and fill with zeros. B's pin_memory=True")
        print("has no effect without an accelerator (PyTorch ignores it).")
        print(f"method: one untimed warm-up epoch per pipeline, then {rounds} round(s) of one epoch per pipeline in")
        print(f"turn ({' '.join(n[0] for n in names)} {' '.join(n[0] for n in names)} ...); each round gives a "
              "paired ratio. Nothing is discarded: load from other processes is printed per epoch.\n")
        for name in names:  # first-call costs (imports, allocator, dispatch) of every pipeline, not timed
            PIPELINES[name](root, True, 0)
        by_setting = {augment: paired_rounds(root, names, augment, rounds) for augment in (True, False)}
        if args.profile:
            profile(root, True)
    rows, paired = [], {}
    for augment, results in by_setting.items():
        rates = {name: median([r[name][0] for r in results]) for name in names}
        for other in ("A article", "B article, 2 workers"):
            if other in names and "C adamtune fit" in names:
                ratios = [r["C adamtune fit"][0] / r[other][0] for r in results]
                paired[other[0], augment] = (median(ratios), min(ratios), max(ratios))
        a, b, c = (rates.get(name, math.nan) for name in PIPELINES)
        ca, cb = (paired.get((key, augment), (math.nan, math.nan, math.nan)) for key in ("A", "B"))
        rows.append([f"{'on' if augment else 'off'}", *(_fmt(v, "{:,.0f}") for v in (a, b, c)),
                     _fmt(ca[0], "{:.1f}x") + (f" ({ca[1]:.1f} to {ca[2]:.1f})" if not math.isnan(ca[0]) else ""),
                     _fmt(cb[0], "{:.1f}x") + (f" ({cb[1]:.1f} to {cb[2]:.1f})" if not math.isnan(cb[0]) else "")])
    print()
    print(table(rows, ["augmentation", "A samples/s (median)", "B samples/s (median)", "C samples/s (median)",
                       "C/A, median of paired ratios (range)", "C/B, median of paired ratios (range)"]))
    if ("A", True) not in paired:
        return 0
    for augment, results in by_setting.items():
        quiet = [r["C adamtune fit"][0] / r["A article"][0] for r in results
                 if max(share for _, share in r.values()) <= QUIET]
        print(f"augmentation {'on ' if augment else 'off'}: C/A over the {len(quiet)} round(s) where other processes "
              f"used <= {QUIET:.0%} of the CPU during every epoch: "
              + (f"median {median(quiet):.1f}x ({', '.join(f'{q:.1f}' for q in quiet)})" if quiet else "none"))
    headline = paired["A", True][0]
    print(f"\ntarget: C/A >= {TARGET:.0f}x with augmentation: {'met' if headline >= TARGET else 'MISSED'}")
    print(ratio_line(headline, f"C/A samples per second with augmentation, median of {rounds} paired rounds"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
