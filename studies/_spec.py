"""The study file: what to train, which space to search, how to sample and prune, and the budget."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adamtune.data import DataFacts, DataSource, SourceError, check_entry
from adamtune.search_spaces import SearchSpace, SpaceError, compose, read_yaml
from adamtune.storage import Heartbeat
from adamtune.training import (
    LOSSES,
    METRICS,
    ConfigError,
    ModelSource,
    Scoring,
    TrainConfig,
    UserMetric,
    metric_problem,
    model_params,
)

from ._errors import StudyError
from ._factories import build_pruner, build_sampler
from ._keys import check_keys
from ._schema import AUTO, DIRECTIONS, OBJECTIVE_KEYS, STUDY_FILE
from ._warm_start_key import WarmStart, parse_warm_start


@dataclass(frozen=True)
class StudySpec:
    name: str
    source: str
    data_source: DataSource
    model_source: ModelSource
    space: SearchSpace
    epochs: int = 10
    seed: int = 0
    sampler: dict = field(default_factory=lambda: {"type": "tpe"})
    pruner: dict = field(default_factory=lambda: {"type": "median"})
    objective: str = "val_loss"  # val_<metric> (training.metrics), or val_<function> of the user's metric
    user_metric: UserMetric | None = None
    task: str | None = None  # as the study file states it; None: the data decide (`resolved_task`)
    n_trials: int = 20
    timeout: float | None = None
    baseline: bool = True
    description: str = ""
    heartbeat: Heartbeat = Heartbeat()
    artifacts: str = "adamtune-artifacts"  # checkpoints and best weights; a shared volume for many machines
    keep_checkpoints: bool = False
    checkpoint_every: float = 60.0  # seconds between a trial's checkpoints (see training.rules.checkpoint_due)
    pack: int | str = AUTO  # trials one worker trains at once (`--pack`): see studies/_pack_size.py
    reconnect_timeout: float = 300.0  # how long a worker waits out a lost database before giving up
    facts: DataFacts | None = None  # what loading the data found (studies.prepare); joins the fingerprint
    warm_start: WarmStart | None = None  # earlier configurations queued at creation; not agreed on by joiners

    @property
    def direction(self) -> str:
        if self.user_metric is not None:
            return self.user_metric.direction
        return METRICS[self.objective.removeprefix("val_")].direction

    @property
    def resolved_task(self) -> str:
        """The task the data have (once loaded: `facts`), else the one stated, else classification."""
        if self.facts is not None:
            return self.facts.task
        return self.task or "classification"

    @property
    def scoring(self) -> Scoring:
        """What each validated epoch computes beyond loss and accuracy: the objective's metric."""
        if self.user_metric is not None:
            return Scoring(user=self.user_metric)
        return Scoring(names=(self.objective.removeprefix("val_"),))

    @property
    def dataset(self) -> str:
        """TrainConfig.dataset: the built-in's name, or the type of the user's data."""
        return self.data_source.label

    @property
    def model(self) -> str:
        """TrainConfig.model: the built-in's name, or the user's entry point."""
        return self.model_source.label

    @property
    def user_params(self) -> list[str]:
        """Parameters of the user's model: the names in the space that are not training settings."""
        if not self.model_source.user:
            return []
        return list(model_params(dict.fromkeys(self.space.names)))

    def config_for(self, values: dict[str, Any], seed: int) -> TrainConfig:
        """The full training config of one trial: study settings, then the trial's values."""
        study = {"dataset": self.dataset, "model": self.model, "task": self.resolved_task, "epochs": self.epochs}
        return TrainConfig.for_trial(study, seed, values, source=f"{self.source}: trial config")

    def to_dict(self) -> dict:
        """What a joining worker must agree with; stored with the study. The user's dataset is stored as
        the study file gives it plus its fingerprint and class names, the user's model as its entry point
        and keyword arguments, and `root` (not fingerprinted: it differs between machines) is the study
        file's folder, against which export resolves relative paths."""
        user = self.data_source.user or self.model_source.user
        if self.data_source.user and self.facts is None:
            raise ValueError("the study's data must be loaded (studies.prepare) before it is stored or joined")
        out = {"dataset": self.data_source.to_dict(self.facts) if self.data_source.user else self.dataset,
               "model": self.model_source.to_dict() if self.model_source.user else self.model,
               "epochs": self.epochs, "seed": self.seed, "objective": self.objective, "sampler": self.sampler,
               "pruner": self.pruner, "space": self.space.to_dict()}
        if self.resolved_task != "classification":  # older studies' fingerprints stay as they were
            out["task"] = self.resolved_task
        if self.user_metric is not None:
            out["metric"] = {"entry": self.user_metric.entry, "direction": self.user_metric.direction}
        return {**out, "root": self.data_source.folder} if user else out

    def sampler_object(self):
        """A new sampler as the study file says, seeded with the study's seed unless it gives its own."""
        return build_sampler(self.sampler, self.seed, self.source)

    def pruner_object(self):
        """A new pruner as the study file says; Hyperband's max resource is `epochs`."""
        return build_pruner(self.pruner, self.epochs, self.source)

    def fingerprint(self) -> str:
        agreed = {k: v for k, v in self.to_dict().items() if k != "root"}
        return hashlib.sha256(json.dumps(agreed, sort_keys=True, default=str).encode()).hexdigest()[:16]


