"""A checkpoint belongs to one trial of one study in one store: a namesake study never resumes
another's, and a retry whose checkpoint was damaged still completes, trained from epoch 0."""

from __future__ import annotations

import os
from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import TrialState

from adamtune.storage import open_storage
from adamtune.studies import create_or_join, load_study_file, run_study
from adamtune.studies._checkpoints import trial_checkpoint
from adamtune.studies._objective import Objective
from adamtune.studies._retries import retry_interrupted as _retry_interrupted
from conftest import adamtune, write_study

pytestmark = pytest.mark.slow  # runs the adamtune command or trains studies

EPOCHS = 4  # write_study's


def complete_trials(url: str, name: str) -> list[optuna.trial.FrozenTrial]:
    trials = optuna.load_study(study_name=name, storage=url).get_trials(states=(TrialState.COMPLETE,))
    return sorted(trials, key=lambda t: t.number)


def assert_trained_from_scratch(trial: optuna.trial.FrozenTrial) -> None:
    assert "resumed_epochs" not in trial.user_attrs, f"trial {trial.number} resumed someone else's checkpoint"
    assert len(trial.user_attrs["curve"]["train_loss"]) == EPOCHS
    assert sorted(trial.intermediate_values) == list(range(EPOCHS))


def test_a_namesake_study_in_another_store_or_recreated_trains_its_own_trials(tmp_path):
    shared = {"path": str(tmp_path / "artifacts"), "keep_checkpoints": True}  # kept: the worst case of leftovers
    first, second = f"sqlite:///{tmp_path / 'first.db'}", f"sqlite:///{tmp_path / 'second.db'}"
    spec = load_study_file(write_study(tmp_path, "same", n_trials=2, seed=0, artifacts=shared))
    run_study(spec, first, progress=False)
    before = complete_trials(first, "same")
    assert len(before) == 2
    first_best, = (tmp_path / "artifacts" / "same" / "best").glob("*/model.pt")
    first_weights = first_best.read_bytes()

    (tmp_path / "other").mkdir()
    other_seed = load_study_file(write_study(tmp_path / "other", "same", n_trials=2, seed=1, artifacts=shared))
    run_study(other_seed, second, progress=False)
    namesake = complete_trials(second, "same")
    assert len(namesake) == 2
    for trial in namesake:
        assert_trained_from_scratch(trial)
    assert namesake[0].value != before[0].value, "its own seed, its own result"
    assert first_best.read_bytes() == first_weights, "the namesake kept its best weights apart"
    assert len(list((tmp_path / "artifacts" / "same" / "best").glob("*/model.pt"))) == 2
    assert len(list((tmp_path / "artifacts" / "same" / "best").glob("*/config.json"))) == 2

    optuna.delete_study(study_name="same", storage=second)
    run_study(other_seed, second, progress=False)  # recreated under the same name (and, on SQLite, the same id)
    recreated = complete_trials(second, "same")
    assert len(recreated) == 2
    for trial in recreated:
        assert_trained_from_scratch(trial)
    assert [t.value for t in recreated] == [t.value for t in namesake], "same seed, retrained: the same values"
    assert len(list((tmp_path / "artifacts" / "same").rglob("checkpoint.pt"))) == 6, "three studies' own files"


def test_studies_made_before_checkpoint_uids_are_told_apart_by_store_id_and_fingerprint(tmp_path):
    def old_study(url: str, seed: int) -> optuna.Study:
        spec = load_study_file(write_study(tmp_path, "old", seed=seed))
        study = optuna.create_study(study_name="old", storage=url)
        study.set_user_attr("fingerprint", spec.fingerprint())  # what older adamtune versions stored
        return study

    a = old_study(f"sqlite:///{tmp_path / 'a.db'}", seed=0)
    b = old_study(f"sqlite:///{tmp_path / 'b.db'}", seed=1)
    again = optuna.load_study(study_name="old", storage=a._storage)  # another worker on the same study
    root = tmp_path / "artifacts" / "old"
    assert trial_checkpoint(root, a, 0).path == trial_checkpoint(root, again, 0).path
    assert trial_checkpoint(root, a, 0).owner == trial_checkpoint(root, again, 0).owner
    assert trial_checkpoint(root, a, 0).path != trial_checkpoint(root, b, 0).path
    assert trial_checkpoint(root, a, 0).path != trial_checkpoint(root, a, 1).path


def interrupted_trial_0(tmp_path, url):
    """What a worker stopped by SIGTERM after two epochs leaves: trial 0 FAIL with its checkpoint,
    its retry queued."""
    study_file = write_study(tmp_path, "retried", n_trials=1)
    spec = load_study_file(study_file)
    study, _ = create_or_join(spec, open_storage(url, spec.heartbeat))

    def stopped_after_two_epochs(number, record):
        if record.epoch == 1:
            raise KeyboardInterrupt  # what SIGTERM raises in a worker, after the epoch's checkpoint
    objective = Objective(spec, torch.device("cpu"), on_epoch=stopped_after_two_epochs)
    with pytest.raises(KeyboardInterrupt):
        study.optimize(objective, n_trials=1)
    _retry_interrupted(study, objective, spec)
    return study_file, trial_checkpoint(Path(spec.artifacts) / spec.name, study, 0)


def retry_of_trial_0(url: str) -> optuna.trial.FrozenTrial:
    trials = optuna.load_study(study_name="retried", storage=url).trials
    assert trials[0].state == TrialState.FAIL
    retry, = [t for t in trials if t.user_attrs.get("retry_of") == 0]
    assert retry.state == TrialState.COMPLETE
    return retry


