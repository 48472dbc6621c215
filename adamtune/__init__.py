"""adamtune: Optuna studies that tune Adam, regularization and augmentation for PyTorch classifiers.

The Python API (the command line is thin over it)::

    import adamtune
    summary = adamtune.run("studies/digits_mlp.yaml", storage="sqlite:///adamtune.db")
    best = adamtune.best("digits_mlp", storage="sqlite:///adamtune.db")      # a TrialRecord
    config = adamtune.export("digits_mlp", storage="sqlite:///adamtune.db", out="best.json")  # also written
    metrics = adamtune.train(config, out="model")                       # or train("best.json", ...)
    model = adamtune.load_model("model")                                # an nn.Module on raw inputs

The rooms are importable as `adamtune.studies`, `adamtune.search_spaces`, `adamtune.training`,
`adamtune.data`, `adamtune.storage` and `adamtune.results`. Nothing heavy (torch, optuna) is imported until it is used.
"""

from __future__ import annotations

from typing import Any

from .errors import AdamtuneError, DataError, InputError, NoCompleteTrial, StorageError, StudyNotFound

_API = ("check", "study_schema", "run", "run_workers", "list_studies", "study", "best", "status", "export",
        "export_csv", "report", "train", "load_model", "predict", "dashboard", "storage_proxy", "resolve_store")

__all__ = ["AdamtuneError", "DataError", "InputError", "NoCompleteTrial", "StorageError", "StudyNotFound", *_API]


def __getattr__(name: str) -> Any:
    """The API functions, imported on first use (so `adamtune --help` does not import torch or optuna)."""
    if name in _API:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'adamtune' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public names, the API functions among them (imported on first use, so not in the namespace yet)."""
    return sorted({*__all__, *(name for name in globals() if name.startswith("__"))})
