"""The error the study layer raises for a study file, or a study that cannot be used as asked."""

from adamtune.errors import InputError


class StudyError(InputError):
    """Bad study input, or a study that cannot be used as asked; names the file or study and the key."""
