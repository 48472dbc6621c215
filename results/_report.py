"""A study as files a person can open: `index.html` (interactive plotly charts, the trial table; works
offline because plotly.js is inlined once) and one PNG per chart, drawn by matplotlib's Agg backend.
plotly and matplotlib are imported inside the functions that draw, so other commands stay fast.
"""

from __future__ import annotations

import functools
import html
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from adamtune.errors import NoCompleteTrial
from adamtune.search_spaces import stored_name
from adamtune.storage import Attr, optuna_experimental

from ._format import fmt
from ._outputs import output_dir
from ._record import TrialRecord, full_curve, read_trial
from ._views import StudyView

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
PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}
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


def write_report(study: optuna.Study, out_dir: str | Path) -> list[Path]:
    """Write `index.html` and one PNG per chart into `out_dir` (created); returns the paths written.

    Raises NoCompleteTrial when the study has no complete trial. A chart that needs more than the study
    holds (importances need two complete trials; learning curves need adamtune's `curve` attribute) is
    left out of both and named in the HTML.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if not complete:
        raise NoCompleteTrial(study.study_name, "nothing to report")
    view = StudyView.of(study)
    records = [read_trial(t, view.context) for t in trials]  # already loaded: not read again
    out = output_dir(out_dir, "report -o")
    summaries = {r.number: r.summary for r in records}
    charts = _charts(study, trials, complete, summaries)
    written = []
    with optuna_experimental(), matplotlib.rc_context():  # rcParams and style are restored afterwards
        warnings.filterwarnings("ignore", message="Some regimes for parameter")  # PED-ANOVA on few trials
        warnings.filterwarnings("ignore", message="Attempting to set identical")  # an axis with one value
        plt.style.use("ggplot")  # what optuna's matplotlib plots use; the same look for ours
        for chart in charts:
            if chart.skipped:
                continue
            width, height = PNG_SIZES[chart.name]
            size = (width / PNG_DPI, height / PNG_DPI)
            matplotlib.rcParams.update({"figure.figsize": size, "figure.dpi": PNG_DPI,
                                        "figure.constrained_layout.use": True})
            fig = chart.png()
            try:
                fig.set_size_inches(*size)
                path = out / f"{chart.name}.png"
                fig.savefig(path, dpi=PNG_DPI, facecolor="white")
                written.append(path)
            finally:
                plt.close(fig)
        index = out / "index.html"
        index.write_text(_html(study, view, records, charts), encoding="utf-8")
    return [index, *written]


# ---------------------------------------------------------------- which charts, from which data


def _objective(study: optuna.Study) -> str:
    return study.user_attrs.get("spec", {}).get("objective", "objective value")


def _baseline(trials: Sequence[FrozenTrial]) -> FrozenTrial | None:
    return next((t for t in trials if t.user_attrs.get(Attr.BASELINE)), None)


def _charts(study: optuna.Study, trials: list[FrozenTrial], complete: list[FrozenTrial],
            summaries: dict[int, str]) -> list[Chart]:
    import optuna.visualization as pv
    import optuna.visualization.matplotlib as mv

    target = _objective(study)
    best = study.best_trial
    plotted = _slim_copy(study, trials)  # what Optuna's charts read, many times over: without curves or notes
    baseline = _baseline(trials)
    in_all = [p for p in complete[0].params if all(p in t.params for t in complete)]
    sliced = [p for p in SLICE_PARAMS if any(p in t.params for t in complete)]
    parallel = [p for p in PARALLEL_PARAMS if p in in_all]
    parallel = parallel if len(parallel) >= 2 else in_all[:10]
    pruned = sum(t.state == TrialState.PRUNED for t in trials)
    drawn, rest = _split_lines(trials, best, baseline, study.direction == optuna.study.StudyDirection.MINIMIZE)
    lines_note = (f" The best {IN_FULL} trials and the baseline are drawn in full; the other {len(rest)} as a grey "
                  "band (per epoch: median, 10th to 90th percentile)." if rest else "")
    parallel_study = _best_only(plotted, MAX_PARALLEL)
    parallel_note = (f" Only the best {MAX_PARALLEL} of {len(complete)} complete trials are drawn."
                     if len(complete) > MAX_PARALLEL else "")
    curves = _curve_lines(study, best, baseline)
    importances = functools.cache(lambda: optuna.importance.get_param_importances(plotted, evaluator=_evaluator()))

    charts = [
        Chart("optimization_history", "Optimization history",
              f"{target} of every complete trial and the best so far; the dashed line is the baseline trial "
              "(PyTorch's Adam defaults).",
              lambda: _with_baseline_line(pv.plot_optimization_history(plotted, target_name=target), baseline),
              lambda: _with_baseline_line(mv.plot_optimization_history(plotted, target_name=target), baseline)),
        Chart("intermediate_values", "Intermediate values",
              f"{target} reported after each epoch; {pruned} pruned trials end in a cross where the pruner "
              "stopped them." + lines_note,
              lambda: _intermediate_plotly(study, drawn, rest, best, baseline, summaries),
              lambda: _intermediate_png(study, drawn, rest, best, baseline)),
        Chart("param_importances", "Hyperparameter importances",
              f"How much of the variation in {target} each parameter explains (PED-ANOVA over complete trials).",
              lambda: _importances_plotly(importances(), target), lambda: _importances_png(importances(), target)),
        Chart("parallel_coordinate", "Parallel coordinates",
              "Complete trials across the Adam parameters and a few others; one line per trial, colored by "
              f"{target}." + parallel_note,
              lambda: _relabel_plotly(pv.plot_parallel_coordinate(parallel_study, params=parallel,
                                                                  target_name=target)),
              lambda: _relabel_png(mv.plot_parallel_coordinate(parallel_study, params=parallel,
                                                               target_name=target))),
        Chart("slice", "Slices: " + ", ".join(p.replace(BETA2, "1 - beta2") for p in sliced),
              f"{target} against each Adam parameter, complete trials only. beta2 is searched as 1 - beta2 on a "
              "log scale; weight_decay exists only in trials with use_weight_decay.",
              lambda: _relabel_plotly(pv.plot_slice(plotted, params=sliced, target_name=target)),
              lambda: _relabel_png(mv.plot_slice(plotted, params=sliced, target_name=target))),
        Chart("learning_curves", "Learning curves: best trial against the baseline",
              f"Per-epoch training and validation loss, validation accuracy and learning rate of the best trial "
              f"(#{best.number})" + (f" and the baseline trial (#{baseline.number})." if baseline else "."),
              lambda: _curves_plotly(curves), lambda: _curves_png(curves)),
    ]
    if not any(True for _ in _intermediate_series(trials)):
        charts[1].skipped = "no trial reported intermediate values"
    if len(complete) < 2:
        charts[2].skipped = "needs at least two complete trials"
    if len(parallel) < 2:
        charts[3].skipped = "needs two parameters that every complete trial has"
    if not sliced:
        charts[4].skipped = "the study has none of " + ", ".join(SLICE_PARAMS)
    if not curves[0][2].get("val_loss"):
        charts[5].skipped = f"trial #{best.number} has no per-epoch `curve` attribute (not run by adamtune?)"
    return charts


def _evaluator():
    from optuna.importance import PedAnovaImportanceEvaluator

    return PedAnovaImportanceEvaluator()  # named: optuna's default changed between versions


def _curve_lines(study: optuna.Study, best: FrozenTrial,
                 baseline: FrozenTrial | None) -> list[tuple[str, str, dict[str, list]]]:
    """(label, color, whole per-epoch curve) of the best trial and, when it is another one, the baseline."""
    metric = study.user_attrs.get("spec", {}).get("objective", "val_loss")
    if baseline is not None and baseline.number == best.number:
        return [(f"best = baseline #{best.number}", COLORS["best"], full_curve(best, metric))]
    lines = [(f"best #{best.number}", COLORS["best"], full_curve(best, metric))]
    if baseline is not None:
        lines.append((f"baseline #{baseline.number}", COLORS["baseline"], full_curve(baseline, metric)))
    return lines


def _intermediate_series(trials: list[FrozenTrial]):
    for t in trials:
        if t.intermediate_values and t.state in (TrialState.COMPLETE, TrialState.PRUNED):
            steps = sorted(t.intermediate_values)
            yield t, steps, [t.intermediate_values[s] for s in steps]


def _split_lines(trials: list[FrozenTrial], best: FrozenTrial, baseline: FrozenTrial | None, minimize: bool):
    """(trials drawn as lines, trials summarised as a band): all as lines while there are few."""
    series = [t for t, _, _ in _intermediate_series(trials)]
    if len(series) <= MAX_LINES:
        return series, []
    sign = 1 if minimize else -1
    ranked = sorted((t for t in series if t.state == TrialState.COMPLETE and t.value is not None),
                    key=lambda t: (sign * t.value, t.number))
    keep = {t.number for t in ranked[:IN_FULL]} | {best.number} | ({baseline.number} if baseline else set())
    return [t for t in series if t.number in keep], [t for t in series if t.number not in keep]


def _band(rest: list[FrozenTrial]) -> tuple[list[int], list[float], list[float], list[float]]:
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


def _slim_copy(study: optuna.Study, trials: list[FrozenTrial]) -> optuna.Study:
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


def _best_only(study: optuna.Study, k: int) -> optuna.Study:
    """The study itself, or an in-memory copy holding only its `k` best complete trials (charts drawn from a
    Study object cannot be given a subset otherwise)."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) <= k:
        return study
    sign = 1 if study.direction == optuna.study.StudyDirection.MINIMIZE else -1
    best = sorted(complete, key=lambda t: (sign * t.value, t.number))[:k]  # type: ignore[operator]
    return _slim_copy(study, best)


