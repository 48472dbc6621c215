"""Compose YAML fragments into one ordered search space and sample it on a trial."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

from ._spec import ParamSpec, SpaceError, follow_default, is_active, parse_param
from ._stored import StoredSpace
from ._yaml import read_yaml

_FRAGMENT_KEYS = {"description", "params"}


def builtin_fragments() -> list[str]:
    """Names of the fragments shipped in this package (`adam`, `schedule`, ...)."""
    return sorted(p.name[:-5] for p in resources.files(__package__).iterdir() if p.name.endswith(".yaml"))


def fragment_path(name: str, relative_to: Path | None = None) -> Path:
    """A fragment is a built-in name or a path (relative to the study file that names it)."""
    if name.endswith((".yaml", ".yml")) or "/" in name:
        path = Path(name)
        if not path.is_absolute() and relative_to is not None:
            path = relative_to / path
        return path
    return Path(str(resources.files(__package__).joinpath(f"{name}.yaml")))


def fragment_label(source: str) -> str:
    """How a study names the fragment file `source`: a built-in by its name (`augmentation`), any other by its path."""
    path = Path(source)
    return path.stem if path == fragment_path(path.stem) else source


@dataclass(frozen=True)
class SearchSpace:
    """Ordered parameters; a conditional one follows its parent so sampling is one pass."""

    params: tuple[ParamSpec, ...]

    def __post_init__(self) -> None:
        seen: dict[str, ParamSpec] = {}
        for spec in self.params:
            if spec.name in seen:
                raise SpaceError(spec.source, spec.name,
                                 f"duplicate parameter name (also defined in {seen[spec.name].source})")
            for parent, values in spec.when.items():
                if parent not in seen:
                    reason = ("conditional on an unknown parent" if parent not in self.names
                              else "its parent must be defined before it")
                    raise SpaceError(spec.source, f"{spec.name}.when.{parent}", reason)
                # One reachable value is enough: a study may narrow the parent (scheduler: [none,
                # batch_cosine]) and keep a child shared with a choice it dropped (cosine_min_factor).
                bad = [v for v in values if not _can_take(seen[parent], v)]
                if len(bad) == len(values):
                    never = repr(bad[0]) if len(bad) == 1 else f"any of {bad}"
                    raise SpaceError(spec.source, f"{spec.name}.when.{parent}",
                                     f"parent '{parent}' can never be {never}")
            seen[spec.name] = spec

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.params]

    def __getitem__(self, name: str) -> ParamSpec:
        for spec in self.params:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def sample(self, trial) -> dict[str, Any]:
        """Suggest every active parameter; returns values by their public names."""
        values: dict[str, Any] = {}
        for spec in self.params:
            if is_active(spec.when, values):
                values[spec.name] = spec.suggest(trial)
        return values

    def sampled(self, values: dict[str, Any]) -> dict[str, Any]:
        """Only the values a sampler chose (fixed parameters left out)."""
        return self.stored.sampled(values)

    def start_values(self, chosen: dict[str, Any] | None = None) -> dict[str, Any]:
        """Every active parameter's value without sampling: as `chosen` where given, else `ParamSpec.start`.
        A study builds its model with these before it runs."""
        chosen = chosen or {}
        values: dict[str, Any] = {}
        for spec in self.params:
            if is_active(spec.when, values):
                values[spec.name] = chosen[spec.name] if spec.name in chosen else spec.start()
        return values

    @cached_property
    def stored(self) -> StoredSpace:
        """The space as a study stores it, which reads the values its trials store."""
        return StoredSpace(self.to_dict())

    def baseline(self) -> dict[str, Any]:
        """Parameters of the baseline trial by their stored names, from each parameter's default."""
        chosen: dict[str, Any] = {}
        stored: dict[str, Any] = {}
        for spec in self.params:
            if not is_active(spec.when, chosen):
                continue
            if spec.kind == "fixed":
                chosen[spec.name] = spec.value
            elif spec.default is not None:
                chosen[spec.name] = spec.default
                stored[spec.optuna_name] = spec.internal_value(spec.default)
        return stored

    def to_dict(self) -> dict[str, dict]:
        """A plain description, stored with the study so joining workers can detect a changed space."""
        out = {}
        for p in self.params:
            entry: dict[str, Any] = {"type": p.kind}
            for key in ("low", "high", "step", "value", "default"):
                if getattr(p, key) is not None:
                    entry[key] = getattr(p, key)
            if p.log:
                entry["log"] = True
            if p.log_complement:
                entry["log_complement"] = True
            if p.choices:
                entry["choices"] = list(p.choices)
            if p.when:
                entry["when"] = {k: list(v) for k, v in p.when.items()}
            out[p.name] = entry
        return out


