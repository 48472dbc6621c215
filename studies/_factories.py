"""Samplers and pruners from the study file's `sampler:` and `pruner:` mappings."""

from __future__ import annotations

import inspect
import warnings

import optuna

from ._spec import StudyError, StudySpec

SAMPLERS = {
    "tpe": optuna.samplers.TPESampler,
    "random": optuna.samplers.RandomSampler,
    "cmaes": optuna.samplers.CmaEsSampler,
    "gp": optuna.samplers.GPSampler,
    "qmc": optuna.samplers.QMCSampler,
}
PRUNERS = {
    "median": optuna.pruners.MedianPruner,
    "percentile": optuna.pruners.PercentilePruner,
    "hyperband": optuna.pruners.HyperbandPruner,
    "successive_halving": optuna.pruners.SuccessiveHalvingPruner,
    "none": optuna.pruners.NopPruner,
}


def build_sampler(spec: StudySpec) -> optuna.samplers.BaseSampler:
    """The named sampler, seeded with the study's seed unless the file gives its own."""
    options = dict(spec.sampler)
    kind = options.pop("type")
    options.setdefault("seed", spec.seed)
    return _build(spec.source, "sampler", SAMPLERS, kind, options)


def build_pruner(spec: StudySpec) -> optuna.pruners.BasePruner:
    """The named pruner; `patience: N` wraps it in PatientPruner. Hyperband's max resource is `epochs`."""
    options = dict(spec.pruner)
    kind = options.pop("type")
    patience = options.pop("patience", None)
    if kind == "hyperband":
        options.setdefault("max_resource", spec.epochs)
    pruner = _build(spec.source, "pruner", PRUNERS, kind, options)
    if patience is None:
        return pruner
    if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
        raise StudyError(spec.source, "pruner.patience", f"an integer >= 0, got {patience!r}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.pruners.PatientPruner(pruner, patience=patience)


def _build(source: str, key: str, registry: dict, kind: str, options: dict):
    if kind not in registry:
        raise StudyError(source, f"{key}.type", f"must be one of {', '.join(registry)}, got {kind!r}")
    cls = registry[kind]
    accepted = set(inspect.signature(cls).parameters)
    for name in options:
        if name not in accepted:
            raise StudyError(source, f"{key}.{name}", f"{cls.__name__} has no option '{name}' "
                             f"(options: {', '.join(sorted(accepted))})")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return cls(**options)
    except (TypeError, ValueError, ImportError, ModuleNotFoundError) as exc:
        raise StudyError(source, key, f"{cls.__name__}: {exc}") from None