def _log_scale(trials: list[FrozenTrial]) -> bool:
    values = [v for t in trials for v in t.intermediate_values.values()]
    return bool(values) and min(values) > 0 and max(values) / min(values) > 10


# ---------------------------------------------------------------- plotly (the HTML)


def _with_baseline_line(fig_or_ax, baseline: FrozenTrial | None):
    """A dashed horizontal line at the baseline trial's value, on a plotly figure or a matplotlib Axes."""
    if baseline is None or baseline.state != TrialState.COMPLETE:
        return fig_or_ax if hasattr(fig_or_ax, "to_html") else fig_or_ax.figure
    label = f"baseline #{baseline.number}: {baseline.value:.4f}"
    if hasattr(fig_or_ax, "to_html"):
        fig_or_ax.add_hline(y=baseline.value, line_dash="dash", line_color=COLORS["baseline"],
                            annotation_text=label, annotation_position="top right")
        return fig_or_ax
    fig_or_ax.axhline(baseline.value, linestyle="--", color=COLORS["baseline"], label=label)
    fig_or_ax.legend(loc="upper right")
    return fig_or_ax.figure


def _importances_plotly(importances: dict[str, float], target: str):
    """Optuna's own importance chart computes each parameter's distribution from every trial for its
    hover text (minutes on 10,000 trials); the bars are the same."""
    import plotly.graph_objects as go

    names = list(importances)[::-1]  # most important on top
    fig = go.Figure(go.Bar(x=[importances[n] for n in names], y=[LABELS.get(n, n) for n in names],
                           orientation="h", marker={"color": COLORS["complete"]},
                           hovertemplate="%{y}: %{x:.3f}<extra></extra>"))
    fig.update_layout(title="Hyperparameter importances", xaxis_title=f"importance for {target}",
                      template="plotly_white")
    return fig


