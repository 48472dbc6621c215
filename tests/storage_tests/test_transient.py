"""Which store errors a worker waits out, judged on errors real databases raise through Optuna: only an
unreachable server or a broken connection; a full disk, a read-only file, a constraint or a bad value
fail at once, with the driver's reason instead of Optuna's "invalid data in the commit"."""

from __future__ import annotations

import sqlite3
import uuid

import optuna
import pytest
import sqlalchemy

from adamtune.storage import StorageError, describe_error, is_store_error, open_storage, storage_errors
from conftest import postgres_url


def raised(call) -> BaseException:
    with pytest.raises(Exception) as info:  # which exception a real store raises is the point
        call()
    return info.value


def as_storage_error(url: str, call) -> StorageError:
    """What a command sees: the store error as one StorageError line."""
    with pytest.raises(StorageError) as info, storage_errors(url):
        call()
    return info.value


@pytest.fixture
def sqlite_study(tmp_path):
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    storage = optuna.storages.RDBStorage(url)
    yield url, storage, optuna.create_study(storage=storage, study_name="s")
    storage.engine.dispose()


def test_sqlite_disk_full_is_not_waited_out(sqlite_study):
    url, storage, study = sqlite_study
    with storage.engine.connect() as conn:
        pages = conn.execute(sqlalchemy.text("PRAGMA page_count")).scalar()

    @sqlalchemy.event.listens_for(storage.engine, "connect")
    def no_room_to_grow(dbapi_connection, _record):  # SQLite answers SQLITE_FULL, as on a full disk
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages}")

    storage.engine.dispose()
    def fill():
        for i in range(1000):
            study.set_user_attr(f"attr{i}", "x" * 4000)

    error = raised(fill)
    assert isinstance(error, optuna.exceptions.StorageInternalError) and not is_store_error(error)
    assert describe_error(error) == "OperationalError: database or disk is full"
    reported = as_storage_error(url, fill)
    assert str(reported) == f"study store {url}: OperationalError: database or disk is full"
    assert not reported.transient


def test_sqlite_readonly_database_is_not_waited_out(sqlite_study, tmp_path):
    read_only = optuna.storages.RDBStorage(f"sqlite:///file:{tmp_path / 'studies.db'}?mode=ro&uri=true")
    error = raised(lambda: optuna.create_study(storage=read_only, study_name="another"))
    assert not is_store_error(error)
    assert describe_error(error) == "OperationalError: attempt to write a readonly database"
    read_only.engine.dispose()


def test_sqlite_constraint_violation_is_not_waited_out(sqlite_study):
    _, storage, _ = sqlite_study

    def duplicate_study_row():
        with storage.engine.begin() as conn:
            conn.execute(sqlalchemy.text("INSERT INTO studies (study_id, study_name) VALUES (1, 'again')"))

    error = raised(duplicate_study_row)
    assert not is_store_error(error)
    assert describe_error(error) == "IntegrityError: UNIQUE constraint failed: studies.study_id"


def test_sqlite_locked_by_another_writer_is_waited_out(sqlite_study, tmp_path):
    url, _, _ = sqlite_study
    impatient = optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 0.1}})
    writer = sqlite3.connect(tmp_path / "studies.db", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    try:
        error = raised(lambda: optuna.create_study(storage=impatient, study_name="blocked"))
    finally:
        writer.execute("ROLLBACK")
        writer.close()
        impatient.engine.dispose()
    assert is_store_error(error)
    assert describe_error(error) == "OperationalError: database is locked"


def test_postgresql_unreachable_server_is_waited_out():
    error = raised(lambda: open_storage("postgresql+psycopg://bob:pa55word@127.0.0.1:1/nowhere"))
    assert isinstance(error, StorageError) and error.transient


@pytest.mark.postgres
def test_postgresql_terminated_connection_is_waited_out():
    tag = f"adamtune-test-{uuid.uuid4().hex[:8]}"
    url = postgres_url()
    storage = optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"application_name": tag}})
    study = optuna.create_study(storage=storage)
    admin = sqlalchemy.create_engine(url)
    try:
        with admin.connect() as conn:
            killed = conn.execute(sqlalchemy.text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                                  "WHERE application_name = :tag"), {"tag": tag}).scalar()
        assert killed >= 1
        error = raised(lambda: study.set_user_attr("after", 1))
        assert is_store_error(error)
        assert describe_error(error) == "AdminShutdown: terminating connection due to administrator command"
    finally:
        admin.dispose()
        optuna.delete_study(study_name=study.study_name, storage=storage)
        storage.engine.dispose()


@pytest.mark.postgres
def test_postgresql_nul_byte_is_not_waited_out():
    url = postgres_url()
    storage = open_storage(url)
    reported = as_storage_error(url, lambda: optuna.create_study(storage=storage, study_name="bad\x00name"))
    assert not reported.transient
    assert str(reported).endswith(": DataError: PostgreSQL text fields cannot contain NUL (0x00) bytes")
    assert "bad\x00name" not in optuna.study.get_all_study_names(storage)
    storage.engine.dispose()


@pytest.mark.postgres
def test_postgresql_connection_killed_inside_get_all_trials_is_waited_out():
    """Optuna's trial read catches every OperationalError as "too many SQL variables" and runs the query again
    on the same, now broken, session: PendingRollbackError, whose `__context__` (not `__cause__`) is the lost
    connection. The session is killed inside that read every time, from a second connection."""
    url = postgres_url()
    storage = optuna.storages.RDBStorage(url)
    study = optuna.create_study(storage=storage, study_name=f"killed-read-{uuid.uuid4().hex[:8]}")
    study.enqueue_trial({"x": 1.0})
    admin = sqlalchemy.create_engine(url)
    kills: list[int] = []

    @sqlalchemy.event.listens_for(storage.engine, "before_cursor_execute")
    def kill_own_session(conn, _cursor, statement, *_args):
        if not kills and "FROM trials" in statement and "ORDER BY trials.trial_id" in statement:
            pid = conn.connection.dbapi_connection.info.backend_pid
            with admin.connect() as other:
                other.execute(sqlalchemy.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            kills.append(pid)

    try:
        error = raised(lambda: study.get_trials(deepcopy=False))
        assert kills, "the trials SELECT was not seen"
        assert isinstance(error.__cause__, sqlalchemy.exc.PendingRollbackError)  # the path the item is about
        assert is_store_error(error)
        assert describe_error(error) == "AdminShutdown: terminating connection due to administrator command"
        assert len(study.get_trials(deepcopy=False)) == 1  # the store is back for the next read
    finally:
        sqlalchemy.event.remove(storage.engine, "before_cursor_execute", kill_own_session)
        admin.dispose()
        optuna.delete_study(study_name=study.study_name, storage=storage)
        storage.engine.dispose()
