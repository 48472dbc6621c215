"""Packed trials: one worker training K trials at once (`run --pack K`) against one trial at a time.

Two studies, each run through `studies.run_study` on a fresh SQLite store per run, with the same seeds:

  digits  studies/digits_mlp.yaml as shipped (TPE, median pruner, MLP on 8x8 digits, 20 epochs), --trials N
  mnist   studies/mnist_mlp.yaml (the article's MLP 784-128-10, batch 64, one structure) on the MNIST-format
          data `loop_throughput` writes (smaller by default: --mnist-train images, 10,000 of them the
          validation split, --mnist-epochs epochs)

solo (K = 1) and --pack K for each K given, alternating in every repetition, in reverse order every other
repetition (the machine is shared: the ratios are taken within a repetition). `--packs default` adds the run a
user gets without `--pack` (the study file's `pack`); `auto` passes `--pack auto`. Per run: trials per minute
(the worker's wall time, data loading and the store included; and per minute of this process's CPU time, which
a shared machine's load changes less), epochs per second (every epoch any trial trained), the best value after
the same number of trials, and the share of the CPU other processes used meanwhile. Headline ratio: digits trials per
minute of the default (when `--packs` names it), else at the best K / solo.

    python -m benchmarks.packing                                  # ~10 min on a 2-core CPU
    python -m benchmarks.packing --packs default --repeats 3      # the default against solo
    python -m benchmarks.packing --device cuda --trials 64 --repeats 1
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

import optuna

from ._common import OtherLoad, header, median, pack_value, ratio_line, table, write_mnist

TARGET = 3.0
DEFAULT = "default"  # in --packs: no `--pack` at all, the study file's `pack`
Pack = int | str  # a --pack value, or DEFAULT


@dataclass
class Run:
    study: str
    pack: Pack
    trials: int
    epochs: int
    seconds: float
    cpu: float  # this process's CPU seconds: what other processes' load changes least
    best: float
    other: float

    @property
    def per_minute(self) -> float:
        return 60 * self.trials / self.seconds

    @property
    def per_cpu_minute(self) -> float:
        return 60 * self.trials / self.cpu

    @property
    def epochs_per_s(self) -> float:
        return self.epochs / self.seconds


def run(spec, label: str, pack: Pack, rep: int, tmp: Path, device: str, data_root: str | None,
        storage: str | None) -> Run:
    from adamtune.results import StudyView
    from adamtune.studies import run_study

    spec = replace(spec, name=f"bench-packing-{label}-{pack}-{rep}-{uuid.uuid4().hex[:6]}")
    url = storage or f"sqlite:///{tmp / f'{spec.name}.db'}"
    cpu = time.process_time()
    with OtherLoad() as load:
        summary = run_study(spec, url, device=device, progress=False, artifacts=str(tmp / "artifacts"),
                            data_root=data_root, pack=None if pack == DEFAULT else pack)
    cpu = time.process_time() - cpu
    view = StudyView.of(summary.study)
    result = Run(label, pack, len(view.trials), sum(t.epochs for t in view.trials),
                 summary.seconds, cpu, view.best.value, load.share)
    if storage:
        optuna.delete_study(study_name=spec.name, storage=storage)
    return result


def pack_or_default(text: str) -> Pack:
    return DEFAULT if text == DEFAULT else pack_value(text)


def name(pack: Pack) -> str:
    return "solo" if pack == 1 else str(pack)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.packing", description=__doc__.split("\n")[0])
    parser.add_argument("--packs", type=pack_or_default, nargs="+", default=[4, 16, 64],
                        help=f"pack sizes to compare with solo; {DEFAULT}: no --pack (the study file's pack)")
    parser.add_argument("--trials", type=int, default=64, help="digits trials per run (default 64)")
    parser.add_argument("--mnist-trials", type=int, default=16)
    parser.add_argument("--mnist-train", type=int, default=12_000, help="MNIST-format training images written")
    parser.add_argument("--mnist-epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--studies", nargs="+", default=["digits", "mnist"], choices=["digits", "mnist"])
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--storage", metavar="URL", help="study store for every run (default: a new SQLite file "
                        "per run); its studies are deleted after each run")
    args = parser.parse_args(argv)
    from adamtune import studies
    from adamtune.storage import mask_url
    from adamtune.studies import load_study_file

    header("Packed trials: K trials in one program against one at a time")
    if args.device.startswith("cuda"):
        import torch

        print(f"device: {torch.cuda.get_device_name(0)}\n")
    optuna.logging.set_verbosity(logging.WARNING)
    logging.getLogger("adamtune").setLevel(logging.ERROR)
    folder = Path(studies.__file__).parent
    specs = {"digits": replace(load_study_file(folder / "digits_mlp.yaml"), n_trials=args.trials),
             "mnist": replace(load_study_file(folder / "mnist_mlp.yaml"), n_trials=args.mnist_trials,
                              epochs=args.mnist_epochs)}
    store = mask_url(args.storage) if args.storage else "a new SQLite file per run"
    print(f"digits: studies/digits_mlp.yaml, {args.trials} trials of up to {specs['digits'].epochs} epochs; "
          f"mnist: studies/mnist_mlp.yaml, {args.mnist_trials} trials of up to {args.mnist_epochs} epochs on "
          f"{args.mnist_train} MNIST-format training images; store {store}; device {args.device}\n")
    if DEFAULT in args.packs and any(spec.pack == 1 for spec in specs.values()):
        print("note: the study files' pack is 1 here, so the default runs solo too\n")
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="adamtune-bench-") as tmp:
        root = str(write_mnist(Path(tmp) / "data", n_train=args.mnist_train, n_test=2_000))
        for rep in range(args.repeats):
            for label in args.studies:
                order = [1, *args.packs]
                for pack in order if rep % 2 == 0 else reversed(order):  # no side always runs first
                    r = run(specs[label], label, pack, rep, Path(tmp), args.device, root, args.storage)
                    runs.append(r)
                    print(f"rep {rep} {label:6s} pack {name(pack):>7s}: {r.trials} trials, {r.epochs:5d} epochs in "
                          f"{r.seconds:6.1f} s = {r.per_minute:6.1f} trials/min "
                          f"({r.per_cpu_minute:6.1f} per CPU minute), {r.epochs_per_s:6.1f} epochs/s, "
                          f"best {r.best:.4f}, other load {r.other:.0%}", flush=True)
    rows, speedups = [], {}
    for label in args.studies:
        for pack in [1, *args.packs]:
            mine = [r for r in runs if r.study == label and r.pack == pack]
            solo = [r for r in runs if r.study == label and r.pack == 1]
            ratio = median([m.per_minute / s.per_minute for m, s in zip(mine, solo)])
            cpu_ratio = median([m.per_cpu_minute / s.per_cpu_minute for m, s in zip(mine, solo)])
            speedups[(label, pack)] = ratio
            rows.append([label, name(pack), f"{median([r.per_minute for r in mine]):.1f}",
                         f"{median([r.epochs_per_s for r in mine]):.1f}", f"{ratio:.2f}x",
                         f"{median([r.per_cpu_minute for r in mine]):.1f}", f"{cpu_ratio:.2f}x",
                         f"{median([r.best for r in mine]):.4f}", f"{median([r.seconds for r in mine]):.1f}",
                         f"{max(r.other for r in mine):.0%}"])
    print()
    print(table(rows, ["study", "pack", "trials/min", "epochs/s", "vs solo", "trials/CPU min", "vs solo (CPU)",
                       "best value", "wall s", "other load"]))
    print(f"\n(medians over {args.repeats} repetition(s); 'vs solo' is the median of per-repetition ratios of trials "
          "per minute; 'CPU' counts this process's CPU seconds instead of wall time, which other processes' load "
          "changes less (it leaves out waits on the store's disk); best value: the study's objective, validation "
          "loss, after the same number of trials)")
    if "digits" not in args.studies:
        return 0
    if DEFAULT in args.packs:
        ratio = speedups[("digits", DEFAULT)]
        print(f"target: the default's digits trials/minute >= {TARGET:.0f}x solo: "
              f"{'met' if ratio >= TARGET else 'MISSED'}")
        print(ratio_line(ratio, "digits trials per minute, the default (no --pack) / solo (--pack 1)"))
        return 0
    best_pack = max(args.packs, key=lambda k: speedups[("digits", k)])
    ratio = speedups[("digits", best_pack)]
    print(f"target: digits trials/minute at the best K >= {TARGET:.0f}x solo: "
          f"{'met' if ratio >= TARGET else 'MISSED'} (K = {best_pack})")
    print(ratio_line(ratio, f"digits trials per minute, --pack {best_pack} / solo"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
