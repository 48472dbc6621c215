"""One file per trial holding everything needed to resume training after the last finished epoch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from adamtune.data import StoredFile


class Checkpoint(StoredFile):
    """Written atomically at each epoch end and loaded with `weights_only=True` (see StoredFile). With an
    `owner`, the file records it and only that owner resumes from it: a file left by anyone else is set
    aside, never trained on."""

    noun = "checkpoint"
    expected = "a checkpoint"
    instead = "training starts again from epoch 0"

    def __init__(self, path: str | Path, owner: str | None = None) -> None:
        super().__init__(path)
        self.owner = owner

    def save(self, state: dict[str, Any]) -> None:
        super().save(state if self.owner is None else {**state, "owner": self.owner})

    def refusal(self, state: dict[str, Any]) -> str | None:
        if self.owner is not None and state.get("owner") != self.owner:
            return f"belongs to {state.get('owner')!r}, not to {self.owner!r}"
        return None
