"""Pruning savings: the digits study without a pruner, with the shipped median pruner, with Hyperband.

studies/digits_mlp.yaml as shipped (TPE with a fixed seed, 20 trials of up to 20 epochs, baseline
trial first) is run through `studies.run_study` on a temporary SQLite store three times, changing
only the pruner (and the study name). For each: epochs actually trained (the length of every
trial's per-epoch curve, pruned trials included), trials pruned, wall time, and the best trial's
validation loss (the study's objective) and accuracy, plus the best accuracy of any trial.

Target: >= 50% of the unpruned run's epochs saved (an epoch ratio >= 2x) with the selected trial's
validation accuracy within 0.5 percentage points of the unpruned run's. Headline ratio: epochs
without pruning / epochs with the shipped median pruner, over all seeds run.

The shipped setting was chosen by `--sweep` on seeds 0, 1 and 2 (CHOSEN_ON_SEEDS), so a figure on
those seeds is fitted to them. The default seeds are 3 to 7, which played no part in the choice.

    python -m benchmarks.pruning                      # seeds 3-7, ~5 min on a 2-core CPU
    python -m benchmarks.pruning --seeds 0 1 2 --sweep   # the sweep the shipped setting came from
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import optuna

from ._common import OtherLoad, header, ratio_line, table, wait_until_idle

TARGET_SAVED = 0.5
TARGET_PP = 0.5
CHOSEN_ON_SEEDS = (0, 1, 2)  # the seeds whose --sweep picked the shipped pruner setting
HELD_OUT_SEEDS = [3, 4, 5, 6, 7]


@dataclass
class Run:
    label: str
    epochs: int
    trials: int
    pruned: int
    seconds: float
    best_loss: float
    best_loss_accuracy: float  # accuracy of the trial the study selects (lowest validation loss)
    max_accuracy: float  # highest validation accuracy of any completed trial
    other: float


def pruners(shipped: dict, sweep: bool) -> dict[str, dict]:
    """The pruners compared; --sweep adds the settings that move the result."""
    chosen = {"none": {"type": "none"}, "median (shipped)": shipped, "hyperband": {"type": "hyperband"}}
    if sweep:
        chosen.update({
            "median, n_warmup_steps 1": {**shipped, "n_warmup_steps": 1},
            "median, n_startup_trials 2": {**shipped, "n_startup_trials": 2},
            "percentile 25, warmup 3": {"type": "percentile", "percentile": 25.0, "n_startup_trials": 4,
                                        "n_warmup_steps": 3},
            "hyperband, reduction 2": {"type": "hyperband", "reduction_factor": 2},
            "median, startup 2, warmup 1": {**shipped, "n_startup_trials": 2, "n_warmup_steps": 1},
        })
    return chosen


def run(spec, label: str, pruner: dict, seed: int, tmp: Path) -> Run:
    from adamtune.results import StudyView
    from adamtune.studies import run_study

    slug = "".join(c if c.isalnum() else "-" for c in label)
    spec = replace(spec, name=f"bench-pruning-{slug}-{seed}", pruner=pruner, seed=seed)
    wait_until_idle(5)  # epochs and accuracies do not depend on load; wall seconds do, and are only context
    with OtherLoad() as load:
        summary = run_study(spec, f"sqlite:///{tmp / f'pruning-{slug}-{seed}.db'}", device="cpu", progress=False,
                            artifacts=str(tmp / "artifacts"))
    view = StudyView.of(summary.study)
    best = view.best
    return Run(label=label, epochs=sum(t.epochs for t in view.trials),
               trials=len(view.trials), pruned=view.counts["pruned"],
               seconds=summary.seconds, best_loss=best.val_loss, best_loss_accuracy=best.val_accuracy,
               max_accuracy=max(t.val_accuracy for t in view.complete), other=load.share)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pruning", description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=HELD_OUT_SEEDS,
                        help="study seeds (sampler and trial seeds; default 3-7, not used to choose the setting)")
    parser.add_argument("--sweep", action="store_true", help="also other pruner settings (what moves the result)")
    parser.add_argument("--trials", type=int, help="trials per study (default: the study file's, 20)")
    parser.add_argument("--only", nargs="+", metavar="LABEL", help="run only these pruners (and 'none')")
    args = parser.parse_args(argv)
    from adamtune import studies
    from adamtune.studies import load_study_file

    spec = load_study_file(Path(studies.__file__).parent / "digits_mlp.yaml")
    if args.trials:
        spec = replace(spec, n_trials=args.trials)
    header("Pruning savings on the digits study")
    print(f"study: studies/digits_mlp.yaml, {spec.n_trials} trials of up to {spec.epochs} epochs, sampler "
          f"{spec.sampler}, seeds {args.seeds}; shipped pruner {spec.pruner}")
    used = sorted(set(args.seeds) & set(CHOSEN_ON_SEEDS))
    print(f"the shipped pruner setting was chosen by a sweep over seeds {list(CHOSEN_ON_SEEDS)}; "
          + (f"seeds {used} of this run are among them, so their figures are fitted\n" if used
             else "none of this run's seeds was used to choose it\n"))
    optuna.logging.set_verbosity(logging.WARNING)
    results: dict[str, list[Run]] = {}
    with tempfile.TemporaryDirectory(prefix="adamtune-bench-") as tmp:
        for seed in args.seeds:
            for label, pruner in pruners(spec.pruner, args.sweep).items():
                if args.only and label not in args.only and label != "none":
                    continue
                r = run(spec, label, pruner, seed, Path(tmp))
                results.setdefault(label, []).append(r)
                print(f"seed {seed} {label:28s} {r.epochs:4d} epochs, {r.pruned:2d}/{r.trials} pruned, "
                      f"{r.seconds:5.1f} s, best val loss {r.best_loss:.4f} (accuracy {r.best_loss_accuracy:.2%}), "
                      f"best accuracy {r.max_accuracy:.2%}, other load {r.other:.0%}", flush=True)
    base = results["none"]
    rows, verdicts = [], {}
    for label, runs in results.items():
        epochs = sum(r.epochs for r in runs)
        saved = 1 - epochs / sum(r.epochs for r in base)
        gap = 100 * sum(b.best_loss_accuracy - r.best_loss_accuracy for b, r in zip(base, runs)) / len(runs)
        verdicts[label] = saved >= TARGET_SAVED and gap <= TARGET_PP
        n = len(runs)
        rows.append([label, str(epochs), f"{saved:.1%}", f"{sum(r.pruned for r in runs)}/{sum(r.trials for r in runs)}",
                     f"{sum(r.seconds for r in runs):.1f}", f"{sum(r.best_loss for r in runs) / n:.4f}",
                     f"{sum(r.best_loss_accuracy for r in runs) / n:.2%}", f"{gap:+.2f}",
                     f"{sum(r.max_accuracy for r in runs) / n:.2%}", "-" if label == "none" else
                     ("met" if verdicts[label] else "missed")])
    print()
    print(table(rows, ["pruner", "epochs", "saved", "pruned", "wall s", "best val loss", "its accuracy",
                       "pp below none", "best accuracy", "target"]))
    print(f"\n(means over {len(args.seeds)} seed(s); 'its accuracy' is the validation accuracy of the trial with the "
          "lowest validation loss, the one the study selects; 1 validation image = 0.35 pp)")
    print(f"target: >= {TARGET_SAVED:.0%} of epochs saved and accuracy within {TARGET_PP} pp of no pruning: "
          + ", ".join(f"{label} {'met' if ok else 'MISSED'}" for label, ok in verdicts.items() if label != "none"))
    shipped = "median (shipped)"
    if shipped not in results:
        return 0
    seed_rows, savings = [], []
    for seed, b, r in zip(args.seeds, base, results[shipped]):
        savings.append(1 - r.epochs / b.epochs)
        seed_rows.append([str(seed), "yes" if seed in CHOSEN_ON_SEEDS else "no", str(b.epochs), str(r.epochs),
                          f"{savings[-1]:.1%}", f"{b.best_loss_accuracy:.2%}", f"{r.best_loss_accuracy:.2%}",
                          f"{100 * (b.best_loss_accuracy - r.best_loss_accuracy):+.2f}"])
    print("\nper seed, the shipped median pruner against none:")
    print(table(seed_rows, ["seed", "chose the setting", "epochs none", "epochs shipped", "saved", "accuracy none",
                            "accuracy shipped", "pp below none"]))
    print(f"mean of the per-seed savings: {sum(savings) / len(savings):.1%} over seeds {args.seeds}")
    ratio = sum(r.epochs for r in base) / sum(r.epochs for r in results[shipped])
    print(ratio_line(ratio, "epochs trained without pruning / with the shipped median pruner"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
