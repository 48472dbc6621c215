"""The versions a study was made with and a configuration was exported with."""

from __future__ import annotations

from importlib import metadata


def versions() -> dict[str, str]:
    """adamtune, torch and optuna versions, read from the installed distributions (no torch import)."""
    out = {}
    for name in ("adamtune", "torch", "optuna"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "unknown (not installed)"
    return out
