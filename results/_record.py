"""The one trial record: what the objective writes on an Optuna trial, and what every reader gets back.

Each fact is stored once. The sampled values live in Optuna's params; the training config, the summary
in words and the metrics are derived when read, from the params, the study's stored spec and the curve.
Trials written by adamtune 0.1 (which also stored `params`, `config`, `summary`, `val_loss`, ... as user
attrs) read the same way: those extra attrs are simply not needed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from optuna.trial import FrozenTrial

from adamtune.search_spaces import StoredSpace
from adamtune.storage import Attr, StudyAttr, TrialRow
from adamtune.training import TrainConfig

from ._format import describe

CURVE_KEYS = ("train_loss", "val_loss", "val_accuracy", "lr", "seconds")


def curve_to_store(curve: dict[str, list], objective: str) -> dict[str, list]:
    """The curve attribute as stored: without the objective's series, which Optuna already holds as the
    trial's intermediate values (reported live, read by pruners and the dashboard), and epoch times to the
    millisecond (their other digits are noise, and every stored byte is read by the dashboard). A series the
    task has none of (a regression's accuracy) is left out."""
    stored = {key: series for key, series in curve.items()
              if key != objective and any(value is not None for value in series)}
    if "seconds" in stored:
        stored["seconds"] = [round(seconds, 3) for seconds in stored["seconds"]]
    return stored


def full_curve(trial: FrozenTrial, objective: str) -> dict[str, list]:
    """The whole per-epoch curve of a trial: its stored attribute plus the objective's series rebuilt from
    the intermediate values (trials of adamtune 0.1 and 0.2 stored it in both; theirs is kept as is)."""
    curve = dict(trial.user_attrs.get(Attr.CURVE) or {})
    if curve and objective not in curve:
        curve[objective] = [trial.intermediate_values[epoch] for epoch in sorted(trial.intermediate_values)]
    return curve


@dataclass(frozen=True)
class StudyContext:
    """What reading a trial needs from its study, parsed once per study from the stored spec."""

    name: str
    objective: str = "val_loss"
    base: dict[str, Any] = field(default_factory=dict)  # dataset, model, epochs (TrainConfig's values)
    seed: int = 0
    space: StoredSpace = field(default_factory=StoredSpace)  # the search space as stored: what each value means
    data: dict[str, Any] | None = None  # the user's dataset as stored: the study file's mapping, fingerprint, classes
    model: dict[str, Any] | None = None  # the user's model as stored: entry and kwargs
    root: str | None = None  # the creating worker's study-file folder: relative paths and modules resolve there
    metric: dict[str, Any] | None = None  # the user's metric as stored (entry, direction); None for a built-in one

    @classmethod
    def of(cls, study_name: str, user_attrs: dict[str, Any]) -> StudyContext:
        spec = user_attrs.get(StudyAttr.SPEC) or {}
        base = {k: spec[k] for k in ("dataset", "model", "task", "epochs") if k in spec}
        data = base.get("dataset") if isinstance(base.get("dataset"), dict) else None
        model = base.get("model") if isinstance(base.get("model"), dict) else None
        if data is not None:
            base["dataset"] = data.get("type")
        if model is not None:
            base["model"] = model.get("entry")
        return cls(study_name, spec.get("objective", "val_loss"), base, int(spec.get("seed", 0)),
                   StoredSpace(spec.get("space")), data, model, spec.get("root"), spec.get("metric"))

    def sampled_values(self, params: dict[str, Any]) -> dict[str, Any]:
        """The values a sampler chose, by public name (fixed parameters left out)."""
        return self.space.sampled(self.space.public_values(params))

    def model_params(self, params: dict[str, Any]) -> dict[str, Any] | None:
        """What the user's model builder was handed (every value by public name, fixed ones included); None
        for a built-in model."""
        return self.space.public_values(params) if self.model is not None else None

    def config(self, params: dict[str, Any], origin: int) -> dict[str, Any] | None:
        """The full training config the trial ran (None for a study not made by adamtune)."""
        if not self.base:
            return None
        return TrainConfig.for_trial(self.base, self.seed + origin, self.space.public_values(params),
                                     source=f"study {self.name!r}: trial config").to_dict()


@dataclass(frozen=True)
class TrialRecord:
    """One trial as a person reads it: Optuna's facts plus adamtune's, derived once here."""

    number: int
    state: str  # complete, pruned, fail, running, waiting
    value: float | None
    params: dict[str, Any]  # sampled values by public name
    config: dict[str, Any] | None
    model_params: dict[str, Any] | None  # what the user's model builder got; None for a built-in model
    baseline: bool
    worker: str | None
    device: str | None
    param_count: int | None
    retry_of: int | None
    curve: dict[str, list]  # as stored: every series but the objective's (see `full_curve`)
    objective: str  # val_loss, val_accuracy, val_<metric>: `value` is its value at `best_epoch`
    best_epoch: int | None
    resumed_epochs: int
    pruned_reason: str | None
    fail_reason: str | None
    packed: int | None  # the pack size its worker trained it in; None: trained alone by `fit`
    epochs: int  # epochs reported to the trial
    duration: timedelta | None
    warm_start: str | None = None  # where a warm-started trial's values came from ("study NAME #N", "export FILE")

    @property
    def summary(self) -> str:
        """The configuration in words, as tables and the dashboard show it."""
        return describe(self.config) if self.config else ""

    @property
    def val_loss(self) -> float | None:
        return self._at_best("val_loss")

    @property
    def val_accuracy(self) -> float | None:
        return self._at_best("val_accuracy")

    def at_best(self, key: str) -> float | None:
        """Series `key` (val_loss, val_rmse, ...) at the best epoch."""
        return self._at_best(key)

    @property
    def seconds(self) -> float | None:
        return self.duration.total_seconds() if self.duration is not None else None

    @property
    def note(self) -> str:
        """Why this trial is special or ended early: baseline, warm-started (from where), pruned, failed."""
        warm = f"warm start: {self.warm_start}" if self.warm_start else ""
        return "; ".join(x for x in ("baseline" if self.baseline else "", warm, self.pruned_reason or "",
                                     self.fail_reason or "") if x)

    def _at_best(self, key: str) -> float | None:
        if self.best_epoch is None:
            return None
        if key == self.objective and key not in self.curve:
            return self.value if self.state == "complete" else None
        series = self.curve.get(key) or []
        if self.best_epoch >= len(series):
            return None
        value = series[self.best_epoch]
        return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def read_trial(trial: TrialRow | FrozenTrial, context: StudyContext) -> TrialRecord:
    if isinstance(trial, FrozenTrial):
        trial = TrialRow.of(trial)
    a = trial.user_attrs
    origin = a.get(Attr.RETRY_OF, trial.number)
    return TrialRecord(
        number=trial.number, state=trial.state.lower(), value=trial.value,
        params=context.sampled_values(trial.params), config=context.config(trial.params, origin),
        model_params=context.model_params(trial.params),
        baseline=bool(a.get(Attr.BASELINE)), worker=a.get(Attr.WORKER), device=a.get(Attr.DEVICE),
        param_count=a.get(Attr.PARAM_COUNT), retry_of=a.get(Attr.RETRY_OF), curve=a.get(Attr.CURVE) or {},
        objective=context.objective, best_epoch=a.get(Attr.BEST_EPOCH), resumed_epochs=a.get(Attr.RESUMED_EPOCHS, 0),
        pruned_reason=a.get(Attr.PRUNED_REASON), fail_reason=a.get(Attr.FAIL_REASON), packed=a.get(Attr.PACKED),
        epochs=trial.reported, duration=trial.duration, warm_start=a.get(Attr.WARM_START))
