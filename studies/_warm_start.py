"""Warm start: a new study begins, after its baseline trial, with the best configurations of an earlier study
(in its own store or another) and of exported trials, each fitted into the new space and marked with where
it came from. Every worker reads the sources, and stops at a problem with them, before it touches the new
study's store; only the worker that creates the study queues them, so they are queued once."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from adamtune.results import StudyView
from adamtune.search_spaces import fit_values
from adamtune.storage import Attr, Store, sqlite_file

from ._errors import StudyError
from ._spec import StudySpec
from ._warm_start_key import WarmStart

log = logging.getLogger("adamtune")

@dataclass(frozen=True)
class WarmTrial:
    """One earlier configuration, fitted into the new space: what to enqueue (`stored`), where it came from,
    what fitting changed, and why it is not queued (`skipped`: the baseline's or an earlier one's values)."""

    origin: str
    stored: dict[str, Any]
    changes: tuple[str, ...] = ()
    skipped: str | None = None

    def line(self) -> str:
        said = "; ".join(self.changes) if self.changes else "as it ran"
        return f"warm start: {self.origin}: {said}" + (f"; {self.skipped}" if self.skipped else "")


def warm_start_trials(spec: StudySpec, store_url: str) -> list[WarmTrial]:
    """The study's earlier configurations fitted into its space, in order (the study's best first, then the
    exports), each configuration queued once. A source study that is missing or has no complete trial, or an
    export that is missing or malformed, is a StudyError naming the study file's key."""
    warm = spec.warm_start
    if warm is None:
        return []
    earlier = _from_study(spec, warm, store_url) if warm.study else []
    earlier += [_from_export(spec, warm, index) for index in range(len(warm.exports))]
    seen = {json.dumps(spec.space.baseline(), sort_keys=True): "the baseline trial"} if spec.baseline else {}
    fitted = []
    for origin, values in earlier:
        fit = fit_values(spec.space, values)
        key = json.dumps(fit.stored, sort_keys=True, default=repr)
        skipped = ("nothing of it fits this space: not queued" if not fit.stored else
                   f"the same configuration as {seen[key]}: queued once" if key in seen else None)
        seen.setdefault(key, origin)
        fitted.append(WarmTrial(origin, fit.stored, fit.changes, skipped))
    return fitted


def enqueue_warm_start(study: optuna.Study, trials: Sequence[WarmTrial]) -> None:
    """Queue the trials (by the creating worker, after the baseline), each marked with where it came from,
    and say so, one line each."""
    queued = [t for t in trials if t.skipped is None]
    for trial in queued:
        study.enqueue_trial(trial.stored, user_attrs={Attr.WARM_START: trial.origin})
    if trials:
        log.warning("warm start: %d earlier configurations queued", len(queued))
    for trial in trials:
        log.warning("%s", trial.line())


def _from_study(spec: StudySpec, warm: WarmStart, store_url: str) -> list[tuple[str, dict[str, Any]]]:
    """The sampled values of the earlier study's `top` best complete trials, ranked in its own direction."""
    assert warm.study is not None
    store = Store(warm.storage or store_url)
    elsewhere = warm.storage is not None and warm.storage != store_url
    key = "warm_start.storage" if elsewhere else "warm_start.study"
    missing = sqlite_file(store.url)
    if missing is not None and not Path(missing).exists():  # opening it would create it
        raise StudyError(spec.source, key, f"no study store at {store.masked}: the file does not exist")
    with store.errors(opening=True):
        opened = store.opened
        try:
            if warm.study not in optuna.study.get_all_study_names(opened):
                raise StudyError(spec.source, "warm_start.study", f"no study {warm.study!r} in {store.masked}; "
                                 f"run `adamtune studies --storage {store.masked}` to list studies")
            view = StudyView.of(optuna.load_study(study_name=warm.study, storage=opened))
            if not view.counts["complete"]:
                raise StudyError(spec.source, "warm_start.study", f"study {warm.study!r} in {store.masked} has no "
                                 "complete trial to start from")
            best = view.top(warm.top)
        finally:
            engine = getattr(opened, "engine", None)
            if engine is not None:  # a worker keeps no connection to the earlier study's store
                engine.dispose()
    where = f" ({store.masked})" if elsewhere else ""
    return [(f"study {warm.study} #{trial.number}{where}", trial.params) for trial in best]


def _from_export(spec: StudySpec, warm: WarmStart, index: int) -> tuple[str, dict[str, Any]]:
    """The sampled values an export file holds (`params`, by public name)."""
    name = warm.exports[index]
    key = f"warm_start.exports[{index}]"
    path = warm.folder / name  # an absolute name stays as it is
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StudyError(spec.source, key, f"{path}: file not found") from None
    except json.JSONDecodeError as exc:
        raise StudyError(spec.source, key, f"{path}: not valid JSON: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise StudyError(spec.source, key, f"{path}: cannot be read: {getattr(exc, 'strerror', None) or exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("params"), dict):
        raise StudyError(spec.source, key, f"{path}: not a file written by `adamtune export` (it has no `params` "
                         "object of sampled values)")
    trial = (f" (study {data['study']} #{data['trial']})"
             if isinstance(data.get("study"), str) and isinstance(data.get("trial"), int) else "")
    return f"export {name}{trial}", data["params"]
