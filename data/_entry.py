"""Entry points `module:callable` named in a study or an export, the one place that resolves them.

An entry runs code, and a study file or an export may come from someone else, so an entry resolves only to
a Python file beside that file (`folder`: `my_nets:build` is FOLDER/my_nets.py, `pkg.nets:build`
FOLDER/pkg/nets.py). A standard-library or installed module (`os:system`) is refused unless the person
running the command trusts the file's entries: `--trust-entries`, or TRUST_ENV=1 in the environment (which
local worker processes inherit). Importing is torch-free here; what the user's module imports is its own
business."""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import site
import sys
import sysconfig
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ._errors import SourceError

ENTRY_PATTERN = r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$"  # also the study schema's
_ENTRY = re.compile(ENTRY_PATTERN)
_LOADED: dict[str, tuple[str, int]] = {}  # module name -> (file, mtime_ns) it was imported from by us
TRUST_ENV = "ADAMTUNE_TRUST_ENTRIES"
TRUST_FLAG = "--trust-entries"


def trust_entries() -> None:
    """Let entries name any importable module, in this process and the workers it starts (`--trust-entries`)."""
    os.environ[TRUST_ENV] = "1"


def entries_trusted() -> bool:
    return os.environ.get(TRUST_ENV, "") not in ("", "0")


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


def check_entry(entry: str, folder: str | Path | None, *, origin: str, key: str) -> None:
    """Refuse, without importing anything, an entry `load_entry` would refuse as not the study's (or export's)
    own file: called as a study or export is read, before data are loaded or a store is opened."""
    if not entries_trusted():
        name = entry.partition(":")[0]
        path = Path(folder) if folder else None
        _check_local(name, path, _file_in(path, name) if path is not None else None, origin, key)


def one_line(exc: BaseException) -> str:
    """An exception as `Type: message` on one line, for an error that must fit on one line."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _import(name: str, folder: Path | None, origin: str, key: str):
    local = _file_in(folder, name) if folder is not None else None
    trusted = entries_trusted()
    if not trusted:
        _check_local(name, folder, local, origin, key)
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
    if not trusted and Path(getattr(module, "__file__", None) or "").resolve() != local.resolve():  # type: ignore[union-attr]
        raise SourceError(origin, key, f"{name!r} imported as {_where(module)}, not as {local}; rename {local} "
                          f"(or pass {TRUST_FLAG} to run {name!r} as found)")
    if local is not None:
        _LOADED[name] = (str(local), local.stat().st_mtime_ns)
    return module


def _check_local(name: str, folder: Path | None, local: Path | None, origin: str, key: str) -> None:
    """Refuse, before anything is imported, an entry that is not a file beside the study or export, and a file
    there whose name is that of a standard-library or already imported module (Python would run that one)."""
    top = name.split(".")[0]
    beside = f"beside {origin}" + (f" (in {folder})" if folder is not None else "")
    if local is None:
        try:
            found_elsewhere = importlib.util.find_spec(top) is not None
        except (ImportError, ValueError):  # a module without a spec (__main__): not the study's file either
            found_elsewhere = True
        if not found_elsewhere:
            raise SourceError(origin, key, f"no module {name!r} in {folder} or on sys.path")
        raise SourceError(origin, key, f"module {name!r} is not a file {beside}: a study or export runs only its own "
                          f"modules, not standard-library or installed ones; pass {TRUST_FLAG} to allow it")
    installed = next((root for root in _installed_roots() if local.resolve().is_relative_to(root)), None)
    if installed is not None:  # a folder that names site-packages or the standard library (an export's `folder`)
        raise SourceError(origin, key, f"{local} is an installed or standard-library module (under {installed}), "
                          f"not a file of the study's own; pass {TRUST_FLAG} to allow it")
    ours = any(n == top or n.startswith(top + ".") for n in _LOADED)
    if top in sys.stdlib_module_names or top in sys.builtin_module_names or (top in sys.modules and not ours):
        found = sys.modules.get(top)
        what = f"the module imported from {_where(found)}" if found is not None else "a standard-library module"
        raise SourceError(origin, key, f"{local} has the name of {what}, which Python would run instead; "
                          "rename the file")


def _installed_roots() -> list[Path]:
    """Where Python keeps the standard library and installed packages."""
    paths = sysconfig.get_paths()
    roots = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    roots.update(site.getsitepackages() if hasattr(site, "getsitepackages") else [])
    roots.add(site.getusersitepackages())
    roots.update(p for p in sys.path if Path(p).name in ("site-packages", "dist-packages"))  # a venv's base's too
    return [Path(r).resolve() for r in sorted(roots) if r]


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
