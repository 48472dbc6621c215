"""The kinds of value a study file's keys take, each stated once: how it checks a value (the one-line reason
`adamtune check` prints after the file and the key) and the same rule as JSON Schema (draft 2020-12), so an
editor and `check` refuse the same values. Rules between keys stay with load_study_file."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ._errors import StudyError

MAX_SECONDS = 10**9  # about 31 years; a timer waits at most threading.TIMEOUT_MAX (about 9.2e9 s)


@dataclass(frozen=True, kw_only=True)
class Key:
    """A key whose value any code below checks (or none): `help` is its one line in the schema."""

    help: str
    required: bool = False
    nullable: bool = False  # null means "the default"
    default: Any = None  # shown in the schema; what load_study_file takes when the key is absent

    def reason(self, value: Any) -> str | None:
        """Why `value` is refused, or None when it is taken."""
        return None

    def shape(self) -> dict[str, Any]:
        return {}

    def check(self, value: Any, source: str, key: str) -> None:
        if value is None and self.nullable:
            return
        reason = self.reason(value)
        if reason is not None:
            raise StudyError(source, key, reason)

    def schema(self) -> dict[str, Any]:
        shape = self.shape()
        if self.nullable:
            shape["type"] = [shape["type"], "null"]
        return {"description": self.help, **({"default": self.default} if self.default is not None else {}), **shape}


@dataclass(frozen=True, kw_only=True)
class Text(Key):
    """A string; a required one must not be empty."""

    pattern: str = ""

    def reason(self, value: Any) -> str | None:
        if self.required:
            return None if isinstance(value, str) and value else "required, a non-empty string"
        return None if isinstance(value, str) else f"a string, got {value!r}"

    def shape(self) -> dict[str, Any]:
        return {"type": "string", **({"minLength": 1} if self.required else {}),
                **({"pattern": self.pattern} if self.pattern else {})}


@dataclass(frozen=True, kw_only=True)
class Whole(Key):
    """An integer from `low` to `high` (a bool is not one); `unit` names what it counts, `word` is a name it
    also takes (`auto`), `what` says what it is in the message."""

    low: int
    high: int
    unit: str = ""
    word: str = ""
    what: str = ""

    def reason(self, value: Any) -> str | None:
        if (self.word and value == self.word) or (
                not isinstance(value, bool) and isinstance(value, int) and self.low <= value <= self.high):
            return None
        numbers = (f"a whole number of {self.unit} from {self.low} to {self.high:g}" if self.unit
                   else f"an integer from {self.low} to {self.high}")
        if self.word:
            numbers = f"{self.word} or {numbers}"
        return f"{self.what}: {numbers}, got {value!r}" if self.what else f"{numbers}, got {value!r}"

    def shape(self) -> dict[str, Any]:
        number = {"type": "integer", "minimum": self.low, "maximum": self.high}
        return {"anyOf": [{"const": self.word}, number]} if self.word else number


@dataclass(frozen=True, kw_only=True)
class Seconds(Key):
    """Seconds a timer can wait: from 0 (above 0 when `positive`) to MAX_SECONDS; threading and time.sleep
    refuse values near 1e10 (OverflowError). `what` says what they are between."""

    positive: bool = False
    what: str = ""

    def reason(self, value: Any) -> str | None:
        if not isinstance(value, bool) and isinstance(value, (int, float)) and (
                value > 0 if self.positive else value >= 0) and value <= MAX_SECONDS:
            return None
        span = f"> 0 and <= {MAX_SECONDS:g}" if self.positive else f"from 0 to {MAX_SECONDS:g}"
        return f"seconds {span}{self.what}{', or null' if self.nullable else ''}, got {value!r}"

    def shape(self) -> dict[str, Any]:
        return {"type": "number", ("exclusiveMinimum" if self.positive else "minimum"): 0, "maximum": MAX_SECONDS}


@dataclass(frozen=True, kw_only=True)
class Flag(Key):
    def reason(self, value: Any) -> str | None:
        return None if isinstance(value, bool) else f"true or false, got {value!r}"

    def shape(self) -> dict[str, Any]:
        return {"type": "boolean"}


@dataclass(frozen=True, kw_only=True)
class Choice(Key):
    choices: tuple[str, ...]

    def reason(self, value: Any) -> str | None:
        return None if value in self.choices else f"must be one of {', '.join(self.choices)}, got {value!r}"

    def shape(self) -> dict[str, Any]:
        return {"enum": list(self.choices)}


@dataclass(frozen=True, kw_only=True)
class Names(Key):
    """A list of strings; `expects` says what they name."""

    expects: str

    def reason(self, value: Any) -> str | None:
        return None if isinstance(value, list) and all(isinstance(v, str) for v in value) else self.expects

    def shape(self) -> dict[str, Any]:
        return {"type": "array", "items": {"type": "string"}}


@dataclass(frozen=True, kw_only=True)
class Table(Key):
    """A mapping of names the file chooses to `values` (JSON Schema), which a parser elsewhere checks."""

    values: dict[str, Any]
    expects: str

    def reason(self, value: Any) -> str | None:
        return None if isinstance(value, dict) else self.expects

    def shape(self) -> dict[str, Any]:
        return {"type": "object", "additionalProperties": self.values}


@dataclass(frozen=True, kw_only=True)
class Mapping(Key):
    """A mapping of the declared `keys`; `open` allows others too (a sampler's options)."""

    keys: dict[str, Key]
    open: bool = False

    def check(self, value: Any, source: str, key: str) -> None:
        if value is None and self.nullable:
            return
        if not isinstance(value, dict):
            *first, last = self.keys
            raise StudyError(source, key, f"a mapping with {', '.join(first)} and {last}" if first
                             else f"a mapping with {last}")
        check_keys(value, self, source, f"{key}.")

    def filled(self, data: dict) -> dict:
        """Checked `data` with each absent or null key's default, in nested mappings too."""
        out = dict(data)
        for name, key in self.keys.items():
            value = data.get(name)
            if isinstance(key, Mapping):
                value = key.filled(value or {})
            elif isinstance(key, NameOrMapping) and isinstance(value, dict):
                value = key.mapping.filled(value)
            elif value is None:
                value = key.default
            if value is None:
                out.pop(name, None)
            else:
                out[name] = value
        return out

    def shape(self) -> dict[str, Any]:
        required = [name for name, key in self.keys.items() if key.required]
        return {"type": "object", "properties": {name: key.schema() for name, key in self.keys.items()},
                **({"required": required} if required else {}), "additionalProperties": self.open}


@dataclass(frozen=True, kw_only=True)
class NameOrMapping(Key):
    """One of `names`, or a `mapping` (`{type: tpe, n_startup_trials: 6}`). Whether a name is known is checked
    where the names live (a registry), which names the key in its message."""

    names: tuple[str, ...]
    mapping: Mapping
    expects: str

    def check(self, value: Any, source: str, key: str) -> None:
        if isinstance(value, dict):
            self.mapping.check(value, source, key)
        elif not isinstance(value, str):
            raise StudyError(source, key, self.expects)

    def shape(self) -> dict[str, Any]:
        return {"anyOf": [{"enum": list(self.names)}, self.mapping.shape()]}


@dataclass(frozen=True, kw_only=True)
class Parsed(Key):
    """A value its own parser checks (the dataset, the model); `form` is that parser's JSON Schema."""

    form: dict[str, Any] = field(default_factory=dict)

    def shape(self) -> dict[str, Any]:
        return dict(self.form)


def check_keys(data: dict, mapping: Mapping, source: str, prefix: str = "") -> None:
    """Every key of `data` is declared (else `unknown key`), every declared key given, or required, is valid."""
    unknown = sorted(set(data) - set(mapping.keys), key=str)
    if unknown and not mapping.open:
        raise StudyError(source, f"{prefix}{unknown[0]}", f"unknown key (allowed: {', '.join(sorted(mapping.keys))})")
    for name, key in mapping.keys.items():
        if name in data or key.required:
            key.check(data.get(name), source, f"{prefix}{name}")
