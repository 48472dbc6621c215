"""The report's index.html: the study in a few lines, best trial against the baseline, every chart (plotly,
with a link to its PNG) and the table of all trials; plotly.js is inlined once, so it works offline."""

from __future__ import annotations

import html

import optuna

from ._format import fmt
from ._record import TrialRecord
from ._report_data import PNG_SIZES, Chart, objective_name
from ._views import StudyView

PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}


def report_page(study: optuna.Study, view: StudyView, records: list[TrialRecord], charts: list[Chart]) -> str:
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
{view.direction} {e(objective_name(study))}. {len(records)} trials: {counts["complete"]} complete,
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
