"""A study as files a person can open: `index.html` (interactive plotly charts, the trial table; works
offline because plotly.js is inlined once) and one PNG per chart, drawn by matplotlib's Agg backend.
plotly and matplotlib are imported inside the functions that draw, so other commands stay fast.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import optuna
from optuna.trial import TrialState

from adamtune.errors import NoCompleteTrial
from adamtune.storage import optuna_experimental

from ._outputs import output_dir
from ._record import read_trial
from ._report_charts import report_charts
from ._report_data import PNG_DPI, PNG_SIZES
from ._report_html import report_page
from ._views import StudyView


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
    charts = report_charts(study, trials, complete, summaries)
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
        index.write_text(report_page(study, view, records, charts), encoding="utf-8")
    return [index, *written]