def load_study_file(path: str | Path) -> StudySpec:
    """Read and fully validate a study file and its search spaces; raises StudyError or SpaceError."""
    path = Path(path)
    source = str(path)
    data = read_yaml(path, "study file", StudyError)
    if not isinstance(data, dict):
        raise StudyError(source, "<file>", "a study file is a YAML mapping")
    check_keys(data, STUDY_FILE, source)  # each key's own value (_schema.py); what follows is between keys
    data = STUDY_FILE.filled(data)
    _check_name(source, data["name"])
    try:
        data_source = DataSource.parse(data.get("dataset"), origin=source, folder=path.parent)
        model_source = ModelSource.parse(data.get("model"), origin=source, folder=path.parent)
        check_entries(data_source, model_source)
    except SourceError as exc:
        raise StudyError(exc.source, exc.key, exc.reason) from None
    epochs, seed, n_trials, timeout = data["epochs"], data["seed"], data["n_trials"], data.get("timeout")
    task = _task(data.get("task"), source, data_source)
    objective, user_metric = _objective(data.get("objective", "val_loss"), data.get("direction"), task, source,
                                        path.parent)
    heartbeat = _heartbeat(data["heartbeat"], source)
    artifacts = data["artifacts"]
    space = compose(data["search_space"], data.get("params"), data.get("exclude", []), study_file=source,
                    relative_to=path.parent)
    spec = StudySpec(
        name=data["name"], source=source, data_source=data_source, model_source=model_source, space=space,
        epochs=epochs, seed=seed, sampler=_component(data["sampler"]), pruner=_component(data["pruner"]),
        objective=objective, user_metric=user_metric, task=task, n_trials=n_trials, timeout=timeout,
        baseline=data["baseline"], description=data.get("description", ""), heartbeat=heartbeat,
        artifacts=artifacts["path"], keep_checkpoints=artifacts["keep_checkpoints"],
        reconnect_timeout=float(data["reconnect_timeout"]), checkpoint_every=float(artifacts["checkpoint_every"]),
        pack=data["pack"], warm_start=parse_warm_start(data.get("warm_start"), source, path.parent),
    )
    check_space_values(spec)
    spec.sampler_object()  # bad sampler/pruner options fail now, not mid-run
    spec.pruner_object()
    return spec


def _task(value: Any, source: str, data: DataSource) -> str | None:
    """The stated task; the built-in datasets and image folders are classification."""
    if value is None:
        return None
    if value not in LOSSES:
        raise StudyError(source, "task", f"one of {', '.join(LOSSES)} (or leave it out: the targets decide), "
                         f"got {value!r}")
    if value != "classification" and data.type in ("builtin", "image_folder"):
        raise StudyError(source, "task", f"{data.describe()} is a classification dataset (its labels are "
                         f"classes); task: {value} needs arrays or a python entry")
    return value


