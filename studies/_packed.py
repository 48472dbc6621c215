"""A worker that trains K trials at once (`--pack K`): each is still its own Optuna trial, asked and told
through the objective's own steps (sampling, seed, note, reports, pruning, checkpoint, retry, curve); the
pack (training/_packed/) trains them as one program, an epoch at a time.

Trials share one stacked program when they share their structure (model, width, activation, batch size;
the user model's own values). A structure's first trial is asked freely; the next K - 1 are asked with its
structural values fixed (`PartialFixedSampler`), every other value sampled as usual. After K trials of one
structure the next trial is asked freely again; a trial of another structure (or a queued one, a retry or
the baseline, which keeps its own values) starts a group of its own beside the running one, so no slot waits
for another structure's trials to drain. At most K trials run at once, over all groups.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import time
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING

import optuna
from optuna.trial import TrialState

from adamtune.errors import InputError
from adamtune.storage import Attr, TrialBeats, optuna_experimental, study_rows
from adamtune.training import model_params

from ._factories import pruning_startup
from ._objective import Objective, TimedOut, TrialPlan, refuse
from ._spec import StudySpec

if TYPE_CHECKING:
    from adamtune.training import Pack

log = logging.getLogger("adamtune")
SHARED_PARAMS = ("batch_size", "width", "activation")  # sampled values that fix a pack's structure


class PackedWorker:
    """Runs the study's trials `size` at a time until the budget is spent or the deadline passes."""

    def __init__(self, study: optuna.Study, objective: Objective, spec: StudySpec, size: int, budget: int,
                 after_trial: Callable[[optuna.Study, optuna.trial.FrozenTrial], None]) -> None:
        self.study, self.objective, self.spec = study, objective, spec
        self.size, self.budget = size, budget
        self.after_trial = after_trial
        self.startup = pruning_startup(spec.pruner)
        self.packs: dict[tuple, Pack] = {}  # structure -> its group, one stacked program each
        self.live: dict[int, TrialPlan] = {}  # trial number -> plan, training
        self.group: dict[int, tuple] = {}  # trial number -> its structure
        self.anchor: dict[str, object] | None = None  # the structural params new trials are asked with
        self.started = 0  # trials started with the anchor's structure
        self.beats = TrialBeats(study)

    def run(self, deadline: float | None) -> None:
        try:
            while True:
                self._fill()
                if not self.live:
                    return
                for key in list(self.packs):
                    self._epoch(key)
                if deadline is not None and time.monotonic() > deadline and self.live:
                    for pack in self.packs.values():  # between epochs: each retry resumes where its trial stopped
                        pack.save_checkpoints()
                    raise TimedOut()
        finally:
            self.beats.stop()

    # ---- starting trials -------------------------------------------------------------------------

    def _fill(self) -> None:
        """Start trials until K run or the budget is spoken for. Until the pruner has its startup trials
        COMPLETE, only as many trials run as it still waits for."""
        counts = study_rows(self.study).counts()
        room = self.budget - counts["COMPLETE"] - counts["PRUNED"] - len(self.live)
        size = self.size if counts["COMPLETE"] >= self.startup else min(self.size, self.startup - counts["COMPLETE"])
        if size > len(self.live) and room > 0:
            _fail_stale(self.study)
        while len(self.live) < size and room > 0:
            plan = self._ask()
            self.objective.current = None  # the packed worker retries its own trials (unfinished)
            plan.trial.set_user_attr(Attr.PACKED, self.size)
            self.beats.add(plan.trial._trial_id)
            room -= 1
            self._start(plan)

    def _ask(self) -> TrialPlan:
        """A new trial, begun (its values sampled): with the pack's structure while this structure has had
        fewer than `size` trials, freely otherwise."""
        sampler = self.study.sampler
        with optuna_experimental():
            # Optuna warns that heartbeats are meant for `optimize`; this worker beats its trials itself.
            warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")
            if self.anchor is not None and self.started < self.size:
                self.study.sampler = optuna.samplers.PartialFixedSampler(self.anchor, sampler)
            try:
                return self.objective.begin(self.study.ask())
            finally:
                self.study.sampler = sampler

    def _start(self, plan: TrialPlan) -> None:
        from adamtune.training import Pack, structure_key

        number = plan.trial.number
        key = structure_key(plan.config, plan.values, self.spec.model_source.user)
        structural = _structural(plan, self.spec)
        if structural != self.anchor:  # a free trial (or a queued one) of a new structure: K of it from now
            self.anchor, self.started = structural, 0
        self.started += 1
        if key not in self.packs:
            self.packs[key] = Pack(self.objective.data, device=self.objective.device,
                                   model_source=self.spec.model_source, checkpoint_every=self.spec.checkpoint_every)
        try:
            restored = self.packs[key].add(number, plan.config, plan.values, plan.checkpoint)
        except InputError as exc:  # the model at this trial's values cannot train: FAIL with the reason, stop
            if not self.packs[key].slots:
                del self.packs[key]
            refuse(plan.trial, exc)
            self.study.tell(plan.trial, state=TrialState.FAIL)
            self.beats.discard(plan.trial._trial_id)
            raise
        self.live[number], self.group[number] = plan, key
        self.objective.started(plan, self.packs[key].slot_result(number))
        try:
            for record in restored:  # reported again, as fit does: the curve has no gap
                self.objective.epoch_done(plan, record)
        except optuna.TrialPruned:
            self._end(plan, TrialState.PRUNED)

    # ---- one epoch -------------------------------------------------------------------------------

    def _epoch(self, key: tuple) -> None:
        """One epoch of one structure's group, then each of its trials' report, pruning decision and end."""
        pack = self.packs[key]
        outcomes = pack.epoch()
        view = _EpochView(self.study)
        for outcome in outcomes:
            plan = self.live[outcome.key]  # type: ignore[index]
            # Each slot's pruning decision reads the study through the epoch's view: the other trials are
            # read from the store once per pack epoch, not once per slot (Trial.should_prune reads trial.study).
            plan.trial.study = view  # type: ignore[assignment]
            try:
                if outcome.error is not None:
                    try:
                        self.objective.diverged(plan, outcome.error)
                    except optuna.TrialPruned:
                        self._tell(plan, TrialState.PRUNED)
                        continue
                assert outcome.record is not None
                self.objective.epoch_done(plan, outcome.record)
                if outcome.finished:
                    value = self.objective.complete(plan, pack.result(outcome.key))
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
            self.objective.finish(plan)
        self._tell(plan, state, value)

    def _tell(self, plan: TrialPlan, state: TrialState, value: float | None = None) -> None:
        frozen = self.study.tell(plan.trial, value, state=state)
        self.objective.recorded(self.study, frozen)
        self._drop(plan)
        self.after_trial(self.study, frozen)

    def _drop(self, plan: TrialPlan) -> None:
        number = plan.trial.number
        self.live.pop(number, None)
        key = self.group.pop(number)
        self.packs[key].remove([number])
        if not self.packs[key].slots:
            del self.packs[key]
        self.beats.discard(plan.trial._trial_id)

    def note_failure(self, reason: str) -> None:
        """Why the trials it holds stop (a full disk), on each before it is failed; the store may refuse it."""
        for plan in self.live.values():
            with contextlib.suppress(Exception):
                plan.trial.set_user_attr(Attr.FAIL_REASON, reason)

    def unfinished(self) -> list[int]:
        """Trial numbers this worker holds RUNNING: the ones to fail and retry when it stops."""
        return list(self.live)


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
    stored = {spec.space.stored.public_name(name): name for name in plan.trial.params}
    shared = {stored[name] for name in stored if name in SHARED_PARAMS}
    if spec.model_source.user:
        shared |= {stored[name] for name in model_params(stored)}
    return {name: plan.trial.params[name] for name in shared}


def _fail_stale(study: optuna.Study) -> None:
    """As `study.optimize` does before each trial: dead workers' trials are failed and their retries queued."""
    with optuna_experimental():
        optuna.storages.fail_stale_trials(study)
