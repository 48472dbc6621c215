"""The study store: URL resolution (once per command, into one `Store` that travels down), engine options,
error classification and reconnecting, heartbeats, study lookup, password masking and the names a trial
record is stored under (`Attr`, `StudyAttr`, `STATES`).
Every SQL statement adamtune runs on the store lives here."""

from adamtune.errors import StorageError

from ._claims import claim_retry
from ._errors import is_store_error, storage_errors
from ._experimental import optuna_experimental
from ._heartbeats import TrialBeats, fail_stale, heartbeat_ages
from ._keys import STATES, Attr, StudyAttr
from ._lookup import open_studies, open_study
from ._open import APPLICATION_NAME, Heartbeat, engine_options, open_storage
from ._own_trials import OwnTrialsCache, for_packed_worker, write_pending
from ._reconnect import with_reconnect
from ._rows import StudyRows, TrialRow, study_rows
from ._store import Store
from ._transient import describe_error
from ._url import DEFAULT_URL, has_heartbeats, is_sqlite, mask_url, normalize_url, redact, resolve_url, sqlite_file

__all__ = [
    "APPLICATION_NAME",
    "Attr",
    "claim_retry",
    "DEFAULT_URL",
    "Heartbeat",
    "StorageError",
    "Store",
    "describe_error",
    "engine_options",
    "fail_stale",
    "has_heartbeats",
    "is_sqlite",
    "heartbeat_ages",
    "is_store_error",
    "mask_url",
    "normalize_url",
    "open_storage",
    "OwnTrialsCache",
    "for_packed_worker",
    "open_studies",
    "optuna_experimental",
    "open_study",
    "redact",
    "resolve_url",
    "STATES",
    "sqlite_file",
    "storage_errors",
    "StudyAttr",
    "StudyRows",
    "study_rows",
    "TrialBeats",
    "TrialRow",
    "with_reconnect",
    "write_pending",
]
