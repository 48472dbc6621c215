"""A dict of tensors kept in one file that many workers share: the image cache and the trial checkpoints.

One copy of the rules both rely on: a file is written whole or not at all (a killed worker never leaves half
a file), it is loaded with `weights_only=True` (a planted file cannot run code), and a file that cannot be
used is set aside under another name, kept for a look, and said once: it costs work, never a result."""

from __future__ import annotations

import io
import logging
import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class StoredFile:
    """One such file. Subclasses name what it is and what happens when it is set aside, and may refuse a
    readable state (`refusal`)."""

    noun = "file"  # what the file is, in the warning
    expected = "a saved state"  # what a readable file must hold
    instead = "it is written again"  # what follows a set-aside file, in the warning

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def save(self, state: dict[str, Any]) -> None:
        """Write to a temporary file of this writer's own, then rename: workers on a shared volume may save the
        same path at once, and each rename is atomic. The state is serialised in memory and written with
        plain writes, so a full or read-only disk is the OSError with its errno (torch's zip writer says
        `RuntimeError: ... unexpected pos` instead), whatever space was left."""
        import torch

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
        """The saved state, or None when there is none or it is unreadable or refused (then it is set aside)."""
        import torch

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
            self.set_aside(f"holds a {type(state).__name__}, not {self.expected}")
            return None
        reason = self.refusal(state)
        if reason is not None:
            self.set_aside(reason)
            return None
        return state

    def refusal(self, state: dict[str, Any]) -> str | None:
        """Why a readable state must not be used, or None."""
        return None

    def set_aside(self, reason: str) -> Path:
        """Rename the file out of the way (kept for a look, never loaded again) and say so once."""
        aside = self.path.with_name(f"{self.path.name}.bad-{datetime.now().strftime('%Y%m%dT%H%M%S%f')}")
        try:
            os.replace(self.path, aside)
        except FileNotFoundError:  # another worker set it aside first
            return aside
        log.warning("%s %s %s; set aside as %s, %s", self.noun, self.path, reason, aside.name, self.instead)
        return aside

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def _short(exc: BaseException) -> str:
    """torch's load errors run to paragraphs (and suggest `weights_only=False`); one clause is enough."""
    text = str(exc).split("WeightsUnpickler error:", 1)[-1]
    detail = next((line.strip() for line in text.splitlines() if line.strip()), "")
    detail = detail.split(". ")[0].rstrip(".")
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
