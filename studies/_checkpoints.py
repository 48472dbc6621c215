"""Whose checkpoint is it: one trial of one study in one store.

A study's name is not enough (another store, a deleted and recreated study or another seed reuse it),
so checkpoints live under a random uid the study gets at creation:
ARTIFACTS/STUDY/checkpoints/UID/trial-N/checkpoint.pt, N being the original trial's number (a retry
resumes the original's file). The file records the same owner and is set aside if it names another.
The best trial's weights are keyed the same way: ARTIFACTS/STUDY/best/UID/model.pt and config.json.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import optuna

from adamtune.storage import StudyAttr

if TYPE_CHECKING:  # torch: imported when a trial runs, not when a study is created or checked
    from adamtune.training import Checkpoint


def new_uid() -> str:
    return uuid.uuid4().hex


def study_uid(study: optuna.Study) -> str:
    """The study's uid; studies made before adamtune set one are told apart by their id in the store
    and their fingerprint (two stores with the same old study file and id then share a key)."""
    attrs = study.user_attrs
    return attrs.get(StudyAttr.UID) or f"id{study._study_id}-{attrs.get(StudyAttr.FINGERPRINT, 'none')}"


def trial_checkpoint(study_dir: Path, study: optuna.Study, origin: int) -> Checkpoint:
    """The checkpoint of trial `origin` (the trial a retry continues) of this very study."""
    from adamtune.training import Checkpoint

    uid = study_uid(study)
    return Checkpoint(study_dir / "checkpoints" / uid / f"trial-{origin}" / "checkpoint.pt",
                      owner=f"{uid}/trial-{origin}")


def best_dir(study_dir: Path, study: optuna.Study) -> Path:
    """Where this very study keeps its best trial's weights and config: a namesake's are its own."""
    return study_dir / "best" / study_uid(study)


def discard(checkpoint: Checkpoint) -> None:
    """The trial ended for good: its checkpoint goes, with the partial writes of a worker killed while
    saving and the emptied directory; set-aside (`.bad-*`) files stay for a look."""
    checkpoint.remove()
    folder = checkpoint.path.parent
    for partial in folder.glob(f"{checkpoint.path.name}.*.partial"):
        partial.unlink(missing_ok=True)
    if folder.exists() and not any(folder.iterdir()):
        folder.rmdir()
