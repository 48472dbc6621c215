"""One file per trial holding everything needed to resume training after the last finished epoch."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch


class Checkpoint:
    """Written atomically at each epoch end (a killed worker never leaves half a file); loaded with
    `weights_only=True`, so a checkpoint cannot run code."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def save(self, state: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.name + ".partial")
        torch.save(state, partial)
        os.replace(partial, self.path)

    def load(self) -> dict[str, Any] | None:
        if not self.path.exists():
            return None
        return torch.load(self.path, map_location="cpu", weights_only=True)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
        with_partial = self.path.with_name(self.path.name + ".partial")
        with_partial.unlink(missing_ok=True)
