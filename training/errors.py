"""Errors the training layer raises; the command line turns each into one readable line."""


class ConfigError(ValueError):
    """An invalid training setting: names where it came from, the key and the reason."""

    def __init__(self, source: str, key: str, reason: str) -> None:
        self.source, self.key, self.reason = source, key, reason
        super().__init__(f"{source}: {key}: {reason}")


class DataError(RuntimeError):
    """A dataset that cannot be read: says where its files are expected and what works offline."""


class DivergedError(ArithmeticError):
    """The loss became NaN or infinite; the trial ends as pruned with this reason."""
