"""The dashboard's artifact store: the files workers uploaded, plus each trial's learning-curve PNG, drawn
from the trial's stored curve the first time someone opens it and kept beside them.

A worker writes only the curve artifact's meta when its trial ends (`announce_curve`): drawing the picture
there took longer than the store writes of a whole digits trial, for a picture few trials ever have looked
at. Here it is drawn once: the file, once written, is what every later request reads.
"""

from __future__ import annotations

import io
import json
import threading
from typing import BinaryIO

import optuna
from optuna.artifacts.exceptions import ArtifactNotFound

from ._artifacts import ARTIFACTS_ATTR_PREFIX, CURVE_SUFFIX, curve_png
from ._record import StudyContext, full_curve, read_trial


class CurveDrawingStore:
    """`files` (where uploaded artifacts live and drawn curves are kept) as optuna-dashboard's artifact store,
    reading trials from `storage`."""

    def __init__(self, files: optuna.artifacts.FileSystemArtifactStore,
                 storage: optuna.storages.BaseStorage) -> None:
        self.files, self.storage = files, storage
        self._drawing = threading.Lock()  # the dashboard serves from several threads: each picture drawn once

    def open_reader(self, artifact_id: str) -> BinaryIO:
        try:
            return self.files.open_reader(artifact_id)
        except ArtifactNotFound:
            pass
        with self._drawing:
            try:
                return self.files.open_reader(artifact_id)  # drawn by another request meanwhile
            except ArtifactNotFound:
                png = self.draw(artifact_id)
                if png is None:
                    raise
            self.files.write(artifact_id, io.BytesIO(png))
        return self.files.open_reader(artifact_id)

    def write(self, artifact_id: str, content_body: BinaryIO) -> None:
        self.files.write(artifact_id, content_body)

    def remove(self, artifact_id: str) -> None:
        self.files.remove(artifact_id)

    def draw(self, artifact_id: str) -> bytes | None:
        """The PNG of the learning curve `artifact_id` names (`announce_curve`'s id ends with the study's and
        the trial's ids in hex), or None when it names no curve artifact of a trial in this store."""
        try:
            study_id, trial_id = (int(part, 16) for part in artifact_id.rsplit("-", 2)[-2:])
            meta = self.storage.get_trial_system_attrs(trial_id).get(f"{ARTIFACTS_ATTR_PREFIX}{artifact_id}")
        except (ValueError, KeyError):  # not hex; no such trial
            return None
        if meta is None or not json.loads(meta).get("filename", "").endswith(CURVE_SUFFIX):
            return None
        trial = self.storage.get_trial(trial_id)
        context = StudyContext.of(self.storage.get_study_name_from_id(study_id),
                                  self.storage.get_study_user_attrs(study_id))
        curve = full_curve(trial, context.objective)
        if not curve.get("val_loss"):
            return None
        return curve_png(curve, f"trial {trial.number}: {read_trial(trial, context).summary}")
