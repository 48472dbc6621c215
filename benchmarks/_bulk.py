"""Large studies in seconds: trials copied into Optuna's own tables with one bulk INSERT per table.

Optuna's `add_trials` writes one trial per transaction (minutes for 10,000 on SQLite). The rows written
here are exactly the rows Optuna writes, so every reader (Optuna, optuna-dashboard, adamtune) sees
ordinary trials. For benchmarks and tests only.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import optuna
import sqlalchemy
from optuna.storages._rdb import models


def copy_trials(study: optuna.Study, templates: Sequence[optuna.trial.FrozenTrial], n: int) -> None:
    """Append `n` trials to `study` (an RDB study with no trials yet), cycling through `templates`; the
    `baseline` user attr is kept on the first copy of each template only, as a real study has one."""
    engine = study._storage._backend.engine  # type: ignore[attr-defined]
    picks = [templates[i % len(templates)] for i in range(n)]
    with engine.begin() as conn:
        conn.execute(models.TrialModel.__table__.insert(), [
            {"number": i, "study_id": study._study_id, "state": t.state.name, "datetime_start": t.datetime_start,
             "datetime_complete": t.datetime_complete} for i, t in enumerate(picks)])
        ids = dict(conn.execute(sqlalchemy.text("SELECT number, trial_id FROM trials WHERE study_id = :s"),
                                {"s": study._study_id}).all())
        values, params, attrs, system, steps = [], [], [], [], []
        for i, t in enumerate(picks):
            tid = ids[i]
            if t.value is not None:
                values.append({"trial_id": tid, "objective": 0, "value": t.value, "value_type": "FINITE"})
            for key, dist in t.distributions.items():
                params.append({"trial_id": tid, "param_name": key, "param_value": dist.to_internal_repr(t.params[key]),
                               "distribution_json": optuna.distributions.distribution_to_json(dist)})
            for key, value in t.user_attrs.items():
                if key != "baseline" or i < len(templates):
                    attrs.append({"trial_id": tid, "key": key, "value_json": json.dumps(value)})
            for key, value in t.system_attrs.items():
                system.append({"trial_id": tid, "key": key, "value_json": json.dumps(value)})
            for step, value in t.intermediate_values.items():
                steps.append({"trial_id": tid, "step": step, "intermediate_value": value,
                              "intermediate_value_type": "FINITE"})
        for model, rows in ((models.TrialValueModel, values), (models.TrialParamModel, params),
                            (models.TrialUserAttributeModel, attrs), (models.TrialSystemAttributeModel, system),
                            (models.TrialIntermediateValueModel, steps)):
            if rows:
                conn.execute(model.__table__.insert(), rows)
