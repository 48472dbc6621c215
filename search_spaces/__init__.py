"""Declarative search spaces: YAML fragments composed by a study, compiled to `trial.suggest_*` calls."""

from ._space import SearchSpace, builtin_fragments, compose, read_yaml
from ._spec import ParamSpec, SpaceError, parse_param

__all__ = ["ParamSpec", "SearchSpace", "SpaceError", "builtin_fragments", "compose", "parse_param", "read_yaml"]
