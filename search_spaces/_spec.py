"""One search-space parameter, parsed from YAML and checked, with the key path of every error."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from adamtune.errors import InputError

KINDS = ("float", "int", "categorical", "fixed")
COMPLEMENT_PREFIX = "one_minus_"  # a `log_complement` parameter's stored name starts with it
_KEYS = {
    "float": {"type", "low", "high", "log", "step", "log_complement", "default", "when", "help"},
    "int": {"type", "low", "high", "log", "step", "default", "when", "help"},
    "categorical": {"type", "choices", "default", "when", "help"},
    "fixed": {"type", "value", "when", "help"},
}
# What each key takes, as JSON Schema for `adamtune schema`: the rules parse_param applies below. A bound or
# step may be a string: YAML 1.1 reads `1e-5` (no dot) as one, and _number accepts it.
_NUMBER = {"type": ["number", "string"]}
_KEY_SCHEMAS: dict[str, dict[str, Any]] = {
    "type": {"enum": list(KINDS), "description": "float, int, categorical or fixed"},
    "low": {**_NUMBER, "description": "the range's low end"},
    "high": {**_NUMBER, "description": "the range's high end"},
    "log": {"type": "boolean", "description": "sample on a log scale"},
    "step": {**_NUMBER, "description": "sample multiples of step above low (> 0; not with log)"},
    "log_complement": {"type": "boolean", "description": "sample 1 - x on a log scale (beta2 near 1)"},
    "choices": {"type": "array", "minItems": 1, "items": {"type": ["null", "boolean", "number", "string"]},
                "description": "the values a categorical parameter takes"},
    "value": {"description": "the value of a fixed parameter"},
    "default": {"description": "the baseline trial's value, inside the range or among the choices"},
    "when": {"type": "object", "minProperties": 1, "description": "exists only when each parent parameter named "
             "here has one of the values given"},
    "help": {"description": "what the parameter does, in a line"},
}


class SpaceError(InputError):
    """Bad search-space input: names the file, the key path and the reason."""


@dataclass(frozen=True)
class ParamSpec:
    """A parameter of the search space; `when` makes it exist only for given parent values."""

    name: str
    kind: str
    source: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    log_complement: bool = False
    choices: tuple = ()
    value: Any = None
    default: Any = None
    when: dict[str, tuple] = field(default_factory=dict)
    help: str = ""

    @property
    def optuna_name(self) -> str:
        """The name the trial stores: `one_minus_beta2` when sampled as 1-beta2 on a log scale."""
        return stored_name(self.name, self.log_complement)

    @property
    def extremes(self) -> tuple:
        """The values that bound what the parameter can take: each choice, the fixed value, or both ends of
        the range. Checking them checks the whole space without sampling it."""
        return {"categorical": self.choices, "fixed": (self.value,)}.get(self.kind, (self.low, self.high))

    def start(self) -> Any:
        """The value a trial built without sampling gives it: the fixed value, else the default, else the first
        choice or the low end."""
        if self.kind == "fixed":
            return self.value
        if self.default is not None:
            return self.default
        return self.choices[0] if self.kind == "categorical" else self.low

    def nearest(self, value: Any) -> Any:
        """The value this parameter can take that is nearest `value` (`value` itself when it can): the default a
        fragment gave follows a study's override that moves the range away from it. A numeric choice nearest
        in value (the first of a tie), else the first choice; a range's end."""
        if self.contains(value) or self.kind == "fixed":
            return value
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if self.kind == "categorical":
            numbers = [c for c in self.choices if isinstance(c, (int, float)) and not isinstance(c, bool)]
            return min(numbers, key=lambda c: abs(c - value)) if number and numbers else self.choices[0]
        assert self.low is not None and self.high is not None
        return min(max(value, self.low), self.high) if number else self.low

    def suggest(self, trial) -> Any:
        """The only place that calls `trial.suggest_*`; returns the value under the public name."""
        if self.kind == "fixed":
            return self.value
        if self.kind == "categorical":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.name, self.low, self.high, step=self.step or 1, log=self.log)
        assert self.low is not None and self.high is not None  # a float or int parameter has both bounds
        if self.log_complement:
            complement = trial.suggest_float(self.optuna_name, _complement(self.high), _complement(self.low), log=True)
            return from_complement(complement)
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)

    def internal_value(self, public_value: Any) -> Any:
        """The value as the trial stores it (for `enqueue_trial`)."""
        return _complement(public_value) if self.log_complement else public_value

    def describe(self) -> str:
        """The parameter in words, as `adamtune check` lists it."""
        if self.kind == "fixed":
            text = f"fixed {self.value!r}"
        elif self.kind == "categorical":
            text = "one of " + ", ".join(map(str, self.choices))
        else:
            scale = " log(1-x)" if self.log_complement else " log" if self.log else ""
            text = f"{self.kind} [{self.low}, {self.high}]{scale}" + (f" step {self.step}" if self.step else "")
        if self.when:
            text += "  when " + ", ".join(f"{k} in {list(v)}" for k, v in self.when.items())
        return text

    def contains(self, value: Any) -> bool:
        if self.kind == "fixed":
            return value == self.value
        if self.kind == "categorical":
            return any(value == c and type(value) is type(c) for c in self.choices)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.kind == "int" and not float(value).is_integer():
            return False
        assert self.low is not None and self.high is not None
        return self.low <= value <= self.high


