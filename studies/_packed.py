"""A worker that trains K trials at once (`--pack K`): each is still its own Optuna trial, asked and told
through the objective's own steps (sampling, seed, note, reports, pruning, checkpoint, retry, curve); the
pack (training/_packed/) trains them as one program, an epoch at a time.

Trials are asked in groups: a group's first trial freely, the next ones with the settings a pack on this
device cannot mix fixed to the first's (`shared_settings`: none for a built-in MLP on a GPU, whose packs pad
widths and mix batch sizes and activations; batch size and width on a CPU), every other value sampled as
usual. Groups, and how many trials run at once, grow with the study (`growing_size`: GROUP_START at first,
one more for every GROUP_GROWTH finished, at most K): early on, when the sampler knows least, few trials run
blind and the search is not narrowed to a few structures; later, when it has found where to look, packs fill.
A trial joins the first running pack that can take it (`Pack.can_take`); one that no pack takes (another
group's, a queued one, a retry, the baseline) starts a pack of its own beside the others, so no slot waits
for another group to drain; each pack trains an epoch in turn.
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
from adamtune.training import MetricError

from ._factories import pruning_startup
from ._objective import Objective, TimedOut, TrialPlan, refuse
from ._spec import StudySpec

if TYPE_CHECKING:
    from adamtune.training import Pack

log = logging.getLogger("adamtune")
GROUP_START = 4  # trials at once while the study is young: packs of four searched as well as solo (RESULTS)
GROUP_GROWTH = 4  # finished trials per one more


class PackedWorker:
    """Runs the study's trials `size` at a time until the budget is spent or the deadline passes."""

    def __init__(self, study: optuna.Study, objective: Objective, spec: StudySpec, size: int, budget: int,
                 after_trial: Callable[[optuna.Study, optuna.trial.FrozenTrial], None]) -> None:
        self.study, self.objective, self.spec = study, objective, spec
        self.size, self.budget = size, budget
        self.after_trial = after_trial
        self.startup = pruning_startup(spec.pruner)
        self.packs: list[Pack] = []  # one stacked program each
        self.live: dict[int, TrialPlan] = {}  # trial number -> plan, training
        self.group: dict[int, Pack] = {}  # trial number -> its pack
        self.width = widest(spec)
        from adamtune.training import shared_settings

        self.shared = shared_settings(spec.model, spec.model_source.user, objective.device.type)
        self.anchor: dict[str, object] = {}  # the shared settings (Optuna's names) the group's trials are asked with
        self.started = 0  # trials started in the anchor's group
        self.beats = TrialBeats(study)

    def run(self, deadline: float | None) -> None:
        try:
            while True:
                self._fill()
                if not self.live:
                    return
                for pack in list(self.packs):
                    self._epoch(pack)
                if deadline is not None and time.monotonic() > deadline and self.live:
                    for pack in self.packs:  # between epochs: each retry resumes where its trial stopped
                        pack.save_checkpoints()
                    raise TimedOut()
        finally:
            self.beats.stop()

    # ---- starting trials -------------------------------------------------------------------------

    def _fill(self) -> None:
        """Start trials until as many run as the study's age allows (`growing_size`) or the budget is spoken
        for. Until the pruner has its startup trials COMPLETE, only as many trials run as it still waits for."""
        counts = study_rows(self.study).counts()
        room = self.budget - counts["COMPLETE"] - counts["PRUNED"] - len(self.live)
        group = growing_size(counts["COMPLETE"] + counts["PRUNED"], self.size)
        size = group if counts["COMPLETE"] >= self.startup else min(group, self.startup - counts["COMPLETE"])
        if size > len(self.live) and room > 0:
            _fail_stale(self.study)
        while len(self.live) < size and room > 0:
            plan = self._ask(group)
            self.objective.current = None  # the packed worker retries its own trials (unfinished)
            plan.trial.set_user_attr(Attr.PACKED, self.size)
            self.beats.add(plan.trial._trial_id)
            room -= 1
            self._start(plan)

    def _ask(self, group: int) -> TrialPlan:
        """A new trial, begun (its values sampled): with the anchor's shared settings while its group has
        fewer than `group` trials, freely otherwise."""
        sampler = self.study.sampler
        with optuna_experimental():
            # Optuna warns that heartbeats are meant for `optimize`; this worker beats its trials itself.
            warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")
            if self.anchor and self.started < group:
                self.study.sampler = optuna.samplers.PartialFixedSampler(self.anchor, sampler)
            try:
                return self.objective.begin(self.study.ask())
            finally:
                self.study.sampler = sampler

    def _start(self, plan: TrialPlan) -> None:
        from adamtune.training import Pack

        number = plan.trial.number
        anchor = self._shared_values(plan)
        if anchor != self.anchor:  # a free trial (or a queued one) of other settings: a group from now
            self.anchor, self.started = anchor, 0
        self.started += 1
        pack = next((p for p in self.packs if p.can_take(plan.config, plan.values)), None)
        if pack is None:
            pack = Pack(self.objective.data, device=self.objective.device, model_source=self.spec.model_source,
                        checkpoint_every=self.spec.checkpoint_every, width=self.width, scoring=self.spec.scoring)
            self.packs.append(pack)
        try:
            restored = pack.add(number, plan.config, plan.values, plan.checkpoint)
        except InputError as exc:  # the model at this trial's values cannot train: FAIL with the reason, stop
            if not pack.slots:
                self.packs.remove(pack)
            refuse(plan.trial, exc)
            self.study.tell(plan.trial, state=TrialState.FAIL)
            self.beats.discard(plan.trial._trial_id)
            raise
        self.live[number], self.group[number] = plan, pack
        self.objective.started(plan, pack.slot_result(number))
        try:
            for record in restored:  # reported again, as fit does: the curve has no gap
                self.objective.epoch_done(plan, record)
        except optuna.TrialPruned:
            self._end(plan, TrialState.PRUNED)

    # ---- one epoch -------------------------------------------------------------------------------

    def _epoch(self, pack: Pack) -> None:
        """One epoch of one pack, then each of its trials' report, pruning decision and end. The user's metric
        failing fails the pack's trials with its reason (not retried: it would fail again) and stops the worker."""
        try:
            outcomes = pack.epoch()
        except MetricError as exc:
            for number in list(pack.keys):
                plan = self.live[number]  # type: ignore[index]
                refuse(plan.trial, exc)
                self._end(plan, TrialState.FAIL)
            raise
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
        pack = self.group.pop(number)
        pack.remove([number])
        if not pack.slots:
            self.packs.remove(pack)
        self.beats.discard(plan.trial._trial_id)

    def _shared_values(self, plan: TrialPlan) -> dict[str, object]:
        """The trial's sampled values of the shared settings (and of the user model's own parameters), by
        Optuna's names (`one_minus_x` for x)."""
        from adamtune.training import model_params

        optuna_name = {self.spec.space.stored.public_name(name): name for name in plan.trial.params}
        public = set(self.shared) | (set(model_params(optuna_name)) if self.spec.model_source.user else set())
        return {optuna_name[name]: plan.trial.params[optuna_name[name]] for name in public if name in optuna_name}

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


def growing_size(finished: int, size: int) -> int:
    """Trials run at once, and asked with one anchor's shared settings, once `finished` trials have ended, by a
    worker of `size` (`--pack K`, or auto's K)."""
    return min(size, max(GROUP_START, finished // GROUP_GROWTH))


def widest(spec: StudySpec) -> int | None:
    """The widest built-in model the study can sample: every pack is padded to it, so any trial fits any pack
    of its model (None when width is not searched: every trial has the configured one)."""
    if "width" not in spec.space.names:
        return None
    return max(int(w) for w in spec.space["width"].extremes)


def _fail_stale(study: optuna.Study) -> None:
    """As `study.optimize` does before each trial: dead workers' trials are failed and their retries queued."""
    with optuna_experimental():
        optuna.storages.fail_stale_trials(study)
