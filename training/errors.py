"""Errors the training layer raises; the command line turns each into one readable line. A user's model
that cannot be used is the data room's SourceError, as a user's dataset is: both come from an entry."""

from adamtune.errors import InputError

__all__ = ["ConfigError", "DivergedError"]


class ConfigError(InputError):
    """An invalid training setting: names where it came from, the key and the reason."""


class DivergedError(ArithmeticError):
    """The loss became NaN or infinite; the trial ends as pruned with this reason."""