def compose(fragments: Iterable[str], overrides: dict[str, Any] | None = None,
            exclude: Iterable[str] = (), *, study_file: str = "<study>",
            relative_to: Path | None = None) -> SearchSpace:
    """Fragments in order, then the study's per-parameter overrides and additions, minus `exclude`."""
    raw: dict[str, tuple[dict, str, str]] = {}  # name -> (mapping, source file, key path)
    for name in fragments:
        path = fragment_path(name, relative_to)
        if not path.exists():
            hint = f"built-in fragments: {', '.join(builtin_fragments())}"
            raise SpaceError(study_file, f"search_space[{name}]", f"unknown fragment ({hint})")
        for pname, mapping, key in _fragment_params(path):
            if pname in raw:
                raise SpaceError(str(path), key, f"duplicate parameter name (also defined in {raw[pname][1]})")
            raw[pname] = (mapping, str(path), key)
    inherited: dict[str, Any] = {}  # a fragment's default under an override that gives none: it follows the range
    for pname, change in (overrides or {}).items():
        key = f"params.{pname}"
        if not isinstance(change, dict):
            raise SpaceError(study_file, key, "expected a mapping of keys to override")
        if pname in raw and ("type" not in change or change["type"] == raw[pname][0].get("type")):
            merged = {**raw[pname][0], **change}
            if "default" not in change and "default" in merged:
                inherited[pname] = merged.pop("default")
            raw[pname] = (merged, study_file, key)
        else:
            raw[pname] = (change, study_file, key)
    for pname in exclude:
        if pname not in raw:
            raise SpaceError(study_file, f"exclude[{pname}]", "no such parameter in the search space")
        del raw[pname]
    specs = [parse_param(n, m, src, key) for n, (m, src, key) in raw.items()]
    specs = [follow_default(s, inherited[s.name]) if s.name in inherited else s for s in specs]
    return SearchSpace(tuple(_parents_first(specs)))


def _fragment_params(path: Path) -> list[tuple[str, dict, str]]:
    data = read_yaml(path, "search-space fragment", SpaceError)
    if not isinstance(data, dict) or not isinstance(data.get("params"), dict):
        raise SpaceError(str(path), "params", "a fragment is a mapping with a 'params' mapping")
    unknown = sorted(set(data) - _FRAGMENT_KEYS)
    if unknown:
        raise SpaceError(str(path), unknown[0], f"unknown key (allowed: {', '.join(sorted(_FRAGMENT_KEYS))})")
    return [(name, mapping, f"params.{name}") for name, mapping in data["params"].items()]


def _parents_first(specs: list[ParamSpec]) -> list[ParamSpec]:
    """Stable order in which every parent precedes its children (unknown parents left for the check)."""
    names = {s.name for s in specs}
    placed: list[ParamSpec] = []
    done: set[str] = set()
    pending = list(specs)
    while pending:
        progress = [s for s in pending if all(p in done or p not in names for p in s.when)]
        if not progress:  # a cycle: keep the order and let the check report it
            placed.extend(pending)
            break
        for s in progress:
            placed.append(s)
            done.add(s.name)
        pending = [s for s in pending if s.name not in done]
    return placed


def _can_take(parent: ParamSpec, value: Any) -> bool:
    if parent.kind == "categorical":
        return value in parent.choices
    return parent.contains(value)
