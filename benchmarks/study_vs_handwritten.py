"""Study efficiency: adamtune against the study a user writes from Optuna's pytorch_simple example.

Both tune Adam's lr, beta1, beta2 and weight decay (the ranges of search_spaces/adam.yaml, weight
decay log-uniform without its on/off switch) for the article's MLP (64-128-10 on 8x8 digits, ReLU,
batch 64, 20 epochs), on the same train/validation split (`training.load_dataset('digits')`), with
the same sampler (TPE, seed, 6 start-up trials), each for the same wall-clock budget:

  (a) hand-written, as pytorch_simple does it: in-memory study, suggest_* in the objective, data as
      float tensors in [0, 1] through TensorDataset/DataLoader(batch_size=64, shuffle=True), per-epoch
      validation, the last epoch's validation accuracy returned and maximized, no pruning
  (b) adamtune: `studies.run_study` on a temporary SQLite store with a study file restricted to the
      same four parameters; its objective (validation loss), baseline trial and median pruner as shipped

Both sides record, for every COMPLETE trial, when it finished and its validation accuracy (adamtune:
at the trial's best-loss epoch, the weights it keeps); pruned trials count as trials but not as
values. From those best-so-far curves, per seed:

  - the best validation accuracy each side has at equal wall time (a quarter, half and all of the budget)
  - the time each side needs to reach the other side's best value after the full budget
    ("not reached" when it never does within the budget)

Headline ratio: the time (a) needs to reach its own best after the full budget / the time (b) needs
to reach that same value (the full budget when (b) never does), geometric mean over seeds: how many
times sooner adamtune gets to what the hand-written study finds in the whole budget.

The pruner of (b) is read from the shipped quickstart study (studies/digits_mlp.yaml), so the
comparison follows it when it changes. The two sides of a seed run one after the other, and the
order alternates from seed to seed, so a drift in the shared machine's speed hits both alike.

    python -m benchmarks.study_vs_handwritten                  # 3 seeds x 2 x 60 s, ~7 min
    python -m benchmarks.study_vs_handwritten --budget 120 --seeds 0 1 2 3
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import optuna
import torch
import torch.nn.functional as F
from torch import nn

from ._common import OtherLoad, header, ratio_line, table, wait_until_idle

TARGET = 3.0
EPOCHS = 20
FRACTIONS = (0.25, 0.5, 1.0)  # of the budget: when the two sides' best values are compared
STUDY_FILE = """\
name: bench-vs-handwritten
description: the four Adam settings of the hand-written study, ranges as in search_spaces/adam.yaml
dataset: digits
model: mlp
epochs: {epochs}
seed: {seed}
params:
  lr: {{type: float, low: 1.0e-4, high: 3.0e-2, log: true, default: 1.0e-3}}
  beta1: {{type: float, low: 0.8, high: 0.99, default: 0.9}}
  beta2: {{type: float, low: 0.9, high: 0.9999, log_complement: true, default: 0.999}}
  weight_decay: {{type: float, low: 1.0e-6, high: 1.0e-1, log: true}}
sampler: {{type: tpe, n_startup_trials: 6}}
pruner: {pruner}
objective: val_loss
n_trials: 100000
"""


@dataclass
class Outcome:
    trials: int  # finished (COMPLETE + PRUNED)
    complete: int
    finished_at: list[tuple[float, float]]  # (seconds from the start, validation accuracy) per COMPLETE trial

    def best_by(self, seconds: float) -> float:
        """The best validation accuracy of the trials complete by `seconds` after the start."""
        return max((acc for at, acc in self.finished_at if at <= seconds), default=math.nan)

    @property
    def best(self) -> float:
        return self.best_by(math.inf)

    def time_to(self, value: float) -> float | None:
        """When a complete trial first reached `value`; None when none did within the budget."""
        return next((at for at, acc in sorted(self.finished_at) if acc >= value), None)


def shipped_pruner() -> dict:
    """The quickstart study's pruner, as shipped."""
    from adamtune import studies
    from adamtune.studies import load_study_file

    return load_study_file(Path(studies.__file__).parent / "digits_mlp.yaml").pruner


def handwritten(seed: int, budget: float) -> Outcome:
    """(a) The objective as a user writes it after optuna-examples/pytorch/pytorch_simple.py."""
    from adamtune.data import load_dataset

    data = load_dataset("digits")  # only for the split: the same validation set as adamtune's
    train_x, train_y = data.train.images.float() / 16.0, data.train.labels
    valid_x, valid_y = data.val.images.float() / 16.0, data.val.labels

    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("lr", 1e-4, 3e-2, log=True)
        beta1 = trial.suggest_float("beta1", 0.8, 0.99)
        one_minus_beta2 = trial.suggest_float("one_minus_beta2", 1e-4, 0.1, log=True)
        weight_decay = trial.suggest_float("weight_decay", 1e-6, 1e-1, log=True)
        model = nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
        optimizer = torch.optim.Adam(model.parameters(), lr=lr, betas=(beta1, 1 - one_minus_beta2),
                                     weight_decay=weight_decay)
        train_loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(train_x, train_y),
                                                   batch_size=64, shuffle=True)
        valid_loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(valid_x, valid_y),
                                                   batch_size=64, shuffle=False)
        accuracy = 0.0
        for _epoch in range(EPOCHS):
            model.train()
            for images, labels in train_loader:
                optimizer.zero_grad()
                loss = F.cross_entropy(model(images), labels)
                loss.backward()
                optimizer.step()
            model.eval()
            correct = 0
            with torch.no_grad():
                for images, labels in valid_loader:
                    correct += (model(images).argmax(dim=1) == labels).sum().item()
            accuracy = correct / len(valid_y)
        return accuracy

    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=6)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    start = datetime.datetime.now()
    study.optimize(objective, timeout=budget)
    return _outcome(study.get_trials(deepcopy=False), start, lambda t: t.value)


