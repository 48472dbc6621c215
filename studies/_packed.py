"""A worker that trains K trials at once (`--pack K`): each is still its own Optuna trial, asked and told
through the objective's own steps (sampling, seed, note, reports, pruning, checkpoint, retry, curve); the
pack (training/pack.py) trains them as one program, an epoch at a time.

Trials in a pack share their structure (model, width, activation, batch size; the user model's own values).
The first trial of a pack is asked freely; the next K - 1 are asked with its structural values fixed
(`PartialFixedSampler`), every other value sampled as usual. After K trials of one structure the next trial
is asked freely again; if its structure differs it waits (RUNNING, beating) until the pack drains, then
starts the next pack. A queued trial (a retry, the baseline) keeps its own values and waits the same way.
"""

from __future__ import annotations

import copy
import logging
import time
import warnings
from collections.abc import Callable

import optuna
from optuna.trial import TrialState

from adamtune.results import Attr
from adamtune.storage import TrialBeats, study_rows
from adamtune.training.config import TrainConfig

from ._factories import pruning_startup
from ._objective import Objective, TimedOut, TrialPlan
from ._spec import StudySpec

log = logging.getLogger("adamtune")
SHARED_PARAMS = ("batch_size", "width", "activation")  # sampled values that fix a pack's structure


class PackedWorker:
    """Runs the study's trials `size` at a time until the budget is spent or the deadline passes."""

    def __init__(self, study: optuna.Study, objective: Objective, spec: StudySpec, size: int, budget: int,
                 after_trial: Callable[[optuna.Study, optuna.trial.FrozenTrial], None]) -> None:
        from adamtune.training.pack import Pack

        self.study, self.objective, self.spec = study, objective, spec
        self.size, self.budget = size, budget
        self.after_trial = after_trial
        self.startup = pruning_startup(spec.pruner)
        self.pack = Pack(objective.data, device=objective.device, model_source=spec.model_source,
                         checkpoint_every=spec.checkpoint_every)
        self.live: dict[int, TrialPlan] = {}  # trial number -> plan, training in the pack
        self.held: list[TrialPlan] = []  # asked, waiting for the pack to drain (another structure)
        self.anchor: dict[str, object] | None = None  # the pack's structural params (Optuna names)
        self.started = 0  # trials started with the anchor's structure
        self.beats = TrialBeats(study)

    @property
    def active(self) -> list[TrialPlan]:
        return [*self.live.values(), *self.held]

    def run(self, deadline: float | None) -> None:
        try:
            while True:
                self._fill()
                if not self.live:
                    return
                self._epoch()
                if deadline is not None and time.monotonic() > deadline and self.live:
                    self.pack.save_checkpoints()  # between epochs: each retry resumes where its trial stopped
                    raise TimedOut()
        finally:
            self.beats.stop()

    # ---- starting trials -------------------------------------------------------------------------

    def _fill(self) -> None:
        """Start trials until the pack is full, the budget is spoken for, or another structure waits. Until the
        pruner has its startup trials COMPLETE, only as many trials run as it still waits for."""
        counts = study_rows(self.study).counts()
        room = self.budget - counts["COMPLETE"] - counts["PRUNED"] - len(self.active)
        size = self.size if counts["COMPLETE"] >= self.startup else min(self.size, self.startup - counts["COMPLETE"])
        if size > len(self.live) and room > 0:
            _fail_stale(self.study)
        while len(self.live) < size:
            joining = [plan for plan in self.held if not self.live or self.pack.can_take(plan.config, plan.values)]
            if joining:  # a waiting trial starts the next pack, or joins one of its own structure
                self.held.remove(joining[0])
                self._start(joining[0])
                continue
            if self.held or room <= 0:
                return
            plan = self._ask()
            self.objective.current = None  # the packed worker retries its own trials (retry_active)
            plan.trial.set_user_attr(Attr.PACKED, self.size)
            self.beats.add(plan.trial._trial_id)
            room -= 1
            if self.live and not self.pack.can_take(plan.config, plan.values):
                self.held.append(plan)
            else:
                self._start(plan)

    def _ask(self) -> TrialPlan:
        """A new trial, begun (its values sampled): with the pack's structure while this structure has had
        fewer than `size` trials, freely otherwise."""
        sampler = self.study.sampler
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            # Optuna warns that heartbeats are meant for `optimize`; this worker beats its trials itself.
            warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")
            if self.anchor is not None and self.live and self.started < self.size:
                self.study.sampler = optuna.samplers.PartialFixedSampler(self.anchor, sampler)
            try:
                return self.objective.begin(self.study.ask())
            finally:
                self.study.sampler = sampler

    def _start(self, plan: TrialPlan) -> None:
        number = plan.trial.number
        if not self.live:
            self.anchor = _structural(plan, self.spec)
            self.started = 0
        self.started += 1
        self.live[number] = plan
        restored = self.pack.add(number, plan.config, plan.values, plan.checkpoint)
        self.objective.started(plan, self.pack.slot_result(number))
        try:
            for record in restored:  # reported again, as fit does: the curve has no gap
                self.objective.epoch_done(plan, record)
        except optuna.TrialPruned:
            self._end(plan, TrialState.PRUNED)

    # ---- one epoch -------------------------------------------------------------------------------

    def _epoch(self) -> None:
        outcomes = self.pack.epoch()
        view = _EpochView(self.study)
        for outcome in outcomes:
            plan = self.live[outcome.key]  # type: ignore[index]
            # Each slot's pruning decision reads the study through the epoch's view: the other trials are
            # read from the store once per pack epoch, not once per slot (Trial.should_prune reads trial.study).
            plan.trial.study = view  # type: ignore[assignment]
            try:
                if outcome.error is not None:
                    try:
                        self.objective.diverged(plan, outcome.error, draw_curve=False)
                    except optuna.TrialPruned:
                        self._tell(plan, TrialState.PRUNED)
                        continue
                assert outcome.record is not None
                self.objective.epoch_done(plan, outcome.record)
                if outcome.finished:
                    value = self.objective.complete(plan, self.pack.result(outcome.key), draw_curve=False)
                    self._end(plan, TrialState.COMPLETE, value)
            except optuna.TrialPruned:
                self._end(plan, TrialState.PRUNED)
            except optuna.exceptions.UpdateFinishedTrialError:
                log.warning("trial %s outlived its heartbeat grace period and was failed and retried by another "
                            "worker; its slot goes to the next trial", plan.trial.number)
                self._drop(plan)
            finally:
                plan.trial.study = self.study

    def _end(self, plan: TrialPlan, state: TrialState, value: float | None = None) -> None:
        """A trial that ended in its slot; a pruned one's curve and checkpoint are settled here (a complete
        one's by `Objective.complete`)."""
        if state == TrialState.PRUNED:
            self.objective.finish(plan, draw_curve=False)
        self._tell(plan, state, value)

    def _tell(self, plan: TrialPlan, state: TrialState, value: float | None = None) -> None:
        frozen = self.study.tell(plan.trial, value, state=state)
        self._drop(plan)
        self.after_trial(self.study, frozen)

    def _drop(self, plan: TrialPlan) -> None:
        self.live.pop(plan.trial.number, None)
        self.pack.remove([plan.trial.number])
        self.beats.discard(plan.trial._trial_id)

    def unfinished(self) -> list[int]:
        """Trial numbers this worker holds RUNNING: the ones to fail and retry when it stops."""
        return [plan.trial.number for plan in self.active]


