"""What the values a trial stored mean, read with the search space its study stored (`SearchSpace.to_dict`):
the public name of each stored name, and the trial's values by public name. Readers of stored trials ask
here instead of working it out again."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from ._spec import COMPLEMENT_PREFIX, from_complement, is_active, stored_name


class StoredSpace:
    """A study's search space as stored with it: name -> description, in the space's order (parents first)."""

    def __init__(self, description: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self.description = dict(description or {})

    def __iter__(self) -> Iterator[str]:
        return iter(self.description)

    def __contains__(self, name: object) -> bool:
        return name in self.description

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StoredSpace) and self.description == other.description

    def __repr__(self) -> str:
        return f"StoredSpace({self.description!r})"

    def public_name(self, stored: str) -> str:
        """`beta2` for `one_minus_beta2` where the space samples beta2 as its complement; else as stored."""
        name = stored.removeprefix(COMPLEMENT_PREFIX)
        complemented = name != stored and bool(self.description.get(name, {}).get("log_complement"))
        return name if complemented else stored

    def public_values(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Every value of the trial by its public name (`beta2`, not `one_minus_beta2`), fixed ones included,
        in the space's order, those its `when` leaves out left out; parameters the space does not know
        follow as stored."""
        values: dict[str, Any] = {}
        for name, entry in self.description.items():
            if not is_active(entry.get("when") or {}, values):
                continue
            stored = stored_name(name, bool(entry.get("log_complement")))
            if entry.get("type") == "fixed":
                values[name] = entry.get("value")
            elif stored != name and stored in params:
                values[name] = from_complement(params[stored])
            elif name in params:
                values[name] = params[name]
        known = set(values) | {stored_name(n, True) for n in values}
        values.update((k, v) for k, v in params.items() if k not in known)
        return values

    def sampled(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Only the values a sampler chose (fixed parameters left out), by public name."""
        return {k: v for k, v in values.items() if self.description.get(k, {}).get("type") != "fixed"}
