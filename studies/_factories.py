"""Samplers and pruners from the study file's `sampler:` and `pruner:` mappings."""

from __future__ import annotations

import inspect

import optuna

from adamtune.storage import optuna_experimental

from ._errors import StudyError
from ._seeding import TrialSeededSampler, qmc_builder

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


def build_sampler(sampler: dict, seed: int, source: str) -> TrialSeededSampler:
    """The named sampler (`sampler["type"]` plus its options), seeded with `seed` unless the options give one,
    built afresh for each trial with that trial's own seed (studies/_seeding.py: workers never repeat each
    other). Bad options fail here, once."""
    options = dict(sampler)
    kind = options.pop("type")
    seed = options.pop("seed", seed)
    _build(source, "sampler", SAMPLERS, kind, {**options, "seed": seed})
    if kind == "qmc":
        build = qmc_builder({**options, "seed": seed})
    else:
        def build(trial_seed: int) -> optuna.samplers.BaseSampler:
            return _build(source, "sampler", SAMPLERS, kind, {**options, "seed": trial_seed})
    return TrialSeededSampler(build, seed)


def build_pruner(pruner: dict, epochs: int, source: str) -> optuna.pruners.BasePruner:
    """The named pruner; `patience: N` wraps it in PatientPruner. Hyperband's max resource is `epochs`."""
    options = dict(pruner)
    kind = options.pop("type")
    patience = options.pop("patience", None)
    if kind == "hyperband":
        options.setdefault("max_resource", epochs)
    built = _build(source, "pruner", PRUNERS, kind, options)
    if patience is None:
        return built
    if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
        raise StudyError(source, "pruner.patience", f"an integer >= 0, got {patience!r}")
    with optuna_experimental():
        return optuna.pruners.PatientPruner(built, patience=patience)


def pruning_startup(pruner: dict) -> int:
    """COMPLETE trials the pruner waits for before it prunes anything (median and percentile: their
    `n_startup_trials`, Optuna's default 5); a packed worker runs no more trials than that at first, or the
    whole first pack would train to the end unpruned."""
    if pruner.get("type") not in ("median", "percentile"):
        return 0
    return int(pruner.get("n_startup_trials", 5))


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
        with optuna_experimental():
            return cls(**options)
    except (TypeError, ValueError, ImportError, ModuleNotFoundError) as exc:
        raise StudyError(source, key, f"{cls.__name__}: {exc}") from None
