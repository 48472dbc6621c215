"""Load and verify a study's data and model before any store is touched: a built-in dataset absent offline,
the user's bad files or arrays, an augmentation that cannot apply to the data, or a model that fails or
returns the wrong shape is a one-line error naming the study file and key, and nothing is created."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from adamtune.data import DataError
from adamtune.search_spaces import SpaceError
from adamtune.training import augmentation_reason

from ._errors import StudyError
from ._spec import StudySpec, check_space_values, check_task_fits

if TYPE_CHECKING:
    from adamtune.data import Dataset


def prepare(spec: StudySpec, *, device: Any = None, data_root: str | None = None) -> tuple[StudySpec, Dataset]:
    """The spec with the data's facts (fingerprint, class names), and the data on `device`."""
    from adamtune.data import load_dataset
    from adamtune.training import pick_device, probe_model

    dev = pick_device(device)
    try:
        with waiting_on(f"loading data from {spec.data_source.describe()}", announce=spec.data_source.user):
            data = load_dataset(spec.data_source, data_root, dev, task=spec.task)
    except DataError as exc:  # a built-in dataset that is neither on disk nor downloadable
        raise StudyError(spec.source, "dataset", str(exc)) from None
    spec = replace(spec, facts=data.facts)  # the data decide the task: the space and objective must fit it
    check_space_values(spec)
    check_task_fits(spec, data.num_classes)
    check_augmentations(spec, data.kind, data.shape)
    if spec.model_source.user or data.kind != "image":
        for values in probe_values(spec):
            config = spec.config_for(values, seed=spec.seed)
            probe_model(spec.model_source, data, config, values)
    return spec, data


SAY_AFTER = 10.0  # seconds, when stderr is not a terminal: a quick load stays silent, so bad input is one line


@contextmanager
def waiting_on(what: str, *, announce: bool = True) -> Iterator[None]:
    """Say `what ...` on stderr (with `announce`: the user's data, whose loading is the user's code or files):
    at once on a terminal, where a person waits, else only once it has taken SAY_AFTER seconds (a log then
    tells what a stuck worker waits on, and a quick load adds no line to an error). A Ctrl-C meanwhile is
    marked with what it stopped, so the command line says that, not that a trial was retried."""
    timer = None
    if announce and sys.stderr.isatty():
        print(f"{what} ...", file=sys.stderr, flush=True)
    elif announce:
        timer = threading.Timer(SAY_AFTER, lambda: print(f"{what} ...", file=sys.stderr, flush=True))
        timer.daemon = True
        timer.start()
    try:
        yield
    except KeyboardInterrupt as exc:
        stopped = f"while {what}; no trial had started and nothing was written to the store"
        exc.stopped_while = stopped  # type: ignore[attr-defined]
        raise
    finally:
        if timer is not None:
            timer.cancel()


def check_augmentations(spec: StudySpec, kind: str, shape: tuple[int, ...]) -> None:
    """A searched augmentation that can take a non-zero value must have a meaning for the data."""
    for p in spec.space.params:
        reason = augmentation_reason(p.name, kind, shape) if any(p.extremes) else None
        if reason:
            raise SpaceError(p.source, f"params.{p.name}", f"{reason}; exclude it (exclude: [{p.name}])")


def probe_values(spec: StudySpec) -> list[dict[str, Any]]:
    """Trial values to build the model with before the study runs: each parameter at its default (else its
    first choice or low end), then each of the user's model parameters at each choice or end of its range."""
    tries = [spec.space.start_values()]
    for name in spec.user_params:
        tries += [spec.space.start_values({name: value}) for value in spec.space[name].extremes]
    unique: list[dict[str, Any]] = []
    for values in tries:
        if values not in unique:
            unique.append(values)
    return unique

