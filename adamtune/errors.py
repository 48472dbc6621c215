"""The one error family. Every layer raises these (or a subclass), so the command line picks the exit
code from the class alone: 2 for input the user can fix, 1 for a store or data problem."""

from __future__ import annotations

EXIT_INPUT = 2
EXIT_RUNTIME = 1


class AdamtuneError(Exception):
    """Base of every error adamtune reports to a person as one line."""

    exit_code = EXIT_RUNTIME


class InputError(AdamtuneError, ValueError):
    """Bad input: names where it came from (a file, a study, a flag), the key and the reason."""

    exit_code = EXIT_INPUT

    def __init__(self, source: str, key: str, reason: str) -> None:
        self.source, self.key, self.reason = source, key, reason
        super().__init__(f"{source}: {key}: {reason}")


class StudyNotFound(InputError):
    """The named study is not in the store (the store is shown without its password)."""

    def __init__(self, name: str, where: str) -> None:
        InputError.__init__(self, where, "study", f"{name!r} not found")
        self.args = (f"study {name!r} not found in {where}; run `adamtune studies` to list studies",)


class NoCompleteTrial(InputError):
    """A view that needs a complete trial (best, export, report) on a study that has none yet."""

    def __init__(self, name: str, consequence: str = "") -> None:
        InputError.__init__(self, f"study {name!r}", "trials", "no complete trial yet")
        self.args = (f"study {name!r} has no complete trial yet" + (f"; {consequence}" if consequence else ""),)


class StorageError(AdamtuneError, RuntimeError):
    """The store cannot be reached or used; the message never contains the password.
    `transient` is true when waiting may help (the database is down or the connection broke)."""

    def __init__(self, message: str, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


class DataError(AdamtuneError, RuntimeError):
    """A dataset that cannot be read: says where its files are expected and what works offline."""


class OutputError(AdamtuneError, RuntimeError):
    """A file a command was asked to write (an export, a report, a trained model) could not be written,
    after its place was checked: the disk filled up meanwhile. Names the flag, the path and the reason."""
