"""A study cache for a worker that holds many RUNNING trials at once (`run --pack K`).

Optuna's cache (`_CachedStorage`) re-reads every unfinished trial, with all its values, reports and
attributes, on every `get_all_trials`: each ask reads the store twice (queued trials, TPE's search space),
so a worker holding 64 running trials re-read all 64 about four times per trial it started (16 ms a read
on SQLite, over a third of a packed digits run). The trials this process runs change only through its own
writes, so it keeps them up to date itself and reads from the store only the other workers' trials.

Its sampled values and attributes are written together in one transaction (Optuna commits each on its own:
22 commits for a digits trial's values, one more per attribute), just before the trial's next report, state
change or read from the store, or when the objective asks (`write_pending`: as training starts, so other
readers see a running trial's values and worker a few milliseconds after they were drawn). A stored trial
holds all its values or none, whenever the server goes down (a flush the store did not take is tried again
with the next write); the attributes a trial's end adds (its curve, its best epoch or why it was pruned)
reach the store in one transaction just before its state. Solo workers use it too, for that alone.

A trial leaves this process's hands when it ends, or when a write finds it already finished (another
worker failed it as stale); from then on it is read from the store like every other trial. Reads of one
trial (`get_trial`, what pruners and `tell` use) always go to the store.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, check_distribution_compatibility
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy import or_
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import selectinload

try:  # Optuna's private cache and query helpers (present from 3.x through 5.0); without them, no cache
    from optuna.storages._cached_storage import _CachedStorage, _StudyInfo
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    _PRIVATE_PARTS = True
except ImportError:  # pragma: no cover - a future Optuna: packed workers use Optuna's own cache
    _CachedStorage = optuna.storages.BaseStorage  # type: ignore[assignment,misc]  # never instantiated then
    _PRIVATE_PARTS = False


class OwnTrialsCache(_CachedStorage):  # type: ignore[misc]
    """Optuna's cache of an RDB store, minus re-reading the RUNNING trials this process holds."""

    def __init__(self, backend: optuna.storages.RDBStorage) -> None:
        super().__init__(backend)
        self._own: set[int] = set()  # trial ids this process runs; their cached FrozenTrial is current
        self._unwritten: dict[int, list[tuple[str, float, BaseDistribution]]] = {}  # sampled, not yet stored
        self._unwritten_attrs: dict[int, dict[tuple[type, str], Any]] = {}  # (user or system, key) -> value

    # ---- which trials are this process's ---------------------------------------------------------

    def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> int:
        trial_id = super().create_new_trial(study_id, template_trial)
        if template_trial is None or template_trial.state == TrialState.RUNNING:
            with self._lock:
                self._own.add(trial_id)
        return trial_id

    def set_trial_state_values(self, trial_id: int, state: TrialState,
                               values: Sequence[float] | None = None) -> bool:
        try:
            self._write_values(trial_id)
            taken = super().set_trial_state_values(trial_id, state, values)
        except UpdateFinishedTrialError:
            self._let_go(trial_id)
            raise
        if state == TrialState.RUNNING and taken:  # a queued trial (a retry, the baseline) claimed
            with self._lock:
                self._cache(self._backend.get_trial(trial_id))
                self._own.add(trial_id)
        elif state.is_finished():
            self._let_go(trial_id)
        return taken

    def _let_go(self, trial_id: int) -> None:
        """From now on the trial is read from the store (its end, or another worker's, is there)."""
        with self._lock:
            self._unwritten.pop(trial_id, None)
            self._unwritten_attrs.pop(trial_id, None)
            if trial_id in self._own:
                self._own.discard(trial_id)
                study_id, _ = self._trial_id_to_study_id_and_number[trial_id]
                self._studies[study_id].unfinished_trial_ids.add(trial_id)

    def delete_study(self, study_id: int) -> None:
        """The study's trials leave this process's hands with it (Optuna's cache forgets their ids)."""
        with self._lock:
            gone = {i for i in self._own | set(self._unwritten) | set(self._unwritten_attrs)
                    if self._trial_id_to_study_id_and_number.get(i, (None,))[0] == study_id}
            self._own -= gone
            for trial_id in gone:
                self._unwritten.pop(trial_id, None)
                self._unwritten_attrs.pop(trial_id, None)
        super().delete_study(study_id)

    # ---- this process's writes also update its copy ----------------------------------------------

    def set_trial_param(self, trial_id: int, param_name: str, param_value_internal: float,
                        distribution: BaseDistribution) -> None:
        with self._lock:
            own = trial_id in self._own
            if own:
                study = self._studies[self._trial_id_to_study_id_and_number[trial_id][0]]
                known = study.param_distribution.get(param_name)
                if known is not None:  # as Optuna checks it, when the value is drawn
                    check_distribution_compatibility(known, distribution)
                self._unwritten.setdefault(trial_id, []).append((param_name, param_value_internal, distribution))
        if not own:
            self._write(trial_id, super().set_trial_param, param_name, param_value_internal, distribution)
        self._update(trial_id, lambda t: (t.params.__setitem__(param_name,
                                                               distribution.to_external_repr(param_value_internal)),
                                          t.distributions.__setitem__(param_name, distribution)))

    def set_trial_intermediate_value(self, trial_id: int, step: int, intermediate_value: float) -> None:
        self._write(trial_id, super().set_trial_intermediate_value, step, intermediate_value)
        self._update(trial_id, lambda t: t.intermediate_values.__setitem__(step, intermediate_value))

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        if not self._hold(trial_id, models.TrialUserAttributeModel, key, value):
            self._write(trial_id, super().set_trial_user_attr, key, value)
        self._update(trial_id, lambda t: t.user_attrs.__setitem__(key, value))

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        if not self._hold(trial_id, models.TrialSystemAttributeModel, key, value):
            self._write(trial_id, super().set_trial_system_attr, key, value)
        self._update(trial_id, lambda t: t.system_attrs.__setitem__(key, value))

    def write_pending(self, trial_id: int) -> None:
        """Store what this process holds of the trial now (its values and attributes), in one transaction."""
        self._write(trial_id, lambda _id: None)

    def _hold(self, trial_id: int, model: type, key: str, value: Any) -> bool:
        """Keep an attribute of a trial this process runs for its next flush; False for anyone else's."""
        with self._lock:
            if trial_id not in self._own:
                return False
            json.dumps(value)  # refused here, where it is set, as Optuna's own write would
            self._unwritten_attrs.setdefault(trial_id, {})[(model, key)] = value
            return True

    def get_trial(self, trial_id: int) -> FrozenTrial:
        self._write(trial_id, lambda _id: None)  # read from the store: its values first
        return super().get_trial(trial_id)

    def _write(self, trial_id: int, write, *args) -> None:
        try:
            self._write_values(trial_id)
            write(trial_id, *args)
        except UpdateFinishedTrialError:
            self._let_go(trial_id)
            raise

    def _write_values(self, trial_id: int) -> None:
        """The trial's sampled values and attributes not yet stored, in one transaction (Optuna's checks
        included)."""
        with self._lock:
            values = self._unwritten.get(trial_id) or []
            attrs = self._unwritten_attrs.get(trial_id) or {}
            if not values and not attrs:
                return
            study = self._studies[self._trial_id_to_study_id_and_number[trial_id][0]]
            backend = self._backend
            assert isinstance(backend, optuna.storages.RDBStorage)
            try:
                with _create_scoped_session(backend.scoped_session) as session:
                    for name, value, distribution in values:
                        backend._set_trial_param_without_commit(session, trial_id, name, value, distribution,
                                                                study.param_distribution.get(name))
                    for (model, key), value in attrs.items():
                        backend._set_trial_attr_without_commit(session, model, trial_id, key, value)
            except (SQLAlchemyError, optuna.exceptions.StorageInternalError):
                raise  # the store took none of them: kept for the next write (a write of one is an upsert)
            except Exception:
                self._unwritten.pop(trial_id, None)  # refused for good (an incompatible distribution)
                self._unwritten_attrs.pop(trial_id, None)
                raise
            self._unwritten.pop(trial_id, None)
            self._unwritten_attrs.pop(trial_id, None)
            for name, _, distribution in values:
                study.param_distribution[name] = distribution

    def _update(self, trial_id: int, change) -> None:
        with self._lock:
            if trial_id in self._own:
                study_id, number = self._trial_id_to_study_id_and_number[trial_id]
                change(self._studies[study_id].trials[number])

    def _cache(self, trial: FrozenTrial) -> None:
        study_id, _ = self._trial_id_to_study_id_and_number[trial._trial_id]
        self._add_trials_to_cache(study_id, [trial])

    # ---- reads: everything but this process's running trials ------------------------------------

    def _read_trials_from_remote_storage(self, study_id: int) -> None:
        with self._lock:
            study = self._studies.setdefault(study_id, _StudyInfo())
            own = {i for i in self._own if self._trial_id_to_study_id_and_number[i][0] == study_id}
            trials = self._read_others(study_id, study.unfinished_trial_ids - own, study.last_finished_trial_id, own)
            if not trials:
                return
            self._add_trials_to_cache(study_id, trials)
            # As Optuna's cache: a finished trial is read once; an unfinished one on every read.
            for trial in trials:
                if not trial.state.is_finished():
                    study.unfinished_trial_ids.add(trial._trial_id)
                    continue
                study.last_finished_trial_id = max(study.last_finished_trial_id, trial._trial_id)
                study.unfinished_trial_ids.discard(trial._trial_id)

    def _read_others(self, study_id: int, unfinished: set[int], last_finished: int, own: set[int]) -> list[FrozenTrial]:
        """Optuna's `RDBStorage._get_trials` query with this process's running trials left out."""
        backend = self._backend
        assert isinstance(backend, optuna.storages.RDBStorage)
        unfinished = {i for i in unfinished if i <= last_finished}
        with _create_scoped_session(backend.scoped_session) as session:
            models.StudyModel.find_or_raise_by_id(study_id, session)
            query = (session.query(models.TrialModel)
                     .options(selectinload(models.TrialModel.params), selectinload(models.TrialModel.values),
                              selectinload(models.TrialModel.user_attributes),
                              selectinload(models.TrialModel.system_attributes),
                              selectinload(models.TrialModel.intermediate_values))
                     .filter(models.TrialModel.study_id == study_id))
            if last_finished > -1:
                query = query.filter(or_(models.TrialModel.trial_id.in_(unfinished),
                                         models.TrialModel.trial_id > last_finished))
            if own:
                query = query.filter(models.TrialModel.trial_id.not_in(own))
            return [backend._build_frozen_trial_from_trial_model(t)
                    for t in query.order_by(models.TrialModel.trial_id).all()]


def write_pending(trial: optuna.Trial) -> None:
    """Store now what a worker's cache holds of `trial` (its sampled values and attributes), in one
    transaction; nothing to do on any other storage (it wrote each as it was set)."""
    if isinstance(trial.storage, OwnTrialsCache) and _PRIVATE_PARTS:
        trial.storage.write_pending(trial._trial_id)


def for_packed_worker(storage: optuna.storages.BaseStorage) -> optuna.storages.BaseStorage:
    """The storage a packed worker should use: `OwnTrialsCache` over an RDB store whose Optuna has the
    private parts it builds on (checked, so a newer Optuna runs correctly, only slower), else `storage`."""
    needed = ("_read_trials_from_remote_storage", "_add_trials_to_cache")
    backend_needs = ("_build_frozen_trial_from_trial_model", "_set_trial_param_without_commit",
                     "_set_trial_attr_without_commit", "scoped_session")
    if (not _PRIVATE_PARTS or not isinstance(storage, optuna.storages.RDBStorage)
            or not all(hasattr(_CachedStorage, name) for name in needed)
            or not all(hasattr(storage, name) for name in backend_needs)):
        return storage
    return OwnTrialsCache(storage)