def param_schema() -> dict[str, Any]:
    """One parameter as a study's `params:` gives it, as JSON Schema (draft 2020-12): with a `type`, only
    the keys of that kind; without one (changing a fragment's parameter), any of them."""
    by_kind = [{"if": {"properties": {"type": {"const": kind}}, "required": ["type"]},
                "then": {"propertyNames": {"enum": sorted(_KEYS[kind])}}} for kind in KINDS]
    return {"type": "object", "properties": {name: _KEY_SCHEMAS[name] for name in sorted(set().union(*_KEYS.values()))},
            "additionalProperties": False, "allOf": by_kind}


def stored_name(name: str, log_complement: bool) -> str:
    """The name a trial stores a parameter under (Optuna's name): a `log_complement` one is sampled as 1 - x."""
    return f"{COMPLEMENT_PREFIX}{name}" if log_complement else name


def is_active(when: dict[str, Any], values: dict[str, Any]) -> bool:
    """The `when` rule: a conditional parameter exists only once each parent has one of the values given for
    it (a parent that does not exist enables nothing). Sampling, defaults and reading stored trials obey it."""
    return all(parent in values and values[parent] in allowed for parent, allowed in when.items())


def from_complement(stored: float) -> float:
    """The public value of a `log_complement` parameter from the value the trial stores (1 - x): exactly
    what the trial trained with, so a config derived from stored params reproduces the trial."""
    return 1.0 - stored


def _complement(x: float) -> float:
    """1 - x without float noise (1 - 0.9999 is 9.99999999999989e-05), so bounds and defaults agree."""
    return float(f"{1.0 - x:.12g}")


def parse_param(name: str, raw: Any, source: str, key: str) -> ParamSpec:
    """Parse one YAML mapping into a checked ParamSpec; `key` is the path shown in errors."""
    if not isinstance(raw, dict):
        raise SpaceError(source, key, f"expected a mapping with a 'type', got {type(raw).__name__}")
    kind = raw.get("type")
    if kind not in KINDS:
        raise SpaceError(source, f"{key}.type", f"must be one of {', '.join(KINDS)}, got {kind!r}")
    unknown = sorted(set(raw) - _KEYS[kind])
    if unknown:
        raise SpaceError(source, f"{key}.{unknown[0]}", f"unknown key for a {kind} parameter "
                         f"(allowed: {', '.join(sorted(_KEYS[kind]))})")
    when = _parse_when(raw.get("when"), source, f"{key}.when")
    common = dict(name=name, kind=kind, source=source, when=when, help=str(raw.get("help", "")))
    if kind == "fixed":
        if "value" not in raw:
            raise SpaceError(source, f"{key}.value", "a fixed parameter needs a value")
        return ParamSpec(value=raw["value"], **common)
    if kind == "categorical":
        choices = raw.get("choices")
        if not isinstance(choices, list) or not choices:
            raise SpaceError(source, f"{key}.choices", "must be a non-empty list")
        if len(set(map(repr, choices))) != len(choices):
            raise SpaceError(source, f"{key}.choices", "contains the same choice twice")
        for i, choice in enumerate(choices):
            if not (choice is None or isinstance(choice, (bool, int, float, str))):
                raise SpaceError(source, f"{key}.choices[{i}]", "choices must be null, bool, int, float or str")
        spec = ParamSpec(choices=tuple(choices), **common)
        return _with_default(spec, raw, source, key)
    spec = _parse_range(kind, raw, source, key, common)
    return _with_default(spec, raw, source, key)


