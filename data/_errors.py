"""Errors the data room raises; the command line turns each into one readable line."""

from adamtune.errors import DataError, InputError

__all__ = ["DataError", "SourceError"]


class SourceError(InputError):
    """The user's dataset or model cannot be used as given (a missing file, a corrupt image, labels that are
    not 0..K-1, an entry point that fails or returns the wrong thing): names the study or export file, the
    key and the reason."""
