"""Optuna prints a failed trial's traceback, and its heartbeat thread dies with one on a store error.
When the worker itself reports why it stops in one line (a full disk, a store that refuses writes),
those say the same thing again, at length; while a worker runs, they are left out."""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Callable, Iterator

_FAILED = re.compile(r"Trial (\d+) failed")
log = logging.getLogger("adamtune")


class _Unlogged(logging.Filter):
    def __init__(self, reported: Callable[[BaseException], bool]) -> None:
        super().__init__()
        self.reported = reported
        self.trials: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        match = _FAILED.match(str(record.msg))
        if match is None:
            return True
        error = record.exc_info[1] if record.exc_info else None
        if error is not None and self.reported(error):
            self.trials.add(match.group(1))
        return match.group(1) not in self.trials  # also its "failed with value None" line


@contextlib.contextmanager
def quiet_failures(reported: Callable[[BaseException], bool], transient: Callable[[BaseException], bool]
                   ) -> Iterator[None]:
    """While inside, Optuna logs no trial whose error `reported(error)` says the worker reports, and a
    heartbeat thread that meets such an error ends quietly: the trial's next store write meets it too.
    One that `transient(error)` calls a lost connection is one warning line: the trial stops beating."""
    logger = logging.getLogger("optuna.study._optimize")
    unlogged = _Unlogged(reported)
    previous = threading.excepthook

    def hook(args) -> None:
        if "_record_heartbeat" not in (args.thread.name if args.thread else "") or not reported(args.exc_value):
            previous(args)
        elif transient(args.exc_value):
            log.warning("the heartbeat thread lost the study store; once grace_period has passed another worker "
                        "may fail this trial as stale and retry it")

    logger.addFilter(unlogged)
    threading.excepthook = hook
    try:
        yield
    finally:
        threading.excepthook = previous
        logger.removeFilter(unlogged)
