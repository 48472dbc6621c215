"""Storage URL resolution, masking, engine options, and opening real stores."""

from __future__ import annotations

import uuid
from urllib.parse import quote, quote_plus

import optuna
import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url

from adamtune.errors import InputError
from adamtune.storage import StorageError, engine_options, mask_url, open_storage, redact, resolve_url
from conftest import postgres_url


def test_resolution_order(monkeypatch, tmp_path):
    monkeypatch.delenv("ADAMTUNE_STORAGE", raising=False)
    monkeypatch.delenv("ADAMTUNE_STORAGE_FILE", raising=False)
    assert resolve_url() == "sqlite:///adamtune.db"
    secret = tmp_path / "url"
    secret.write_text("postgresql+psycopg://u:p@db/x\n")
    monkeypatch.setenv("ADAMTUNE_STORAGE_FILE", str(secret))
    assert resolve_url() == "postgresql+psycopg://u:p@db/x"
    monkeypatch.setenv("ADAMTUNE_STORAGE", "sqlite:///env.db")
    assert resolve_url() == "sqlite:///env.db"
    assert resolve_url("sqlite:///flag.db") == "sqlite:///flag.db"


@pytest.mark.parametrize("source", ["flag", "env", "file", "file name", "unreadable file"])
@pytest.mark.parametrize("value", ["", "  \n"])
def test_a_named_but_empty_or_unreadable_store_is_bad_input(monkeypatch, tmp_path, source, value):
    """A broken container secret must not fall back to a local SQLite file (a throwaway store per container)."""
    monkeypatch.delenv("ADAMTUNE_STORAGE", raising=False)
    monkeypatch.delenv("ADAMTUNE_STORAGE_FILE", raising=False)
    secret = tmp_path / "url"
    secret.write_text(value)
    flag = value if source == "flag" else None
    if source == "env":
        monkeypatch.setenv("ADAMTUNE_STORAGE", value)
    elif source == "file":
        monkeypatch.setenv("ADAMTUNE_STORAGE_FILE", str(secret))
    elif source == "file name":
        monkeypatch.setenv("ADAMTUNE_STORAGE_FILE", value)
    elif source == "unreadable file":
        monkeypatch.setenv("ADAMTUNE_STORAGE_FILE", str(tmp_path / "missing"))
    with pytest.raises(InputError) as info:
        resolve_url(flag)
    assert info.value.exit_code == 2
    assert info.value.key == {"flag": "URL", "env": "ADAMTUNE_STORAGE"}.get(source, "ADAMTUNE_STORAGE_FILE")
    assert ("No such file" if source == "unreadable file" else "is empty") in info.value.reason


def test_plain_postgresql_urls_use_psycopg3():
    assert resolve_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert resolve_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"


def test_masking():
    url = "postgresql+psycopg://alice:hunter2@db.example:5432/studies"
    assert mask_url(url) == "postgresql+psycopg://alice:***@db.example:5432/studies"
    assert "hunter2" not in redact(f"could not connect to {url} as alice with hunter2", url)
    assert mask_url("sqlite:///adamtune.db") == "sqlite:///adamtune.db"


@pytest.mark.parametrize(("url", "password"), [
    ("postgresql+psycopg://alice:hunter2@db/x", "hunter2"),
    ("postgresql+psycopg://alice:hun%40ter2@db/x", "hun@ter2"),
    ("postgresql+psycopg://alice@db/x?password=hunter2&sslmode=require", "hunter2"),
    ("postgresql+psycopg://alice@db/x?passwd=hunter2", "hunter2"),
    ("postgresql+psycopg://alice@db/x?sslmode=verify-full&sslpassword=hun%40ter2", "hun@ter2"),
    ("postgresql+psycopg:///x?host=db%20password%3Dhunter2", "hunter2"),
    ("postgresql+psycopg:///x?dsn=host=db password='hun ter2' user=alice", "hun ter2"),
    ("mysql+pymysql://alice@db/x?PASSWORD=hunter2", "hunter2"),
])
def test_every_password_form_is_masked(url, password):
    """Each form SQLAlchemy and libpq accept; driver errors may echo the password as given or URL-encoded."""
    forms = {password, quote(password, safe=""), quote_plus(password)}
    shown = mask_url(url)
    assert "***" in shown and not any(f in shown for f in forms), shown
    error = f"connection to {url} failed: password authentication failed ({' / '.join(sorted(forms))})"
    text = redact(error, url)
    assert not any(f in text for f in forms), text
    assert "password authentication failed" in text


def test_engine_options_suit_long_running_workers():
    assert engine_options("sqlite:///x.db") == {"connect_args": {"timeout": 60}}
    pg = engine_options("postgresql+psycopg://u@h/db")
    assert pg["pool_pre_ping"] is True and pg["pool_size"] + pg["max_overflow"] <= 4


def test_open_real_store_round_trip(storage_url):
    storage = open_storage(storage_url)
    name = f"open_{id(storage)}"
    study = optuna.create_study(storage=storage, study_name=name)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    assert len(optuna.load_study(study_name=name, storage=open_storage(storage_url)).trials) == 2
    optuna.delete_study(study_name=name, storage=storage)


def test_unreachable_store_is_one_clear_error_without_password():
    with pytest.raises(StorageError) as info:
        open_storage("postgresql+psycopg://bob:pa55word@127.0.0.1:1/nowhere")
    assert "pa55word" not in str(info.value) and "bob:***@127.0.0.1:1" in str(info.value)


@pytest.fixture(params=["sqlite", "postgres"])
def new_store_url(request, tmp_path):
    """A store without Optuna's tables: an SQLite file, or a new database on the real PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'new.db'}"
        return
    request.applymarker(pytest.mark.postgres)
    server = make_url(postgres_url())
    database = f"adamtune_new_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{database}"'))
    yield server.set(database=database).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE "{database}" WITH (FORCE)'))
    admin.dispose()


def test_a_worker_that_loses_the_race_to_create_a_new_stores_tables_opens_it(new_store_url):
    """Workers started at once on a new store (`run --workers 4`, or machines joining a new PostgreSQL)
    each check for Optuna's tables, then create the missing ones. Here a rival creates them in the gap
    between this worker's check and its CREATE, as happened in CI ("table studies already exists",
    exit 1): the worker must still open the store and run."""
    from optuna.storages._rdb.models import BaseModel

    rival = create_engine(new_store_url)

    def rival_creates_the_tables_first(*_args, **_kwargs) -> None:
        BaseModel.metadata.create_all(rival)

    # MetaData's before_create fires after the existence check; first in line, before any CREATE.
    event.listen(BaseModel.metadata, "before_create", rival_creates_the_tables_first, once=True, insert=True)
    try:
        storage = open_storage(new_store_url)
    finally:
        if event.contains(BaseModel.metadata, "before_create", rival_creates_the_tables_first):
            event.remove(BaseModel.metadata, "before_create", rival_creates_the_tables_first)
        rival.dispose()
    study = optuna.create_study(storage=storage, study_name="raced")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    assert len(study.trials) == 2
    storage.engine.dispose()
