"""One file per trial holding everything needed to resume training after the last finished epoch."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch


class Checkpoint:
    """Written atomically at each epoch end (a killed worker never leaves half a file); loaded with
    `weights_only=True`, so a checkpoint cannot run code."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def save(self, state: dict[str, Any]) -> None:
        """Write to a temporary file of this writer's own, then rename: workers on a shared volume
        may save the same path at once (the best weights), and each rename is atomic."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, partial = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name + ".", suffix=".partial")
        try:
            with os.fdopen(fd, "wb") as fh:
                torch.save(state, fh)
            os.replace(partial, self.path)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise

    def load(self) -> dict[str, Any] | None:
        if not self.path.exists():
            return None
        return torch.load(self.path, map_location="cpu", weights_only=True)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