def _objective(raw: Any, direction: Any, task: str | None, source: str, folder: Path) -> tuple[str, UserMetric | None]:
    """`val_<metric>` (its direction is the metric's) or the user's `{entry, direction}`."""
    if direction is not None and direction not in DIRECTIONS:
        raise StudyError(source, "direction", f"minimize or maximize, got {direction!r}")
    if isinstance(raw, dict):
        unknown = sorted(set(raw) - set(OBJECTIVE_KEYS))
        if unknown:
            raise StudyError(source, f"objective.{unknown[0]}", "unknown key (allowed: direction, entry)")
        entry, way = raw.get("entry"), raw.get("direction", direction)
        if not isinstance(entry, str) or ":" not in entry:
            raise StudyError(source, "objective.entry", f"'module:function' called as function(predictions, "
                             f"targets), got {entry!r}")
        if way not in DIRECTIONS:
            raise StudyError(source, "objective.direction", f"minimize or maximize (your metric's better side), "
                             f"got {way!r}")
        metric = UserMetric(entry, way, str(folder), source)
        check_entry(entry, folder, origin=source, key="objective.entry")
        if f"val_{metric.name}" in (f"val_{name}" for name in METRICS) or metric.name in ("train_loss", "lr"):
            raise StudyError(source, "objective.entry", f"the function's name {metric.name!r} is a built-in "
                             "metric's; name your function otherwise")
        return f"val_{metric.name}", metric
    name = raw.removeprefix("val_") if isinstance(raw, str) else None
    if name not in METRICS or not raw.startswith("val_"):
        raise StudyError(source, "objective", f"val_ and a metric ({', '.join(METRICS)}), or "
                         f"{{entry: 'module:function', direction: ...}} for your own, got {raw!r}")
    problem = metric_problem(name, task, 0) if task is not None else None
    if problem and "classes" not in problem:  # the class count is known once the data are loaded
        raise StudyError(source, "objective", problem)
    if direction is not None and direction != METRICS[name].direction:
        raise StudyError(source, "direction", f"{raw} is to be {METRICS[name].direction}d, not {direction!r}")
    return raw, None


def check_task_fits(spec: StudySpec, num_classes: int) -> None:
    """The objective's metric fits the data's task and outputs (AUROC of two classes, ...): checked once the
    data are loaded, which decide both."""
    if spec.user_metric is not None:
        return
    problem = metric_problem(spec.objective.removeprefix("val_"), spec.resolved_task, num_classes)
    if problem:
        raise StudyError(spec.source, "objective", problem)


def check_entries(data: DataSource | None, model: ModelSource | None) -> None:
    """The user's entry points (a python dataset's, a model's) are the file's own modules, or trusted."""
    if data is not None and data.type == "python":
        check_entry(data.entry, data.folder, origin=data.origin, key=f"{data.key}.entry")
    if model is not None and model.user:
        check_entry(model.entry, model.folder, origin=model.origin, key=f"{model.key}.entry")


