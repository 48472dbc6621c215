"""What a study trains with: the `model:` value of a study file (or the `model` section of an export), a
built-in name or the user's entry point, parsed and checked without torch, so `adamtune check` stays fast.
The entry's module resolves against `folder`: the study file's folder, or the export file's for `train`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adamtune.data import ENTRY_PATTERN, SourceError, is_entry

BUILTIN_MODELS = ("mlp", "cnn", "resnet")


def model_schema() -> dict[str, Any]:
    """`model:` as JSON Schema (draft 2020-12), as `ModelSource.parse` reads it: a built-in name, or the
    user's entry point with its keyword arguments."""
    entry = {"type": "string", "pattern": ENTRY_PATTERN, "description": "module:callable, imported from the study "
             "file's folder first, called as entry(input_shape, num_classes, params, **the other keys)"}
    return {"anyOf": [{"enum": list(BUILTIN_MODELS)},
                      {"type": "object", "properties": {"entry": entry}, "required": ["entry"]}]}


@dataclass(frozen=True)
class ModelSource:
    """A built-in model (`name`) or the user's `entry`, called as
    entry(input_shape, num_classes, params, **kwargs) -> torch.nn.Module."""

    name: str = ""
    entry: str = ""
    kwargs: dict[str, Any] = field(default_factory=dict)
    folder: str = ""  # absolute; the entry's module is imported from here first
    origin: str = ""
    key: str = "model"

    @classmethod
    def builtin(cls, name: str) -> ModelSource:
        return cls(name=name)

    @classmethod
    def parse(cls, raw: Any, *, origin: str, folder: str | Path, key: str = "model") -> ModelSource:
        """A built-in name, or {entry: "module:callable", ...}: the other keys are keyword arguments."""
        folder = str(Path(folder).resolve())
        if isinstance(raw, str) and raw:
            if raw not in BUILTIN_MODELS:
                raise SourceError(origin, key, f"must be one of {', '.join(BUILTIN_MODELS)} or a mapping "
                                  f"{{entry: 'module:callable', ...}}, got {raw!r}")
            return cls(name=raw, folder=folder, origin=origin, key=key)
        if not isinstance(raw, dict) or not is_entry(raw.get("entry")):
            raise SourceError(origin, f"{key}.entry" if isinstance(raw, dict) else key,
                              "required: a built-in model name or a mapping {entry: 'module:callable', ...} "
                              f"(the module imported from {folder} first)")
        return cls(entry=raw["entry"], kwargs={k: v for k, v in raw.items() if k != "entry"}, folder=folder,
                   origin=origin, key=key)

    @classmethod
    def stored(cls, raw: dict[str, Any], *, origin: str, folder: str | Path, key: str = "model") -> ModelSource:
        """From the stored or exported form {entry, kwargs}."""
        kwargs = raw.get("kwargs") or {}
        if not is_entry(raw.get("entry")) or not isinstance(kwargs, dict):
            raise SourceError(origin, key, "expected {entry: 'module:callable', kwargs: {...}} as "
                              "`adamtune export` writes it")
        return cls(entry=raw["entry"], kwargs=dict(kwargs), folder=str(Path(folder).resolve()), origin=origin,
                   key=key)

    @property
    def user(self) -> bool:
        return bool(self.entry)

    @property
    def label(self) -> str:
        """The value of TrainConfig.model: the built-in's name, or the entry point."""
        return self.entry or self.name

    def to_dict(self) -> dict[str, Any]:
        """The stored form of a user model (what joining workers must agree with)."""
        return {"entry": self.entry, "kwargs": dict(self.kwargs)}
