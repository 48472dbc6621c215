"""An earlier trial's values fitted into a (possibly changed) search space, for a warm start: numbers
clipped into their range and onto their grid, values the space cannot take dropped (the sampler draws
those), each change said in words."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._space import SearchSpace
from ._spec import ParamSpec, is_active

_ON_GRID = 1e-8  # Optuna's own tolerance for a stepped value


@dataclass(frozen=True)
class Fitted:
    """What to enqueue (`stored`: by the names and in the form a trial stores, as `enqueue_trial` takes
    them) and what fitting changed, one phrase per parameter."""

    stored: dict[str, Any]
    changes: tuple[str, ...]


def fit_values(space: SearchSpace, values: Mapping[str, Any]) -> Fitted:
    """`values` (by public name) as this space can take them. A number outside its range is clipped into it
    (and an int or stepped one rounded onto its grid); a choice the space does not offer, a value for a
    parameter the space does not have, one its `when` switches off, or one the space fixes to another value
    is dropped. A parameter left out is sampled as usual."""
    known: dict[str, Any] = {}  # the new trial's values decided so far (fixed ones too), for `when`
    stored: dict[str, Any] = {}
    changes: list[str] = []
    for p in space.params:
        if p.kind == "fixed":
            known[p.name] = p.value
            if p.name in values and values[p.name] != p.value:
                changes.append(f"{p.name} {_show(values[p.name])} dropped (fixed at {_show(p.value)} here)")
            continue
        if p.name not in values:
            continue
        value = values[p.name]
        if all(parent in known for parent in p.when) and not is_active(p.when, known):
            changes.append(f"{p.name} {_show(value)} dropped (off unless {_when_text(p)})")
            continue
        fitted, why = _fit(p, value)
        if why:
            change = f"dropped ({why})" if fitted is None else f"-> {_show(fitted)} ({why})"
            changes.append(f"{p.name} {_show(value)} {change}")
        if fitted is not None:
            known[p.name] = fitted
            stored[p.optuna_name] = p.internal_value(fitted)
    changes += [f"{name} dropped (not in this space)" for name in values if name not in space.names]
    return Fitted(stored, tuple(changes))


def _fit(p: ParamSpec, value: Any) -> tuple[Any, str]:
    """The value the parameter can take nearest to `value` (None: none) and why it differs ('' if not)."""
    if p.kind == "categorical":
        if p.contains(value):
            return value, ""
        return None, "not one of " + ", ".join(map(repr, p.choices))
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None, f"not a number, {p.kind} here"
    assert p.low is not None and p.high is not None  # a float or int parameter has both bounds
    why = ""
    inside = min(max(value, p.low), p.high)
    if inside != value:
        why = f"clipped into [{p.low:g}, {p.high:g}]"
    step = p.step or (1 if p.kind == "int" else None)
    if step is not None:
        count = (inside - p.low) / step
        if abs(count - round(count)) > _ON_GRID:
            top = math.floor((p.high - p.low) / step + _ON_GRID)  # Optuna's high is the last grid point
            inside = p.low + min(round(count), top) * step
            inside = float(f"{inside:.12g}")  # 0.1 + 3 * 0.1 without float noise
            why = why or ("rounded to a whole number" if p.kind == "int" and step == 1 else f"onto steps of {step:g}")
    if p.kind == "int":
        inside = int(round(inside))
    elif isinstance(inside, int):
        inside = float(inside)
    return inside, why


def _show(value: Any) -> str:
    """A value in a change line: a float to 6 digits (0.000566653, not 0.0005666529575471821)."""
    return f"{value:.6g}" if isinstance(value, float) else repr(value)


def _when_text(p: ParamSpec) -> str:
    return ", ".join(f"{parent} in {list(allowed)}" for parent, allowed in p.when.items())
