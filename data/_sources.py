"""What a study trains on: the `dataset:` value of a study file (or the `data` section of an export),
parsed and checked without torch, so `adamtune check` stays fast.

A dataset is a built-in name or the user's image folder, array file or Python entry point. Relative paths
resolve against `folder`: the study file's folder, or the export file's for `train`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._catalog import BUILTIN_DATASETS
from ._entry import ENTRY_PATTERN, is_entry
from ._errors import SourceError

DATA_TYPES = ("image_folder", "arrays", "python")
_DATA_KEYS = {
    "image_folder": {"type", "path", "val", "test", "size", "channels", "skip_bad_images", "flip_safe"},
    "arrays": {"type", "path", "flip_safe"},
    "python": {"type", "entry", "flip_safe"},  # any other key is a keyword argument of the entry point
}

# What each key takes, as JSON Schema for `adamtune schema`: the rules _text, _size, _channels, _flag and
# _check_paths apply below (null: absent), with the line README's table gives each.
_PATH = {"type": ["string", "null"]}
_KEY_SCHEMAS: dict[str, dict[str, Any]] = {
    "type": {"enum": list(DATA_TYPES), "description": "image_folder, arrays or python"},
    "path": {"type": "string", "description": "the image folder (its training part) or the .npz file, relative to the "
             "study file"},
    "val": {**_PATH, "description": "the folder of the validation part (optional)"},
    "test": {**_PATH, "description": "the folder of the test part (optional)"},
    "size": {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "array", "items": {"type": "integer", "minimum": 1},
                                                           "minItems": 2, "maxItems": 2}, {"type": "null"}],
             "description": "[height, width] (or one number) every image is resized to"},
    "channels": {"enum": [1, 3, None], "description": "1 (grey) or 3 (RGB); default: grey when every image is grey"},
    "skip_bad_images": {"type": "boolean", "description": "skip unreadable images and count them"},
    "entry": {"type": "string", "pattern": ENTRY_PATTERN, "description": "module:function, called with the "
              "mapping's other keys as keyword arguments"},
    "flip_safe": {"type": "boolean", "description": "a mirrored image keeps its label, so hflip may be searched"},
}
_NEEDS = {"image_folder": "path", "arrays": "path", "python": "entry"}  # the key _check_paths requires

# What each kind of input is: the shape of one sample.
KIND_SHAPES = {"image": "images (C, H, W)", "signal": "1-D signals (C, L)", "features": "feature vectors (D,)"}


@dataclass(frozen=True)
class DataFacts:
    """What loading the data found; the fingerprint, class names and (when not classification) the task are
    stored with the study and exported. `task_reason` (how the task was decided) is only said, never stored:
    the same data and task train the same whether the task was stated or inferred."""

    fingerprint: str  # of the files (image folders) or the arrays; "" for a built-in dataset
    classes: tuple[str, ...]
    shape: tuple[int, ...]  # one sample
    kind: str  # image, signal or features
    counts: tuple[int, int, int]  # train, validation, test samples
    skipped: tuple[str, ...] = ()  # unreadable images skipped (skip_bad_images: true)
    split: dict[str, Any] = field(default_factory=dict)  # how validation and test were made: "given", or a share
    task: str = "classification"  # classification, regression or multilabel (data._targets.TASKS)
    task_reason: str = ""  # "stated", "inferred: y is float", ...

    @property
    def outputs(self) -> str:
        """What `classes` names: the classes, the regression targets or the labels."""
        return {"regression": "targets", "multilabel": "labels"}.get(self.task, "classes")


@dataclass(frozen=True)
class DataSource:
    """A built-in dataset (`name`) or the user's data (`type` in DATA_TYPES)."""

    type: str = "builtin"
    name: str = ""
    path: str = ""  # the image folder (its training part) or the .npz file, as written
    val: str = ""
    test: str = ""
    entry: str = ""
    kwargs: dict[str, Any] = field(default_factory=dict)
    size: tuple[int, int] | None = None  # (height, width) every image is resized to
    channels: int | None = None  # 1 or 3; None: grey when every image is grey
    skip_bad_images: bool = False
    flip_safe: bool = False
    folder: str = ""  # absolute; relative paths and modules resolve against it
    origin: str = ""  # the file this came from, for errors
    key: str = "dataset"  # its key in that file

    @classmethod
    def builtin(cls, name: str) -> DataSource:
        return cls(name=name)

    @classmethod
    def parse(cls, raw: Any, *, origin: str, folder: str | Path, key: str = "dataset") -> DataSource:
        """A built-in name or a mapping {type: image_folder|arrays|python, ...}; checks that every path exists."""
        folder = str(Path(folder).resolve())
        if isinstance(raw, str) and raw:
            if raw not in BUILTIN_DATASETS:
                raise SourceError(origin, key, f"must be one of {', '.join(BUILTIN_DATASETS)} or a mapping "
                                  f"{{type: {'|'.join(DATA_TYPES)}, ...}}, got {raw!r}")
            return cls(name=raw, folder=folder, origin=origin, key=key)
        if not isinstance(raw, dict):
            raise SourceError(origin, key, "required: a built-in dataset name or a mapping "
                              f"{{type: {'|'.join(DATA_TYPES)}, ...}}")
        kind = raw.get("type")
        if kind not in DATA_TYPES:
            raise SourceError(origin, f"{key}.type", f"must be one of {', '.join(DATA_TYPES)}, got {kind!r}")
        known = _DATA_KEYS[kind]
        if kind != "python":
            unknown = sorted(set(raw) - known)
            if unknown:
                raise SourceError(origin, f"{key}.{unknown[0]}", f"unknown key for {kind} data "
                                  f"(allowed: {', '.join(sorted(known))})")
        given = {k: v for k, v in raw.items() if k in known}  # for python, the other keys are keyword arguments
        source = cls(
            type=kind, path=_text(given, "path", origin, key), val=_text(given, "val", origin, key),
            test=_text(given, "test", origin, key), entry=_text(given, "entry", origin, key),
            kwargs={k: v for k, v in raw.items() if k not in known},
            size=_size(given.get("size"), origin, f"{key}.size"),
            channels=_channels(given.get("channels"), origin, key),
            skip_bad_images=_flag(given, "skip_bad_images", origin, key),
            flip_safe=_flag(given, "flip_safe", origin, key), folder=folder, origin=origin, key=key)
        source._check_paths()
        return source

    @property
    def user(self) -> bool:
        return self.type != "builtin"

    @property
    def label(self) -> str:
        """The value of TrainConfig.dataset: the built-in's name, or the type of the user's data."""
        return self.name if not self.user else self.type

    def describe(self) -> str:
        """The data in a few words, for messages: `digits`, `image_folder data/pets`, `python my_data:load`."""
        if not self.user:
            return self.name
        return f"{self.type} {self.entry or self.path}"

    def resolve(self, path: str) -> Path:
        return Path(self.folder) / path  # an absolute `path` stays itself

    def to_dict(self, facts: DataFacts | None = None) -> dict[str, Any]:
        """The mapping as the study file gives it (paths as written), plus the data's fingerprint and class
        names when `facts` are given: what the study stores. The task is added only when it is not
        classification, so the fingerprints of studies made before tasks existed do not change."""
        out: dict[str, Any] = {"type": self.type}
        for name in ("path", "val", "test"):
            value = getattr(self, name)
            if value:
                out[name] = value
        if self.entry:
            out["entry"] = self.entry
        if self.size is not None:
            out["size"] = list(self.size)
        if self.channels is not None:
            out["channels"] = self.channels
        if self.skip_bad_images:
            out["skip_bad_images"] = True
        if self.flip_safe:
            out["flip_safe"] = True
        out.update(self.kwargs)
        if facts is not None:
            out["fingerprint"] = facts.fingerprint
            out["classes"] = list(facts.classes)
            out["split"] = dict(facts.split)
            if facts.task != "classification":
                out["task"] = facts.task
        return out

    def _check_paths(self) -> None:
        if self.type == "python":
            if not is_entry(self.entry):
                raise SourceError(self.origin, f"{self.key}.entry", "required: an entry point 'module:callable' "
                                  f"(imported from {self.folder} first), got {self.entry or None!r}")
            return
        if not self.path:
            raise SourceError(self.origin, f"{self.key}.path", f"required for {self.type} data")
        for name in ("path", "val", "test"):
            value = getattr(self, name)
            if not value:
                continue
            resolved = self.resolve(value)
            try:
                resolved.stat()
            except FileNotFoundError:
                raise SourceError(self.origin, f"{self.key}.{name}", f"{resolved} does not exist") from None
            except OSError as exc:  # a name longer than the file system allows, a loop of links, ...
                raise SourceError(self.origin, f"{self.key}.{name}", f"{resolved}: {exc.strerror or exc}") from None
            if not resolved.exists():
                raise SourceError(self.origin, f"{self.key}.{name}", f"{resolved} does not exist")
            if self.type == "image_folder" and not resolved.is_dir():
                raise SourceError(self.origin, f"{self.key}.{name}", f"{resolved} is not a folder "
                                  "(an image folder holds one sub-folder of images per class)")
            if self.type == "arrays" and not resolved.is_file():
                raise SourceError(self.origin, f"{self.key}.{name}", f"{resolved} is not a file (an .npz "
                                  "written by numpy.savez with x, y and optionally x_val, y_val, x_test, y_test)")