def _importances_png(importances: dict[str, float], target: str):
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.add_subplot()
    names = list(importances)[::-1]
    ax.barh([LABELS.get(n, n) for n in names], [importances[n] for n in names], color=COLORS["complete"])
    ax.set(title="Hyperparameter importances", xlabel=f"importance for {target}")
    ax.grid(True, axis="x", alpha=0.3)
    return fig


def _relabel_plotly(fig):
    """Axis titles: `one_minus_beta2` says what it is."""
    def relabel(axis) -> None:  # slice: one axis title per parameter; parallel coordinates: tick labels
        axis.update(title_text=LABELS.get(axis.title.text, axis.title.text))
        if axis.ticktext:
            axis.update(ticktext=[LABELS.get(text, text) for text in axis.ticktext])

    fig.for_each_xaxis(relabel)
    return fig


def _intermediate_plotly(study, trials, rest, best, baseline, summaries: dict[int, str]):
    import plotly.graph_objects as go

    fig = go.Figure()
    if rest:
        steps, low, mid, high = _band(rest)
        fig.add_trace(go.Scatter(x=steps + steps[::-1], y=high + low[::-1], fill="toself", mode="none",
                                 fillcolor="rgba(153,153,153,0.3)", name=f"other {len(rest)} trials (10-90%)"))
        fig.add_trace(go.Scatter(x=steps, y=mid, mode="lines", line={"color": COLORS["rest"]},
                                 name=f"other {len(rest)} trials (median)"))
    shown = set()
    for t, steps, values in _intermediate_series(trials):
        kind, color, width = _intermediate_style(t, best, baseline)
        fig.add_trace(go.Scatter(
            x=steps, y=values, mode="lines", name=kind, legendgroup=kind, showlegend=kind not in shown,
            line={"color": color, "width": width, "dash": "dot" if t.state == TrialState.PRUNED else "solid"},
            opacity=1.0 if width > 1.5 else 0.6, hovertext=f"trial #{t.number} ({t.state.name.lower()}): "
            + html.escape(summaries.get(t.number, "")), hoverinfo="text+x+y"))
        shown.add(kind)
        if t.state == TrialState.PRUNED:
            fig.add_trace(go.Scatter(x=steps[-1:], y=values[-1:], mode="markers", showlegend=False,
                                     legendgroup=kind, marker={"symbol": "x", "size": 10, "color": color},
                                     hovertext=f"trial #{t.number} pruned", hoverinfo="text"))
    fig.update_layout(title="Intermediate values", xaxis_title="epoch", yaxis_title=_objective(study),
                      template="plotly_white")
    if _log_scale(trials + rest):
        fig.update_yaxes(type="log")
    return fig


