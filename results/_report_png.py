"""The report's charts as matplotlib figures, saved as PNGs (matplotlib is imported only when one is drawn)."""

from __future__ import annotations

from optuna.trial import TrialState

from ._report_data import COLORS, LABELS, band, intermediate_series, intermediate_style, log_scale, objective_name


def importances_png(importances: dict[str, float], target: str):
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.add_subplot()
    names = list(importances)[::-1]
    ax.barh([LABELS.get(n, n) for n in names], [importances[n] for n in names], color=COLORS["complete"])
    ax.set(title="Hyperparameter importances", xlabel=f"importance for {target}")
    ax.grid(True, axis="x", alpha=0.3)
    return fig



def relabel_png(axes):
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



def intermediate_png(study, trials, rest, best, baseline):
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator

    fig = Figure()
    ax = fig.add_subplot()
    if rest:
        steps, low, mid, high = band(rest)
        ax.fill_between(steps, low, high, color=COLORS["rest"], alpha=0.3, linewidth=0)
        ax.plot(steps, mid, color=COLORS["rest"], linewidth=1.5)
    # Drawn back to front: the many thin lines first, the best and baseline trials on top.
    order = sorted(intermediate_series(trials), key=lambda s: intermediate_style(s[0], best, baseline)[2])
    for t, steps, values in order:
        _, color, width = intermediate_style(t, best, baseline)
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
    if log_scale(trials + rest):
        ax.set_yscale("log")
    ax.set(title=f"Intermediate values of {study.study_name}", xlabel="epoch", ylabel=objective_name(study))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, alpha=0.3)
    return fig



def curves_png(lines):
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