def test_a_retry_resumes_its_own_checkpoint(tmp_path):
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    study_file, checkpoint = interrupted_trial_0(tmp_path, url)
    result = adamtune("run", str(study_file), "--storage", url)
    assert result.returncode == 0, result.stderr
    retry = retry_of_trial_0(url)
    assert retry.user_attrs["resumed_epochs"] == 2
    assert sorted(retry.intermediate_values) == list(range(EPOCHS)), "the saved epochs are reported again: no gap"
    assert len(retry.user_attrs["curve"]["train_loss"]) == EPOCHS
    assert not checkpoint.path.parent.exists(), "the finished retry's checkpoint is removed"


def test_a_retry_whose_checkpoint_was_damaged_trains_from_epoch_0_and_completes(tmp_path):
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    study_file, checkpoint = interrupted_trial_0(tmp_path, url)
    checkpoint.path.write_bytes(checkpoint.path.read_bytes()[:1000])  # cut short, as by a full disk
    leftover = checkpoint.path.with_name("checkpoint.pt.x1y2.partial")  # a worker killed while saving
    leftover.write_bytes(b"half")

    result = adamtune("run", str(study_file), "--storage", url)
    assert result.returncode == 0, result.stderr
    assert f"checkpoint {checkpoint.path} cannot be read (RuntimeError: PytorchStreamReader" in result.stderr
    assert "Traceback" not in result.stderr
    assert_trained_from_scratch(retry_of_trial_0(url))
    assert not checkpoint.path.exists() and not leftover.exists(), "the finished retry's files are removed"
    assert len(list(checkpoint.path.parent.glob("checkpoint.pt.bad-*"))) == 1, "the damaged file is set aside"


def test_a_trial_keeps_its_checkpoint_until_the_store_has_recorded_its_end(tmp_path):
    """The objective returns before Optuna tells the store; if that write is lost (the server went down), the
    retry must still find the checkpoint (the PostgreSQL restart scenario once retrained 4 epochs from 0)."""
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    spec = load_study_file(write_study(tmp_path, "kept", n_trials=1, pruner={"type": "none"}))
    study, _ = create_or_join(spec, open_storage(url))  # no heartbeat: the test asks and tells by hand
    objective = Objective(spec, torch.device("cpu"))
    trial = study.ask()
    value = objective(trial)
    checkpoint = trial_checkpoint(Path(spec.artifacts) / spec.name, study, trial.number)
    assert checkpoint.path.exists(), "the end is not recorded yet: a retry would resume from this file"
    frozen = study.tell(trial, value)
    objective.recorded(study, frozen)
    assert not checkpoint.path.exists(), "recorded: the checkpoint goes"


@pytest.mark.parametrize("pack", [1, 2], ids=["solo", "packed"])
@pytest.mark.parametrize("left", [8 << 10, 24 << 10, 64 << 10], ids=["8KiB", "24KiB", "64KiB"])
def test_a_disk_that_fills_during_a_checkpoint_fails_the_trials_with_the_reason_and_queues_retries(
        tmp_path, pack, left):
    """Whatever space is left when a checkpoint does not fit (torch's own writer fails with a RuntimeError
    at most sizes), the worker stops with the file-system error, and each trial it held is FAIL with that
    reason and has its retry queued."""
    from adamtune.studies._artifacts_dir import TrialFileError
    from small_filesystems import fill, tmpfs

    url = f"sqlite:///{tmp_path / 'full.db'}"
    with tmpfs(tmp_path / "artifacts", size="1m") as artifacts:
        spec = load_study_file(write_study(tmp_path, "full", baseline=False, n_trials=2, pack=pack,
                                           artifacts={"path": str(artifacts)}, sampler={"type": "random"},
                                           params={"batch_size": {"type": "fixed", "value": 64},
                                                   "width": {"type": "fixed", "value": 256}}))
        filler = fill(artifacts)
        os.truncate(filler, max(filler.stat().st_size - left, 0))
        with pytest.raises(TrialFileError) as info:
            run_study(spec, url, progress=False)
    assert "No space left on device" in str(info.value)
    trials = optuna.load_study(study_name="full", storage=url).get_trials()
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert failed and all(t.user_attrs["fail_reason"] == "file system error: No space left on device" for t in failed)
    retries = [t for t in trials if t.state == TrialState.WAITING]
    assert sorted(t.system_attrs["failed_trial"] for t in retries) == sorted(t.number for t in failed)


def test_a_failed_write_is_judged_by_the_file_system_not_by_the_exception_class(tmp_path):
    """An error some library raised while writing (not an OSError) is a file-system failure when the
    artifacts file system is full or read-only, and nothing of the kind when it is not."""
    import errno

    from adamtune.studies._artifacts_dir import file_system_failure
    from small_filesystems import fill, tmpfs

    wrapped = RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 768 vs 662")
    with tmpfs(tmp_path / "small", size="256k") as small:
        assert file_system_failure(small, wrapped) is None
        filler = fill(small)
        assert file_system_failure(small, wrapped).errno == errno.ENOSPC
        filler.unlink()
        assert file_system_failure(small, wrapped) is None
    with tmpfs(tmp_path / "read_only", read_only=True) as read_only:
        assert file_system_failure(read_only, wrapped).errno == errno.EROFS
    try:
        try:
            raise OSError(errno.EDQUOT, "Disk quota exceeded")
        except OSError:
            raise RuntimeError("the writer's own words") from None
    except RuntimeError as chained:
        assert file_system_failure(tmp_path, chained).errno == errno.EDQUOT, "the errno behind it"
