"""Entry points `module:callable` named in a study: imported from the study file's folder first, then
from sys.path. Importing is torch-free here; what the user's module imports is its own business."""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import SourceError

_ENTRY = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
_LOADED: dict[str, tuple[str, int]] = {}  # module name -> (file, mtime_ns) it was imported from by us


def is_entry(text: Any) -> bool:
    """`package.module:callable`, the form pyproject's entry points use."""
    return isinstance(text, str) and bool(_ENTRY.match(text))


def load_entry(entry: str, folder: str | Path | None, *, origin: str, key: str) -> Callable[..., Any]:
    """The callable `entry` names; every failure (no such module or attribute, an import that raises, not
    callable) is a SourceError naming `origin` and `key`."""
    module_name, _, attr = entry.partition(":")
    module = _import(module_name, Path(folder) if folder else None, origin, key)
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise SourceError(origin, key, f"module {module_name!r} ({_where(module)}) has no {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise SourceError(origin, key, f"{entry} is a {type(obj).__name__}, not a callable")
    return obj


def one_line(exc: BaseException) -> str:
    """An exception as `Type: message` on one line, for an error that must fit on one line."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _import(name: str, folder: Path | None, origin: str, key: str):
    local = _file_in(folder, name) if folder is not None else None
    if local is not None:
        stamp = (str(local), local.stat().st_mtime_ns)
        cached = sys.modules.get(name)
        if cached is not None and _LOADED.get(name) != stamp:
            _forget(name)  # imported from elsewhere (another study's folder, or an older version of the file)
    try:
        with _first_on_path(folder):
            module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
            where = f"{folder} or on sys.path" if folder is not None else "sys.path"
            raise SourceError(origin, key, f"no module {name!r} in {where}") from None
        raise SourceError(origin, key, f"importing {name!r} failed: {one_line(exc)}") from None
    except Exception as exc:  # whatever the user's module raises on import
        raise SourceError(origin, key, f"importing {name!r} raised {one_line(exc)}") from None
    if local is not None:
        _LOADED[name] = (str(local), local.stat().st_mtime_ns)
    return module


def _file_in(folder: Path, name: str) -> Path | None:
    base = folder.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _forget(name: str) -> None:
    for loaded in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[loaded]
    _LOADED.pop(name, None)
    importlib.invalidate_caches()


@contextmanager
def _first_on_path(folder: Path | None) -> Iterator[None]:
    if folder is None:
        yield
        return
    entry = str(folder)
    sys.path.insert(0, entry)
    try:
        yield
    finally:
        sys.path.remove(entry)


def _where(module) -> str:
    return getattr(module, "__file__", None) or "built in"