def _intermediate_style(t: FrozenTrial, best: FrozenTrial, baseline: FrozenTrial | None) -> tuple[str, str, float]:
    if t.number == best.number:
        return f"best #{t.number}", COLORS["best"], 3.0
    if baseline is not None and t.number == baseline.number:
        return f"baseline #{t.number}", COLORS["baseline"], 3.0
    if t.state == TrialState.PRUNED:
        return "pruned", COLORS["pruned"], 1.2
    return "complete", COLORS["complete"], 1.2


def _curves_plotly(lines):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=3, subplot_titles=("loss", "validation accuracy", "learning rate"))
    for label, color, curve in lines:
        epochs = list(range(len(curve.get("val_loss", []))))
        for col, key, dash, name in ((1, "train_loss", "dash", "train loss"), (1, "val_loss", "solid", "val loss"),
                                     (2, "val_accuracy", "solid", "val accuracy"), (3, "lr", "solid", "lr")):
            if curve.get(key):
                fig.add_trace(go.Scatter(x=epochs, y=curve[key], mode="lines+markers", name=f"{label} {name}",
                                         line={"color": color, "dash": dash}, marker={"size": 4}), row=1, col=col)
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(type="log", row=1, col=3)
    fig.update_layout(title="Best trial against the baseline trial", template="plotly_white")
    return fig


# ---------------------------------------------------------------- matplotlib (the PNGs)


def _relabel_png(axes):
    """Axis titles and parameter tick labels say what `one_minus_beta2` is; log axes label decades only."""
    import numpy as np
    from matplotlib.ticker import NullFormatter

    axes = np.atleast_1d(axes).ravel()
    for ax in axes:
        if ax.get_xlabel() in LABELS:
            ax.set_xlabel(LABELS[ax.get_xlabel()])
        if ax.get_xscale() == "log":
            ax.xaxis.set_minor_formatter(NullFormatter())
        ticks = [t.get_text() for t in ax.get_xticklabels()]
        if any(t in LABELS for t in ticks):
            ax.set_xticks(ax.get_xticks(), labels=[LABELS.get(t, t).replace(" (", "\n(") for t in ticks])
    return axes[0].figure


def _intermediate_png(study, trials, rest, best, baseline):
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator

    fig = Figure()
    ax = fig.add_subplot()
    if rest:
        steps, low, mid, high = _band(rest)
        ax.fill_between(steps, low, high, color=COLORS["rest"], alpha=0.3, linewidth=0)
        ax.plot(steps, mid, color=COLORS["rest"], linewidth=1.5)
    # Drawn back to front: the many thin lines first, the best and baseline trials on top.
    order = sorted(_intermediate_series(trials), key=lambda s: _intermediate_style(s[0], best, baseline)[2])
    for t, steps, values in order:
        _, color, width = _intermediate_style(t, best, baseline)
        pruned = t.state == TrialState.PRUNED
        ax.plot(steps, values, color=color, linewidth=width, linestyle=":" if pruned else "-",
                alpha=1.0 if width > 1.5 else 0.6)
        if pruned:
            ax.plot(steps[-1], values[-1], marker="x", markersize=8, markeredgewidth=2, color=color)
    handles = [Line2D([], [], color=COLORS["complete"], label="complete"),
               Line2D([], [], color=COLORS["pruned"], linestyle=":", marker="x", label="pruned (cross: stopped)"),
               Line2D([], [], color=COLORS["best"], linewidth=3, label=f"best #{best.number}")]
    if baseline is not None and baseline.number != best.number:
        handles.append(Line2D([], [], color=COLORS["baseline"], linewidth=3, label=f"baseline #{baseline.number}"))
    if rest:
        handles.append(Patch(color=COLORS["rest"], alpha=0.5, label=f"other {len(rest)} trials: median, 10-90%"))
    ax.legend(handles=handles, loc="upper right")
    if _log_scale(trials + rest):
        ax.set_yscale("log")
    ax.set(title=f"Intermediate values of {study.study_name}", xlabel="epoch", ylabel=_objective(study))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, alpha=0.3)
    return fig


