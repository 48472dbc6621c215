"""Study files, sampler/pruner construction, create-or-join, the objective, running workers, export and train.
The solo and the packed worker implement one protocol (`_work.Worker`), so timeouts, signals, a lost store
and retries are handled in one place; the store arrives as one `Store` value, resolved once per command.

Running trials needs torch; `run_study` and its kin are imported on first use, so reading and checking a
study file does not pay for it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._artifacts_dir import ArtifactsDirError, TrialFileError, check_artifacts_dir
from ._errors import StudyError
from ._export import EXPORT_KEYS, export_chosen, export_trial, load_export, train_from_export
from ._join import create_or_join
from ._placement import parse_devices, visible_gpus
from ._prepare import prepare
from ._saved_model import MODEL_FILE, Prediction, load_model, predict
from ._schema import SCHEMA_FILE, study_schema
from ._spec import StudySpec, check_pack, load_study_file
from ._workers import run_local_workers

if TYPE_CHECKING:
    from ._run import RunSummary, run_study
    from ._work import Terminated

__all__ = ["EXPORT_KEYS", "MODEL_FILE", "SCHEMA_FILE", "ArtifactsDirError", "Prediction", "RunSummary", "StudyError",
           "StudySpec", "Terminated", "TrialFileError", "check_artifacts_dir", "check_pack", "create_or_join",
           "export_chosen", "export_trial", "load_export", "load_model", "load_study_file", "parse_devices", "predict",
           "prepare", "run_local_workers", "run_study", "study_schema", "train_from_export", "visible_gpus"]


def __getattr__(name: str) -> Any:
    if name in ("RunSummary", "run_study"):
        from . import _run

        return getattr(_run, name)
    if name == "Terminated":
        from ._work import Terminated

        return Terminated
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