class _EpochView:
    """The study as pruners read it while one pack epoch's slots are settled: `get_trials` is read once and
    kept for the epoch (trials that end in the same epoch are seen from the next one); all else is the study."""

    def __init__(self, study: optuna.Study) -> None:
        self._study = study
        self._trials: dict[tuple | None, list[optuna.trial.FrozenTrial]] = {}

    def __getattr__(self, name: str):
        return getattr(self._study, name)

    def get_trials(self, deepcopy: bool = True, states=None) -> list[optuna.trial.FrozenTrial]:
        key = None if states is None else tuple(states)
        if key not in self._trials:
            self._trials[key] = self._study.get_trials(deepcopy=False, states=states)
        return copy.deepcopy(self._trials[key]) if deepcopy else self._trials[key]


def _structural(plan: TrialPlan, spec: StudySpec) -> dict[str, object]:
    """The anchor's sampled values that fix a pack's structure, by Optuna's names (`one_minus_x` for x)."""
    settings = set(TrainConfig.field_names())
    shared = {name for name in plan.trial.params if _public(name) in SHARED_PARAMS}
    if spec.model_source.user:
        shared |= {name for name in plan.trial.params if _public(name) not in settings}
    return {name: plan.trial.params[name] for name in shared}


def _public(name: str) -> str:
    return name.removeprefix("one_minus_")


def _fail_stale(study: optuna.Study) -> None:
    """As `study.optimize` does before each trial: dead workers' trials are failed and their retries queued."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
