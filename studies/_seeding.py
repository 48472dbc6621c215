"""Each trial draws from a sampler seeded with the study's seed and the trial's number.

Every worker builds its sampler from the study file; seeded with the study's `seed` alone, all of them
(and a worker restarted after Ctrl-C) draw the same sequence, so their random start-up trials repeat each
other's settings and the budget is spent twice on one point. The store hands out each trial number once,
so a sampler built afresh for each trial, seeded from (seed, number), gives every trial a stream of its own
however many workers ask, and one worker with one seed still draws the same trials.

QMC is the exception Optuna documents: its sequence is one per study and every worker must share its seed
(the sample index comes from the study), so only its independent sampler (for parameters outside the joint
space) is seeded per trial.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState


def trial_seed(seed: int, number: int) -> int:
    """The sampler seed of trial `number` of a study seeded `seed` (fits numpy's 32-bit seeds)."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{number}".encode()).digest()[:4], "little")


class TrialSeededSampler(BaseSampler):
    """Delegates each trial to `build(trial_seed(seed, trial.number))`, built when the trial starts."""

    def __init__(self, build: Callable[[int], BaseSampler], seed: int) -> None:
        self.build = build
        self.seed = seed
        self._samplers: dict[int, BaseSampler] = {}  # trial id -> its sampler, from before_trial to after_trial
        self._lock = threading.Lock()

    def _for(self, trial: FrozenTrial) -> BaseSampler:
        with self._lock:
            sampler = self._samplers.get(trial._trial_id)
            if sampler is None:
                sampler = self._samplers[trial._trial_id] = self.build(trial_seed(self.seed, trial.number))
            return sampler

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        with self._lock:
            self._samplers.pop(trial._trial_id, None)  # a fresh stream each time a trial starts here
        self._for(trial).before_trial(study, trial)

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return self._for(trial).infer_relative_search_space(study, trial)

    def sample_relative(self, study: Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        return self._for(trial).sample_relative(study, trial, search_space)

    def sample_independent(self, study: Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        return self._for(trial).sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study: Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        sampler = self._for(trial)
        with self._lock:
            self._samplers.pop(trial._trial_id, None)
        sampler.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        """Nothing to do: each trial's sampler is seeded when the trial starts."""


def qmc_builder(options: dict[str, Any]) -> Callable[[int], BaseSampler]:
    """QMC keeps the study's seed (one sequence per study); its independent sampler gets the trial's."""
    shared = {k: v for k, v in options.items() if k != "independent_sampler"}
    return lambda seed: optuna.samplers.QMCSampler(**shared,
                                                   independent_sampler=optuna.samplers.RandomSampler(seed=seed))