def _parse_range(kind: str, raw: dict, source: str, key: str, common: dict) -> ParamSpec:
    bounds = {}
    for bound in ("low", "high"):
        if bound not in raw:
            raise SpaceError(source, f"{key}.{bound}", f"a {kind} parameter needs '{bound}'")
        bounds[bound] = _number(raw[bound], kind, source, f"{key}.{bound}")
    low, high = bounds["low"], bounds["high"]
    log = _flag(raw, "log", source, key)
    complement = _flag(raw, "log_complement", source, key)
    step = raw.get("step")
    if step is not None:
        step = _number(step, kind, source, f"{key}.step")
        if step <= 0:
            raise SpaceError(source, f"{key}.step", f"must be > 0, got {step}")
    if low > high:
        raise SpaceError(source, f"{key}.low", f"low ({low}) is greater than high ({high})")
    if log and step is not None and not (kind == "int" and step == 1):
        raise SpaceError(source, f"{key}.step", "cannot be combined with log: true")
    if log and complement:
        raise SpaceError(source, f"{key}.log_complement", "use either log or log_complement, not both")
    if log and low <= 0:
        raise SpaceError(source, f"{key}.low", f"a log range needs low > 0, got {low}")
    if complement and not (0 <= low < high < 1):
        raise SpaceError(source, f"{key}.log_complement", f"needs 0 <= low < high < 1, got [{low}, {high}]")
    return ParamSpec(low=low, high=high, log=log, step=step, log_complement=complement, **common)


def follow_default(spec: ParamSpec, default: Any) -> ParamSpec:
    """`spec`, parsed from a fragment's parameter under a study's override that gives no default, with the
    fragment's `default` moved to the nearest value the override allows (`batch_size: {choices: [16, 32]}`
    under the fragment's default 64: 32), rather than refused as outside a range the user never gave it."""
    if spec.kind in ("float", "int") and isinstance(default, str):
        default = _number(default, spec.kind, spec.source, f"{spec.name}.default")
    return replace(spec, default=spec.nearest(default))


def _with_default(spec: ParamSpec, raw: dict, source: str, key: str) -> ParamSpec:
    if "default" not in raw:
        return spec
    default = raw["default"]
    if spec.kind in ("float", "int") and isinstance(default, str):
        default = _number(default, spec.kind, source, f"{key}.default")
    if not spec.contains(default):
        raise SpaceError(source, f"{key}.default", f"{default!r} lies outside the parameter's range "
                         "(the baseline trial uses it; give a default inside the range)")
    return replace(spec, default=default)


def _parse_when(raw: Any, source: str, key: str) -> dict[str, tuple]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not raw:
        raise SpaceError(source, key, "must map a parent parameter to the value(s) that enable this one")
    return {parent: tuple(v) if isinstance(v, list) else (v,) for parent, v in raw.items()}


def _flag(raw: dict, name: str, source: str, key: str) -> bool:
    value = raw.get(name, False)
    if not isinstance(value, bool):
        raise SpaceError(source, f"{key}.{name}", f"must be true or false, got {value!r}")
    return value


def _number(value: Any, kind: str, source: str, key: str) -> float | int:
    # YAML 1.1 reads `1e-5` (no dot) as a string; accept it rather than surprise the user.
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise SpaceError(source, key, f"expected a number, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SpaceError(source, key, f"expected a finite number, got {value!r}")
    if kind == "int":
        if not float(value).is_integer():
            raise SpaceError(source, key, f"expected an integer, got {value!r}")
        return int(value)
    return float(value)
