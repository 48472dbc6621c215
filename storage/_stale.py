"""Which RUNNING trials are stale: Optuna's answer, plus the trials that never got a heartbeat.

Optuna judges a trial by its heartbeat row, and a trial has none until its worker's first beat: a worker
killed between the ask and that beat (SIGKILL within a tenth of a second) left a trial RUNNING that no one
ever failed or retried. Such a trial is judged by when it started instead: past the grace period without a
single beat, its worker is gone. Its start is stamped by its worker's clock (Optuna 5 stores it in UTC,
earlier ones in local time), so it is compared with this process's clock; a beat, once there, is judged by
the database's.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import optuna
from optuna.trial import TrialState


class RDBStore(optuna.storages.RDBStorage):
    """Optuna's RDB storage whose stale trials include those that never beat (see the module docstring)."""

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        stale = super()._get_stale_trial_ids(study_id)
        return stale + [i for i in self._never_beat_started_before(study_id) if i not in stale]

    def _never_beat_started_before(self, study_id: int) -> list[int]:
        from optuna.storages._rdb import models
        from optuna.storages._rdb.storage import _create_scoped_session

        assert self.heartbeat_interval is not None
        grace = self.grace_period if self.grace_period is not None else 2 * self.heartbeat_interval
        start: Any = getattr(models.TrialModel, "_datetime_start_utc", None)  # Optuna 5: UTC; before: local
        now = datetime.now(UTC).replace(tzinfo=None) if start is not None else datetime.now()
        if start is None:
            start = models.TrialModel.datetime_start
        started_before = now - timedelta(seconds=grace)
        with _create_scoped_session(self.scoped_session) as session:
            rows = (session.query(models.TrialModel.trial_id)
                    .outerjoin(models.TrialHeartbeatModel,
                               models.TrialHeartbeatModel.trial_id == models.TrialModel.trial_id)
                    .filter(models.TrialModel.study_id == study_id,
                            models.TrialModel.state == TrialState.RUNNING,
                            models.TrialHeartbeatModel.trial_heartbeat_id.is_(None),
                            start < started_before)
                    .all())
        return [trial_id for (trial_id,) in rows]
