"""Errors the training layer raises; the command line turns each into one readable line."""

from adamtune.errors import DataError, InputError

__all__ = ["ConfigError", "DataError", "DivergedError"]


class ConfigError(InputError):
    """An invalid training setting: names where it came from, the key and the reason."""


class DivergedError(ArithmeticError):
    """The loss became NaN or infinite; the trial ends as pruned with this reason."""