def with_adamtune(seed: int, budget: float, tmp: Path) -> Outcome:
    """(b) adamtune's run_study on a study file restricted to the same four parameters."""
    from adamtune.data import load_dataset
    from adamtune.studies import load_study_file, run_study

    load_dataset("digits")  # cached per process: (a) did not pay for loading either
    path = tmp / f"vs_handwritten_{seed}.yaml"
    pruner = json.dumps(shipped_pruner())  # JSON is YAML: the mapping goes in as one flow line
    path.write_text(STUDY_FILE.format(epochs=EPOCHS, seed=seed, pruner=pruner), encoding="utf-8")
    spec = load_study_file(path)
    start = datetime.datetime.now()
    summary = run_study(spec, f"sqlite:///{tmp / f'vs_handwritten_{seed}.db'}", timeout=budget, device="cpu",
                        progress=False, artifacts=str(tmp / "artifacts"))
    from adamtune.results import StudyView

    accuracy = {t.number: t.val_accuracy for t in StudyView.of(summary.study).trials}
    return _outcome(summary.study.get_trials(deepcopy=False), start, lambda t: accuracy[t.number])


def _outcome(trials, start: datetime.datetime, accuracy_of) -> Outcome:
    finished = [t for t in trials if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)]
    complete = [t for t in finished if t.state == optuna.trial.TrialState.COMPLETE]
    points = [((t.datetime_complete - start).total_seconds(), accuracy_of(t)) for t in complete]
    return Outcome(trials=len(finished), complete=len(complete),
                   finished_at=[(at, acc) for at, acc in points if acc is not None])


def _seconds(value: float | None) -> str:
    return "not reached" if value is None else f"{value:.1f} s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.study_vs_handwritten",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--budget", type=float, default=60.0, help="wall-clock seconds per study (default 60)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                        help="sampler seeds, one pair of studies each (default 0 1 2)")
    parser.add_argument("--quick", action="store_true", help="a 20 s budget")
    args = parser.parse_args(argv)
    budget = 20.0 if args.quick else args.budget
    header("Study efficiency: hand-written pytorch_simple-style study (a) vs adamtune (b)")
    print(f"budget {budget:g} s of wall time per study, sampler seeds {args.seeds}; (b)'s pruner as shipped in "
          f"studies/digits_mlp.yaml: {shipped_pruner()}")
    print("values: validation accuracy of COMPLETE trials ((b): at the best-loss epoch, whose weights it keeps)\n")
    optuna.logging.set_verbosity(logging.WARNING)
    rows, ratios = [], []
    with tempfile.TemporaryDirectory(prefix="adamtune-bench-") as tmp:
        sides = {"(a) hand-written": lambda seed: handwritten(seed, budget),
                 "(b) adamtune": lambda seed: with_adamtune(seed, budget, Path(tmp))}
        for index, seed in enumerate(args.seeds):
            order = list(sides) if index % 2 == 0 else list(reversed(sides))
            outcomes, loads = {}, {}
            for name in order:
                wait_until_idle(10)
                with OtherLoad() as load:
                    outcomes[name] = out = sides[name](seed)
                loads[name] = load.share
                print(f"seed {seed} {name}: {out.trials} trials finished ({out.complete} complete), best validation "
                      f"accuracy {out.best:.2%}, other load {load.share:.0%}", flush=True)
            a, b = outcomes["(a) hand-written"], outcomes["(b) adamtune"]
            for name, own, other in (("(a) hand-written", a, b), ("(b) adamtune", b, a)):
                rows.append([str(seed), name, f"{'first' if order[0] == name else 'second'}", str(own.trials),
                             str(own.complete), *(f"{own.best_by(f * budget):.2%}" for f in FRACTIONS),
                             f"{other.best:.2%}: {_seconds(own.time_to(other.best))}",
                             f"{own.best:.2%}: {_seconds(own.time_to(own.best))}", f"{loads[name]:.0%}"])
            a_own, b_to_a = a.time_to(a.best), b.time_to(a.best)
            # (b) never reaching (a)'s best counts as the full budget: the ratio is then an upper bound.
            ratios.append(a_own / (b_to_a if b_to_a is not None else budget))
    print()
    print(table(rows, ["seed", "study", "ran", "trials", "complete",
                       *(f"best at {f * budget:g} s" for f in FRACTIONS), "time to the other's best",
                       "time to its own best", "other load"]))
    headline = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
    print(f"\nper-seed ratios: {', '.join(f'{r:.1f}x' for r in ratios)} ((a)'s time to its own final best / (b)'s "
          "time to the same value; (b) not reaching it counts as the full budget)")
    print(f"target: >= {TARGET:.0f}x: {'met' if headline >= TARGET else 'MISSED'}")
    print(ratio_line(headline, "(a)'s time to its final best / (b)'s time to that value"
                     + (", geometric mean over seeds" if len(ratios) > 1 else "")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