def check_space_values(spec: StudySpec) -> None:
    """Every value the space can produce must be a valid training setting (catches `hflip` on digits,
    a misspelt activation, a learning rate range reaching 0) before anything runs. With the user's own
    model, any other name is a parameter of that model, handed to its builder."""
    gates = {parent for p in spec.space.params for parent in p.when}
    own = model_params(dict.fromkeys(spec.space.names))
    base = {"dataset": spec.dataset, "model": spec.model, "task": spec.resolved_task, "epochs": spec.epochs}
    try:  # the study file's own settings first: an error in them is theirs, not the first parameter's
        TrainConfig.from_dict({**base, "seed": spec.seed})
    except ConfigError as exc:
        raise StudyError(spec.source, exc.key, exc.reason) from None
    for p in spec.space.params:
        if p.name in own:
            if (p.name in gates and p.kind == "categorical") or spec.model_source.user:
                continue
            raise SpaceError(p.source, f"params.{p.name}", "not a training setting "
                             f"(settings: {', '.join(sorted(set(TrainConfig.field_names()) - set(base)))})")
        if p.name in base:
            raise SpaceError(p.source, f"params.{p.name}", "set at the top of the study file, not in the space")
        candidates = p.extremes
        for value in candidates:
            try:
                _valid_for_some_task(spec, {**base, p.name: value})
            except ConfigError as exc:
                if exc.key in base:  # a rule between this value and a study setting: both are named
                    raise StudyError(spec.source, exc.key, f"{exc.reason} (with params.{p.name} = {value!r} "
                                     f"from {p.source})") from None
                raise SpaceError(p.source, f"params.{p.name}", f"value {value!r} is invalid: {exc.reason}") from None
        # An image folder is images: hflip needs flip_safe. Arrays are checked once loaded (prepare), where what
        # they hold is known: feature vectors take no augmentation at all, which is said first.
        if p.name == "hflip" and True in candidates and spec.data_source.type == "image_folder" \
                and not spec.data_source.flip_safe:
            raise SpaceError(p.source, "params.hflip", f"{spec.data_source.describe()} is not marked flip_safe (a "
                             "mirrored image may not keep its label); set flip_safe: true in dataset, or exclude hflip")


def _valid_for_some_task(spec: StudySpec, values: dict[str, Any]) -> None:
    """Raise the ConfigError of `values` for the study's task; while the data have not decided an unstated task
    (`adamtune check` before loading), a value any task takes passes, and `prepare` checks again."""
    try:
        TrainConfig.from_dict(values)
    except ConfigError:
        if spec.task is not None or spec.facts is not None:
            raise
        for task in LOSSES:
            try:
                TrainConfig.from_dict({**values, "task": task})
                return
            except ConfigError:
                pass
        raise


def check_pack(value: Any, source: str, key: str) -> int | str:
    """The pack size from the command line (`--pack`), checked as the study file's `pack` is."""
    STUDY_FILE.keys["pack"].check(value, source, key)
    return value


def _heartbeat(raw: dict, source: str) -> Heartbeat:
    beat = Heartbeat(**raw)
    if beat.grace_period < 2 * beat.interval:
        raise StudyError(source, "heartbeat.grace_period", f"must be at least twice the interval "
                         f"({2 * beat.interval} s) or a live but busy worker's trial is failed as stale")
    return beat


MAX_NAME_BYTES = 255  # the name is a directory under the artifacts root: NAME_MAX of ext4, xfs, tmpfs, btrfs


def _check_name(source: str, name: str) -> None:
    """The study name is also a directory under the artifacts root: it must stay there and fit there, counted
    in the bytes a file system stores (UTF-8: a CJK character is 3 bytes, an emoji 4), not in characters.
    A control character (NUL, newline) is refused too: PostgreSQL refuses NUL, and no name should hide one."""
    bad = next((c for c in name if ord(c) < 32 or ord(c) == 127), None)
    if bad is not None:
        raise StudyError(source, "name", f"contains the control character {bad!r}; use printable characters")
    if "/" in name or "\\" in name or name in (".", ".."):
        raise StudyError(source, "name", f"{name!r} would leave the artifacts directory; use a name without "
                         "'/', '\\' or '..' (e.g. my_study)")
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate ("\ud800" in YAML): no file system can name it
        raise StudyError(source, "name", f"{name!r} is not valid Unicode text") from None
    if size > MAX_NAME_BYTES:
        raise StudyError(source, "name", f"{len(name)} characters take {size} bytes in UTF-8; a directory name "
                         f"holds at most {MAX_NAME_BYTES} bytes (a CJK character takes 3, an emoji 4)")


def _component(raw: str | dict) -> dict:
    """A sampler or pruner as its factory takes it: a mapping with `type` (filled in by STUDY_FILE)."""
    return {"type": raw} if isinstance(raw, str) else raw
