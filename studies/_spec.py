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
from adamtune.training import ConfigError, ModelSource, TrainConfig, model_params

from ._errors import StudyError
from ._factories import build_pruner, build_sampler
from ._keys import check_keys
from ._schema import AUTO, STUDY_FILE

OBJECTIVES = {"val_loss": "minimize", "val_accuracy": "maximize"}


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
    objective: str = "val_loss"
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

    @property
    def direction(self) -> str:
        return OBJECTIVES[self.objective]

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
        study = {"dataset": self.dataset, "model": self.model, "epochs": self.epochs}
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
    objective = data.get("objective", "val_loss")
    if not isinstance(objective, str) or objective not in OBJECTIVES:
        raise StudyError(source, "objective", f"must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    direction = data.get("direction", OBJECTIVES[objective])
    if direction != OBJECTIVES[objective]:
        raise StudyError(source, "direction", f"{objective} is to be {OBJECTIVES[objective]}d, not {direction!r}")
    heartbeat = _heartbeat(data["heartbeat"], source)
    artifacts = data["artifacts"]
    space = compose(data["search_space"], data.get("params"), data.get("exclude", []), study_file=source,
                    relative_to=path.parent)
    spec = StudySpec(
        name=data["name"], source=source, data_source=data_source, model_source=model_source, space=space,
        epochs=epochs, seed=seed, sampler=_component(data["sampler"]), pruner=_component(data["pruner"]),
        objective=objective, n_trials=n_trials, timeout=timeout, baseline=data["baseline"],
        description=data.get("description", ""), heartbeat=heartbeat, artifacts=artifacts["path"],
        keep_checkpoints=artifacts["keep_checkpoints"], reconnect_timeout=float(data["reconnect_timeout"]),
        checkpoint_every=float(artifacts["checkpoint_every"]), pack=data["pack"],
    )
    check_space_values(spec)
    spec.sampler_object()  # bad sampler/pruner options fail now, not mid-run
    spec.pruner_object()
    return spec


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
    base = {"dataset": spec.dataset, "model": spec.model, "epochs": spec.epochs}
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
                TrainConfig.from_dict({**base, p.name: value})
            except ConfigError as exc:
                if exc.key in base:  # a rule between this value and a study setting: both are named
                    raise StudyError(spec.source, exc.key, f"{exc.reason} (with params.{p.name} = {value!r} "
                                     f"from {p.source})") from None
                raise SpaceError(p.source, f"params.{p.name}", f"value {value!r} is invalid: {exc.reason}") from None
        if p.name == "hflip" and True in candidates and spec.data_source.user and not spec.data_source.flip_safe:
            raise SpaceError(p.source, "params.hflip", f"{spec.data_source.describe()} is not marked flip_safe (a "
                             "mirrored image may not keep its label); set flip_safe: true in dataset, or exclude hflip")


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
