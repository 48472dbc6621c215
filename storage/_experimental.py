"""Optuna marks features adamtune relies on as experimental (heartbeats and their retries, the journal
file, `PatientPruner`, `PartialFixedSampler`, some samplers, PED-ANOVA importances): they are Optuna's
documented answers, and their warning tells a user nothing to act on, so it is silenced in one way."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator


@contextlib.contextmanager
def optuna_experimental() -> Iterator[None]:
    """Use Optuna's experimental features without their warning; other filters set inside last as long."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield
