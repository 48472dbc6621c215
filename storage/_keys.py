"""The names a trial record is stored under: adamtune's trial and study user-attr keys and Optuna's trial
states. Defined here, the lowest room that reads them (its SQL finds the baseline trial by its key), and
used by the objective that writes them and by every reader."""

from __future__ import annotations


class Attr:
    """The user-attr keys adamtune writes on a trial; nothing else names them."""

    BASELINE = "baseline"  # set when the baseline trial is enqueued
    WARM_START = "warm_start"  # where a warm-started trial's values came from: "study NAME #N (URL)", "export FILE"
    WORKER = "worker"  # host:pid of the worker that ran it
    RETRY_OF = "retry_of"  # the original trial's number, on a retry
    DEVICE = "device"
    PARAM_COUNT = "param_count"
    CURVE = "curve"  # per-epoch lists, every series but the objective's (it is the trial's intermediate values)
    BEST_EPOCH = "best_epoch"  # 0-based epoch of the best validation loss (its weights were kept)
    RESUMED_EPOCHS = "resumed_epochs"  # epochs restored from a checkpoint instead of trained
    PRUNED_REASON = "pruned_reason"
    FAIL_REASON = "fail_reason"
    REFUSED = "refused"  # its model cannot train at its values: a retry would fail the same way, none is queued
    PACKED = "packed"  # trained by a packed worker (its pack size): `train` reproduces it the same way


class StudyAttr:
    """The user-attr keys adamtune writes on a study when it creates it."""

    UID = "uid"  # random, set once at creation: keys the study's checkpoints (a namesake's are not its own)
    SPEC = "spec"  # what a joining worker must agree with; readers derive trial configs from it
    HEARTBEAT = "heartbeat"  # the study's heartbeat settings, so read commands fail stale trials alike
    VERSIONS = "versions"
    FINGERPRINT = "fingerprint"  # set last: joining workers wait for it


# Optuna's trial states as the store names them, in the order views list them.
STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")
