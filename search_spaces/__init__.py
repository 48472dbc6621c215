"""Declarative search spaces: YAML fragments composed by a study, compiled to `trial.suggest_*` calls."""

from ._space import SearchSpace, builtin_fragments, compose, read_yaml
from ._spec import ParamSpec, SpaceError, from_complement, parse_param

__all__ = [
    "ParamSpec",
    "SearchSpace",
    "SpaceError",
    "builtin_fragments",
    "compose",
    "from_complement",
    "parse_param",
    "read_yaml",
]
