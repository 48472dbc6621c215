"""Which charts a report holds, each drawn both ways (plotly for the HTML, matplotlib for its PNG), and
why one is left out when the study cannot fill it."""

from __future__ import annotations

import functools

import optuna
from optuna.trial import FrozenTrial, TrialState

from ._report_data import (
    BETA2,
    COLORS,
    IN_FULL,
    MAX_PARALLEL,
    PARALLEL_PARAMS,
    SLICE_PARAMS,
    Chart,
    baseline_trial,
    best_only,
    curve_lines,
    importance_evaluator,
    intermediate_series,
    objective_name,
    slim_copy,
    split_lines,
)
from ._report_plotly import curves_plotly, importances_plotly, intermediate_plotly, relabel_plotly
from ._report_png import curves_png, importances_png, intermediate_png, relabel_png


def report_charts(study: optuna.Study, trials: list[FrozenTrial], complete: list[FrozenTrial],
                  summaries: dict[int, str]) -> list[Chart]:
    import optuna.visualization as pv
    import optuna.visualization.matplotlib as mv

    target = objective_name(study)
    best = study.best_trial
    plotted = slim_copy(study, trials)  # what Optuna's charts read, many times over: without curves or notes
    baseline = baseline_trial(trials)
    in_all = [p for p in complete[0].params if all(p in t.params for t in complete)]
    sliced = [p for p in SLICE_PARAMS if any(p in t.params for t in complete)]
    parallel = [p for p in PARALLEL_PARAMS if p in in_all]
    parallel = parallel if len(parallel) >= 2 else in_all[:10]
    pruned = sum(t.state == TrialState.PRUNED for t in trials)
    drawn, rest = split_lines(trials, best, baseline, study.direction == optuna.study.StudyDirection.MINIMIZE)
    lines_note = (f" The best {IN_FULL} trials and the baseline are drawn in full; the other {len(rest)} as a grey "
                  "band (per epoch: median, 10th to 90th percentile)." if rest else "")
    parallel_study = best_only(plotted, MAX_PARALLEL)
    parallel_note = (f" Only the best {MAX_PARALLEL} of {len(complete)} complete trials are drawn."
                     if len(complete) > MAX_PARALLEL else "")
    curves = curve_lines(study, best, baseline)
    importances = functools.cache(lambda: optuna.importance.get_param_importances(plotted,
                                                                                  evaluator=importance_evaluator()))

    charts = [
        Chart("optimization_history", "Optimization history",
              f"{target} of every complete trial and the best so far; the dashed line is the baseline trial "
              "(PyTorch's Adam defaults).",
              lambda: with_baseline_line(pv.plot_optimization_history(plotted, target_name=target), baseline),
              lambda: with_baseline_line(mv.plot_optimization_history(plotted, target_name=target), baseline)),
        Chart("intermediate_values", "Intermediate values",
              f"{target} reported after each epoch; {pruned} pruned trials end in a cross where the pruner "
              "stopped them." + lines_note,
              lambda: intermediate_plotly(study, drawn, rest, best, baseline, summaries),
              lambda: intermediate_png(study, drawn, rest, best, baseline)),
        Chart("param_importances", "Hyperparameter importances",
              f"How much of the variation in {target} each parameter explains (PED-ANOVA over complete trials).",
              lambda: importances_plotly(importances(), target), lambda: importances_png(importances(), target)),
        Chart("parallel_coordinate", "Parallel coordinates",
              "Complete trials across the Adam parameters and a few others; one line per trial, colored by "
              f"{target}." + parallel_note,
              lambda: relabel_plotly(pv.plot_parallel_coordinate(parallel_study, params=parallel,
                                                                 target_name=target)),
              lambda: relabel_png(mv.plot_parallel_coordinate(parallel_study, params=parallel,
                                                              target_name=target))),
        Chart("slice", "Slices: " + ", ".join(p.replace(BETA2, "1 - beta2") for p in sliced),
              f"{target} against each Adam parameter, complete trials only. beta2 is searched as 1 - beta2 on a "
              "log scale; weight_decay exists only in trials with use_weight_decay.",
              lambda: relabel_plotly(pv.plot_slice(plotted, params=sliced, target_name=target)),
              lambda: relabel_png(mv.plot_slice(plotted, params=sliced, target_name=target))),
        Chart("learning_curves", "Learning curves: best trial against the baseline",
              f"Per-epoch training and validation loss, validation accuracy and learning rate of the best trial "
              f"(#{best.number})" + (f" and the baseline trial (#{baseline.number})." if baseline else "."),
              lambda: curves_plotly(curves), lambda: curves_png(curves)),
    ]
    if not any(True for _ in intermediate_series(trials)):
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



def with_baseline_line(fig_or_ax, baseline: FrozenTrial | None):
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