def _curves_png(lines):
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure()
    axes = fig.subplots(1, 3)
    for label, color, curve in lines:
        epochs = list(range(len(curve.get("val_loss", []))))
        if curve.get("train_loss"):
            axes[0].plot(epochs, curve["train_loss"], color=color, linestyle="--", label=f"{label} train")
        if curve.get("val_loss"):
            axes[0].plot(epochs, curve["val_loss"], color=color, marker=".", label=f"{label} validation")
        if curve.get("val_accuracy"):
            axes[1].plot(epochs, curve["val_accuracy"], color=color, marker=".", label=label)
        if curve.get("lr"):
            axes[2].plot(epochs, curve["lr"], color=color, marker=".", label=label)
    for ax, title in zip(axes, ("loss", "validation accuracy", "learning rate")):
        ax.set(title=title, xlabel="epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    axes[2].set_yscale("log")
    fig.suptitle("Best trial against the baseline trial (PyTorch's Adam defaults)")
    return fig


# ---------------------------------------------------------------- the page


def _html(study: optuna.Study, view: StudyView, records: list[TrialRecord], charts: list[Chart]) -> str:
    from plotly.offline import get_plotlyjs

    e = html.escape
    base = view.context.base
    best, baseline = view.best, view.baseline
    counts = view.counts
    sections = []
    for chart in charts:
        if chart.skipped:
            body = f'<p class="skipped">Not drawn: {e(chart.skipped)}.</p>'
        else:
            fig = chart.plotly()
            fig.update_layout(height=PNG_SIZES[chart.name][1], margin={"l": 60, "r": 30, "t": 60, "b": 60})
            body = fig.to_html(full_html=False, include_plotlyjs=False, config=PLOTLY_CONFIG,
                               div_id=f"chart-{chart.name}")
            body += f'<p class="png"><a href="{chart.name}.png">{chart.name}.png</a></p>'
        sections.append(f'<section id="{chart.name}"><h2>{e(chart.title)}</h2><p>{e(chart.caption)}</p>{body}'
                        "</section>")
    rows = [_trial_row(t, best, anchor=True) for t in records]
    compared = [best] + ([baseline] if baseline is not None and baseline.number != best.number else [])
    comparison = [_trial_row(t, best) for t in compared]
    params = "".join(f"<tr><td>{e(k)}</td><td>{e(fmt(v))}</td></tr>" for k, v in best.params.items())
    header = ("<tr><th>#</th><th>state</th><th>value</th><th>val_accuracy</th><th>epochs</th><th>seconds</th>"
              "<th>configuration</th><th>note</th></tr>")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{e(study.study_name)}: adamtune report</title>
<style>{_CSS}</style>
<script type="text/javascript">{get_plotlyjs()}</script>
</head>
<body>
<h1>Study {e(study.study_name)}</h1>
<p>{e(str(base.get("dataset", "?")))}/{e(str(base.get("model", "?")))}, {e(str(base.get("epochs", "?")))} epochs,
{view.direction} {e(_objective(study))}. {len(records)} trials: {counts["complete"]} complete,
{counts["pruned"]} pruned, {counts["fail"]} failed,
{counts["running"] + counts["waiting"]} running or waiting.</p>
<h2>Best trial against the baseline</h2>
<table class="trials">{header}{"".join(comparison)}</table>
<h3>Best trial #{best.number} sampled</h3>
<table class="params">{params}</table>
{"".join(sections)}
<section id="trials"><h2>All trials</h2>
<table class="trials">{header}{"".join(rows)}</table></section>
</body>
</html>
"""


def _trial_row(t: TrialRecord, best: TrialRecord, anchor: bool = False) -> str:
    note = "; ".join(x for x in ("best" if t.number == best.number else "", t.note) if x)
    cells = [t.number, t.state, t.value, t.val_accuracy, t.epochs, t.seconds, t.summary, note]
    row_id = f' id="trial-{t.number}"' if anchor else ""  # in the table of all trials only: ids are unique
    return (f'<tr class="{t.state}"{row_id}>'
            + "".join(f"<td>{html.escape(fmt(c))}</td>" for c in cells) + "</tr>")


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1500px;
       padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
tr.pruned td { color: #a04a00; }
tr.fail td { color: #b00020; }
section { margin-top: 2.5em; }
p.skipped { color: #a04a00; font-style: italic; }
p.png { font-size: 0.85em; }
"""
