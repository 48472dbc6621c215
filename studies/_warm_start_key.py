"""The study file's `warm_start` key, checked (studies/_warm_start.py reads what it names)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adamtune.storage import normalize_url

from ._errors import StudyError

KEYS = ("study", "storage", "top", "exports")
DEFAULT_TOP = 5
MAX_TOP = 1000


@dataclass(frozen=True)
class WarmStart:
    """The study file's `warm_start`: the `top` best complete trials of `study` (in the store at `storage`,
    else the new study's own) and the trials exported to `exports` (as written; relative to `folder`, the
    study file's)."""

    study: str | None = None
    storage: str | None = None
    top: int = DEFAULT_TOP
    exports: tuple[str, ...] = ()
    folder: Path = Path(".")


def parse_warm_start(raw: Any, source: str, folder: Path) -> WarmStart | None:
    """The `warm_start` mapping of a study file, checked; None when it has none."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or not raw:
        raise StudyError(source, "warm_start", "a mapping with study (and storage, top), exports, or both")
    unknown = sorted(set(raw) - set(KEYS))
    if unknown:
        raise StudyError(source, f"warm_start.{unknown[0]}", f"unknown key (allowed: {', '.join(KEYS)})")
    study = raw.get("study")
    if study is not None and (not isinstance(study, str) or not study):
        raise StudyError(source, "warm_start.study", f"the name of the earlier study, got {study!r}")
    if study is None and ("storage" in raw or "top" in raw):
        raise StudyError(source, "warm_start.study", "storage and top choose trials of an earlier study: name it")
    storage = raw.get("storage")
    if storage is not None and (not isinstance(storage, str) or not storage.strip()):
        raise StudyError(source, "warm_start.storage", "the URL of the earlier study's store (leave it out for "
                         "this study's own store)")
    top = raw.get("top", DEFAULT_TOP)
    if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= MAX_TOP:
        raise StudyError(source, "warm_start.top", f"how many of the earlier study's best trials: an integer from 1 "
                         f"to {MAX_TOP}, got {top!r}")
    exports = raw.get("exports", [])
    if not isinstance(exports, list) or not all(isinstance(e, str) and e for e in exports):
        raise StudyError(source, "warm_start.exports", "a list of files written by `adamtune export`")
    if study is None and not exports:
        raise StudyError(source, "warm_start", "names an earlier study, exports, or both")
    return WarmStart(study, normalize_url(storage.strip()) if storage else None, top, tuple(exports), folder)