def dataset_schema() -> dict[str, Any]:
    """`dataset:` as JSON Schema (draft 2020-12), from the names and key sets `DataSource.parse` checks
    against: a built-in name, or a mapping whose `type` decides its keys (a python entry's other keys are
    its keyword arguments)."""
    by_type = [{"if": {"properties": {"type": {"const": kind}}, "required": ["type"]},
                "then": {"properties": {name: _KEY_SCHEMAS[name] for name in sorted(_DATA_KEYS[kind])},
                         "required": [_NEEDS[kind]],
                         "additionalProperties": kind == "python"}}  # python: the other keys are keyword arguments
               for kind in DATA_TYPES]
    return {"anyOf": [{"enum": list(BUILTIN_DATASETS)},
                      {"type": "object", "properties": {"type": _KEY_SCHEMAS["type"]}, "required": ["type"],
                       "allOf": by_type}]}


def _text(raw: dict, name: str, origin: str, key: str) -> str:
    value = raw.get(name, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise SourceError(origin, f"{key}.{name}", f"a string, got {value!r}")
    return value


def _size(raw: Any, origin: str, key: str) -> tuple[int, int] | None:
    if raw is None:
        return None
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = [raw, raw]
    if (not isinstance(raw, list) or len(raw) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in raw)):
        raise SourceError(origin, key, f"[height, width] in pixels (or one number for a square), got {raw!r}")
    return raw[0], raw[1]


def _channels(raw: Any, origin: str, key: str) -> int | None:
    if raw is None or (raw in (1, 3) and not isinstance(raw, bool)):
        return raw
    raise SourceError(origin, f"{key}.channels", f"1 (grey) or 3 (RGB), got {raw!r}")


def _flag(raw: dict, name: str, origin: str, key: str) -> bool:
    value = raw.get(name, False)
    if not isinstance(value, bool):
        raise SourceError(origin, f"{key}.{name}", f"true or false, got {value!r}")
    return value
