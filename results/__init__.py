"""Everything that reads what trials left behind: the trial record, tables, status, report, dashboard
wiring, artifacts (learning-curve PNG, drawn when opened; config JSON) and CSV. The objective writes the
same record; what a stored value means is asked of `search_spaces`, the record's keys of `storage`."""

from ._artifacts import announce_curve, artifact_store, upload_config, write_note
from ._csv import trials_csv
from ._curve_drawing import CurveDrawingStore
from ._dashboard import is_loopback, serve_dashboard
from ._format import describe, fmt, table
from ._outputs import output_dir, output_file, writing
from ._record import CURVE_KEYS, StudyContext, TrialRecord, curve_to_store, full_curve, own_params, read_trial
from ._report import write_report
from ._status import status_text
from ._tables import best_table, default_selection, studies_table, trials_lines, trials_table
from ._views import StudyView

__all__ = [
    "CURVE_KEYS",
    "CurveDrawingStore",
    "announce_curve",
    "StudyContext",
    "StudyView",
    "TrialRecord",
    "artifact_store",
    "curve_to_store",
    "full_curve",
    "best_table",
    "default_selection",
    "describe",
    "fmt",
    "is_loopback",
    "output_dir",
    "output_file",
    "own_params",
    "read_trial",
    "serve_dashboard",
    "status_text",
    "studies_table",
    "table",
    "trials_csv",
    "trials_lines",
    "trials_table",
    "upload_config",
    "write_note",
    "write_report",
    "writing",
]
