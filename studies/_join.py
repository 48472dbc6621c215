"""Create a study, or join the one other workers created: safe when many workers start at once."""

from __future__ import annotations

import time
from collections.abc import Sequence

import optuna

from adamtune.storage import Attr, StudyAttr

from ._checkpoints import new_uid
from ._errors import StudyError
from ._spec import StudySpec
from ._versions import versions
from ._warm_start import WarmTrial, enqueue_warm_start


def create_or_join(spec: StudySpec, storage: optuna.storages.BaseStorage,
                   warm: Sequence[WarmTrial] = ()) -> tuple[optuna.Study, bool]:
    """Create the study (and enqueue the baseline, then the `warm` start's trials) or load it; safe when many
    workers race: only the worker whose create_study wins enqueues. A study on the user's data needs the spec
    `prepare` returns (with the data's fingerprint): a worker whose data differ from the creator's is refused
    here, before it trains anything."""
    spec.to_dict()  # raises before the store is touched when the user's data were not loaded
    sampler, pruner = spec.sampler_object(), spec.pruner_object()
    try:
        study = optuna.create_study(storage=storage, study_name=spec.name, sampler=sampler, pruner=pruner,
                                    direction=optuna.study.StudyDirection[spec.direction.upper()])
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=spec.name, storage=storage, sampler=sampler, pruner=pruner)
        _check_same_study(spec, study)
        return study, False
    study.set_user_attr(StudyAttr.UID, new_uid())  # keys this study's checkpoints; a namesake's are not its own
    study.set_user_attr(StudyAttr.SPEC, spec.to_dict())
    study.set_user_attr(StudyAttr.HEARTBEAT, spec.heartbeat.__dict__)
    study.set_user_attr(StudyAttr.VERSIONS, versions())
    if spec.baseline:
        study.enqueue_trial(spec.space.baseline(), user_attrs={Attr.BASELINE: True})
    enqueue_warm_start(study, warm)
    study.set_user_attr(StudyAttr.FINGERPRINT, spec.fingerprint())  # last: joiners wait for it
    return study, True


def _check_same_study(spec: StudySpec, study: optuna.Study, wait: float = 30.0) -> None:
    deadline = time.monotonic() + wait
    while (stored := study.user_attrs.get(StudyAttr.FINGERPRINT)) is None and time.monotonic() < deadline:
        time.sleep(0.2)  # the creating worker is still setting the study up
    if stored is None:
        raise StudyError(spec.source, "name", f"a study named {spec.name!r} exists but was not made by adamtune")
    theirs = _data_fingerprint(study.user_attrs.get(StudyAttr.SPEC))
    ours = spec.facts.fingerprint if spec.facts is not None else None
    if theirs and ours and theirs != ours:
        raise StudyError(spec.source, "dataset", f"study {spec.name!r} was made on data with fingerprint {theirs}, "
                         f"but this worker's data ({spec.data_source.describe()}) has fingerprint {ours}; every "
                         "worker must see the same files (or rename the study)")
    if stored != spec.fingerprint():
        raise StudyError(spec.source, "name", f"study {spec.name!r} exists with a different dataset, model, "
                         "epochs, sampler, pruner or search space; rename the study or delete the old one")


def _data_fingerprint(stored_spec) -> str | None:
    dataset = (stored_spec or {}).get("dataset")
    return dataset.get("fingerprint") if isinstance(dataset, dict) else None
