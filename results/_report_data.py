"""What the report's charts are drawn from, whichever output draws them: the chart list's entries, the
trials each chart shows (a band for the many, the best and the baseline in full), the learning curves,
the sizes, colours and labels both the HTML and the PNGs use."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from adamtune.search_spaces import stored_name
from adamtune.storage import Attr

from ._record import full_curve

PNG_DPI = 100


# Every PNG has exactly this many pixels (width, height); the HTML charts use the same height.
PNG_SIZES = {
    "optimization_history": (1000, 600),
    "intermediate_values": (1000, 600),
    "param_importances": (1000, 700),
    "parallel_coordinate": (1400, 650),
    "slice": (1600, 480),
    "learning_curves": (1500, 480),
}


BETA2 = stored_name("beta2", log_complement=True)  # beta2 as Optuna's charts name it: searched as 1 - beta2
SLICE_PARAMS = ("lr", "beta1", "beta2", BETA2, "weight_decay")


PARALLEL_PARAMS = ("optimizer", "lr", "beta1", "beta2", BETA2, "eps", "amsgrad", "scheduler",
                   "dropout", "batch_size", "width")


LABELS = {BETA2: "1 - beta2 (log scale)", "weight_decay": "weight_decay (when use_weight_decay)"}


COLORS = {"best": "#1b9e77", "baseline": "#7570b3", "complete": "#4c72b0", "pruned": "#d95f02", "rest": "#999999"}


# Past this many lines a chart of one line per trial shows a smear: then the best IN_FULL trials and the
# baseline are drawn in full and the rest as a band (per epoch: median, 10th to 90th percentile).
MAX_LINES = 100


IN_FULL = 20


# Parallel coordinates draw at most this many complete trials (the best ones); the caption says so.
MAX_PARALLEL = 500


@dataclass
class Chart:
    name: str  # file stem of the PNG and id of the HTML chart
    title: str
    caption: str
    plotly: Callable[[], Any]  # -> plotly Figure
    png: Callable[[], Any]  # -> matplotlib Figure
    skipped: str = ""  # why the chart is not drawn



def objective_name(study: optuna.Study) -> str:
    return study.user_attrs.get("spec", {}).get("objective", "objective value")



def baseline_trial(trials: Sequence[FrozenTrial]) -> FrozenTrial | None:
    return next((t for t in trials if t.user_attrs.get(Attr.BASELINE)), None)



def importance_evaluator():
    from optuna.importance import PedAnovaImportanceEvaluator

    return PedAnovaImportanceEvaluator()  # named: optuna's default changed between versions



def curve_lines(study: optuna.Study, best: FrozenTrial,
                baseline: FrozenTrial | None) -> list[tuple[str, str, dict[str, list]]]:
    """(label, color, whole per-epoch curve) of the best trial and, when it is another one, the baseline."""
    metric = study.user_attrs.get("spec", {}).get("objective", "val_loss")
    if baseline is not None and baseline.number == best.number:
        return [(f"best = baseline #{best.number}", COLORS["best"], full_curve(best, metric))]
    lines = [(f"best #{best.number}", COLORS["best"], full_curve(best, metric))]
    if baseline is not None:
        lines.append((f"baseline #{baseline.number}", COLORS["baseline"], full_curve(baseline, metric)))
    return lines



def intermediate_series(trials: list[FrozenTrial]):
    for t in trials:
        if t.intermediate_values and t.state in (TrialState.COMPLETE, TrialState.PRUNED):
            steps = sorted(t.intermediate_values)
            yield t, steps, [t.intermediate_values[s] for s in steps]



def split_lines(trials: list[FrozenTrial], best: FrozenTrial, baseline: FrozenTrial | None, minimize: bool):
    """(trials drawn as lines, trials summarised as a band): all as lines while there are few."""
    series = [t for t, _, _ in intermediate_series(trials)]
    if len(series) <= MAX_LINES:
        return series, []
    sign = 1 if minimize else -1
    ranked = sorted((t for t in series if t.state == TrialState.COMPLETE and t.value is not None),
                    key=lambda t: (sign * t.value, t.number))
    keep = {t.number for t in ranked[:IN_FULL]} | {best.number} | ({baseline.number} if baseline else set())
    return [t for t in series if t.number in keep], [t for t in series if t.number not in keep]



def band(rest: list[FrozenTrial]) -> tuple[list[int], list[float], list[float], list[float]]:
    """Per epoch over `rest`: (epochs, 10th percentile, median, 90th percentile)."""
    import numpy as np

    by_step: dict[int, list[float]] = {}
    for t in rest:
        for step, value in t.intermediate_values.items():
            if value is not None and np.isfinite(value):
                by_step.setdefault(step, []).append(value)
    steps = sorted(by_step)
    low, mid, high = ([float(np.percentile(by_step[s], q)) for s in steps] for q in (10, 50, 90))
    return steps, low, mid, high



def slim_copy(study: optuna.Study, trials: list[FrozenTrial]) -> optuna.Study:
    """An in-memory copy of the complete trials with only what Optuna's charts read (value, params): each
    chart deep-copies every trial, some once per parameter, which with 10,000 trials and their per-epoch
    curves took minutes."""
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # "A new study created in memory" is noise here
    try:
        copy = optuna.create_study(direction=study.direction)
    finally:
        optuna.logging.set_verbosity(level)
    copy.add_trials([optuna.trial.create_trial(state=t.state, value=t.value, params=t.params,
                                               distributions=t.distributions)
                     for t in trials if t.state == TrialState.COMPLETE])
    return copy



def best_only(study: optuna.Study, k: int) -> optuna.Study:
    """The study itself, or an in-memory copy holding only its `k` best complete trials (charts drawn from a
    Study object cannot be given a subset otherwise)."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) <= k:
        return study
    sign = 1 if study.direction == optuna.study.StudyDirection.MINIMIZE else -1
    best = sorted(complete, key=lambda t: (sign * t.value, t.number))[:k]  # type: ignore[operator]
    return slim_copy(study, best)



def log_scale(trials: list[FrozenTrial]) -> bool:
    values = [v for t in trials for v in t.intermediate_values.values()]
    return bool(values) and min(values) > 0 and max(values) / min(values) > 10



def intermediate_style(t: FrozenTrial, best: FrozenTrial, baseline: FrozenTrial | None) -> tuple[str, str, float]:
    if t.number == best.number:
        return f"best #{t.number}", COLORS["best"], 3.0
    if baseline is not None and t.number == baseline.number:
        return f"baseline #{t.number}", COLORS["baseline"], 3.0
    if t.state == TrialState.PRUNED:
        return "pruned", COLORS["pruned"], 1.2
    return "complete", COLORS["complete"], 1.2
