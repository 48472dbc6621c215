"""Declarative search spaces: YAML fragments composed by a study, compiled to `trial.suggest_*` calls, and the
one owner of what a stored value means (stored and public names, `when`, defaults, a stored trial's values,
an earlier trial's values fitted into a changed space)."""

from ._fit import Fitted, fit_values
from ._space import SearchSpace, builtin_fragments, compose, fragment_label, read_yaml
from ._spec import ParamSpec, SpaceError, from_complement, param_schema, parse_param, stored_name
from ._stored import StoredSpace

__all__ = [
    "Fitted",
    "ParamSpec",
    "SearchSpace",
    "SpaceError",
    "StoredSpace",
    "builtin_fragments",
    "compose",
    "fit_values",
    "fragment_label",
    "from_complement",
    "param_schema",
    "parse_param",
    "read_yaml",
    "stored_name",
]
