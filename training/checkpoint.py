"""One file per trial holding everything needed to resume training after the last finished epoch."""

from __future__ import annotations

import io
import logging
import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)


class Checkpoint:
    """Written atomically at each epoch end (a killed worker never leaves half a file); loaded with
    `weights_only=True`, so a checkpoint cannot run code. With an `owner`, the file records it and only
    that owner resumes from it: a file left by anyone else is set aside, never trained on."""

    def __init__(self, path: str | Path, owner: str | None = None) -> None:
        self.path = Path(path)
        self.owner = owner

    def save(self, state: dict[str, Any]) -> None:
        """Write to a temporary file of this writer's own, then rename: workers on a shared volume
        may save the same path at once (the best weights), and each rename is atomic. The state is
        serialised in memory and written with plain writes, so a full or read-only disk is the OSError
        with its errno (torch's zip writer says `RuntimeError: ... unexpected pos` instead), whatever
        space was left."""
        if self.owner is not None:
            state = {**state, "owner": self.owner}
        buffer = io.BytesIO()
        torch.save(state, buffer)
        data = buffer.getbuffer()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, partial = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name + ".", suffix=".partial")
        try:
            try:
                written = 0
                while written < len(data):
                    written += os.write(fd, data[written:])
                os.fsync(fd)  # a delayed write error (NFS, quota) is raised here, not lost at close
            finally:
                os.close(fd)
            os.replace(partial, self.path)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise

    def load(self) -> dict[str, Any] | None:
        """The saved state, or None when there is none or it is unreadable or someone else's (then
        it is set aside): a damaged file costs the saved epochs, never the trial."""
        if not self.path.exists():
            return None
        if self.path.stat().st_size == 0:
            self.set_aside("is empty (0 bytes)")
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as exc:
            self.set_aside(f"cannot be read ({_short(exc)})")
            return None
        if not isinstance(state, dict):
            self.set_aside(f"holds a {type(state).__name__}, not a checkpoint")
            return None
        if self.owner is not None and state.get("owner") != self.owner:
            self.set_aside(f"belongs to {state.get('owner')!r}, not to {self.owner!r}")
            return None
        return state

    def set_aside(self, reason: str) -> Path:
        """Rename the file out of the way (kept for a look, never loaded again) and say so once."""
        aside = self.path.with_name(f"{self.path.name}.bad-{datetime.now().strftime('%Y%m%dT%H%M%S%f')}")
        try:
            os.replace(self.path, aside)
        except FileNotFoundError:  # another worker set it aside first
            return aside
        log.warning("checkpoint %s %s; set aside as %s, training starts again from epoch 0", self.path, reason,
                    aside.name)
        return aside

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def _short(exc: BaseException) -> str:
    """torch's load errors run to paragraphs (and suggest `weights_only=False`); one clause is enough."""
    text = str(exc).split("WeightsUnpickler error:", 1)[-1]
    detail = next((line.strip() for line in text.splitlines() if line.strip()), "")
    detail = detail.split(". ")[0].rstrip(".")
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
