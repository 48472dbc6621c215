"""Datasets as tensors on the device: the built-ins, and the user's image folders, arrays and Python entry
points (with the image cache and the data's fingerprint), split with one fixed seed. It knows nothing of
models or Optuna; `training` reads what it loads.

`DataSource`, the catalog of built-in datasets, entries and the errors import without torch (`adamtune
check` needs only them); the names that need torch (or numpy: `TASKS`) are imported on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._catalog import BUILTIN_DATASETS, DatasetFacts
from ._entry import ENTRY_PATTERN, check_entry, is_entry, load_entry, one_line, trust_entries
from ._errors import DataError, SourceError
from ._sources import DATA_TYPES, KIND_SHAPES, DataFacts, DataSource, dataset_schema
from ._stored_file import StoredFile

if TYPE_CHECKING:
    from ._datasets import BUILTIN_LOADERS, Dataset, Split, load_dataset
    from ._inputs import Inputs, InputSpec, read_inputs
    from ._memory import free_memory, gib
    from ._targets import TASKS

_LAZY = {"TASKS": "_targets",
         "BUILTIN_LOADERS": "_datasets", "Dataset": "_datasets", "Split": "_datasets", "load_dataset": "_datasets",
         "free_memory": "_memory", "gib": "_memory", "Inputs": "_inputs", "InputSpec": "_inputs",
         "read_inputs": "_inputs"}

__all__ = ["BUILTIN_DATASETS", "BUILTIN_LOADERS", "DATA_TYPES", "ENTRY_PATTERN", "KIND_SHAPES", "TASKS", "DataError",
           "DataFacts", "DataSource", "Dataset", "DatasetFacts", "InputSpec", "Inputs", "SourceError", "Split",
           "StoredFile", "check_entry", "dataset_schema", "free_memory", "gib", "is_entry", "load_dataset",
           "load_entry", "one_line", "read_inputs", "trust_entries"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
