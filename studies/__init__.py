"""Study files, sampler/pruner construction, create-or-join, the objective, export and the CLI."""

from ._export import export_trial, load_export, train_from_export
from ._run import create_or_join, run_study
from ._spec import StudyError, StudySpec, load_study_file

__all__ = ["StudyError", "StudySpec", "create_or_join", "export_trial", "load_export", "load_study_file",
           "run_study", "train_from_export"]
