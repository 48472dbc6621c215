"""The report's charts as plotly figures, for index.html (plotly is imported only when one is drawn)."""

from __future__ import annotations

import html

from optuna.trial import TrialState

from ._report_data import COLORS, LABELS, band, intermediate_series, intermediate_style, log_scale, objective_name


def importances_plotly(importances: dict[str, float], target: str):
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



def relabel_plotly(fig):
    """Axis titles: `one_minus_beta2` says what it is."""
    def relabel(axis) -> None:  # slice: one axis title per parameter; parallel coordinates: tick labels
        axis.update(title_text=LABELS.get(axis.title.text, axis.title.text))
        if axis.ticktext:
            axis.update(ticktext=[LABELS.get(text, text) for text in axis.ticktext])

    fig.for_each_xaxis(relabel)
    return fig



def intermediate_plotly(study, trials, rest, best, baseline, summaries: dict[int, str]):
    import plotly.graph_objects as go

    fig = go.Figure()
    if rest:
        steps, low, mid, high = band(rest)
        fig.add_trace(go.Scatter(x=steps + steps[::-1], y=high + low[::-1], fill="toself", mode="none",
                                 fillcolor="rgba(153,153,153,0.3)", name=f"other {len(rest)} trials (10-90%)"))
        fig.add_trace(go.Scatter(x=steps, y=mid, mode="lines", line={"color": COLORS["rest"]},
                                 name=f"other {len(rest)} trials (median)"))
    shown = set()
    for t, steps, values in intermediate_series(trials):
        kind, color, width = intermediate_style(t, best, baseline)
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
    fig.update_layout(title="Intermediate values", xaxis_title="epoch", yaxis_title=objective_name(study),
                      template="plotly_white")
    if log_scale(trials + rest):
        fig.update_yaxes(type="log")
    return fig



def curves_plotly(lines):
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
