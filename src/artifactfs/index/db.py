"""Connections to the index: one engine per URL and process, SQLite tuned for
concurrent writers, and the schema brought up to date on first use.

Callers frame their own transactions: ``with index.read() as session`` for
queries, ``with index.write() as session`` for changes (on SQLite it takes
the write lock at BEGIN, so two writers queue instead of deadlocking).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker

from artifactfs.errors import ConfigError
from artifactfs.index.migrate import upgrade_if_needed
from artifactfs.settings import create_private_file, get_settings
from artifactfs.stores.secrets import remember_secrets

SQLITE_BUSY_TIMEOUT_MS = 60_000
#: Execution option of a SQLite write whose commit need not reach the disk at once.
LIGHT_COMMIT = "artifactfs_light_commit"


class Index:
    """The lineage index behind one SQLAlchemy URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        parsed = make_url(url)
        remember_secrets([parsed.password])  # masked in every error and log line from now on
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        self.engine = _make_engine(url, begin="DEFERRED")
        # SQLite: a second engine whose transactions start with BEGIN IMMEDIATE.
        self._write_engine = _make_engine(url, begin="IMMEDIATE") if self.is_sqlite else self.engine
        self._reader = sessionmaker(self.engine, expire_on_commit=False)
        self._writer = sessionmaker(self._write_engine, expire_on_commit=False)

    def __repr__(self) -> str:
        return f"Index({make_url(self.url).render_as_string(hide_password=True)!r})"

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._reader() as session, session.begin():
            yield session

    @contextmanager
    def write(self, durable: bool = True) -> Iterator[Session]:
        """A transaction that commits on success and rolls back on error.

        Every commit is durable (SQLite ``synchronous=FULL``) unless
        ``durable=False``: on SQLite that commit may then be lost to a power
        cut (never to a crash of the process, and never out of order: a
        later durable commit makes it durable too). Write intents use it.
        """
        with self._writer() as session, session.begin():
            if not durable and self.is_sqlite:  # options apply as the connection is first taken
                session.connection(execution_options={LIGHT_COMMIT: True})
            yield session

    def write_connection(self):
        """A raw connection in a write transaction (used by migrations)."""
        return self._write_engine.begin()

    def dispose(self) -> None:
        self.engine.dispose()
        if self._write_engine is not self.engine:
            self._write_engine.dispose()


def _make_engine(url: str, begin: str) -> Engine:
    parsed = make_url(url)
    kwargs: dict = {}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not parsed.query.get("uri"):
            create_private_file(Path(database))  # the index is its owner's alone (0600)
        kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
    else:
        kwargs["pool_pre_ping"] = True
    try:
        engine = create_engine(url, **kwargs)
    except (ArgumentError, NoSuchModuleError) as exc:
        raise ConfigError(
            f"the index URL is not usable: {exc}",
            "set ARTIFACTFS_INDEX_URL to a SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db",
        ) from exc
    if parsed.get_backend_name() == "sqlite":
        _tune_sqlite(engine, begin)
    return engine


def _tune_sqlite(engine: Engine, begin: str) -> None:
    """WAL, foreign keys, a busy timeout, and transactions we begin ourselves
    (pysqlite's own implicit BEGIN cannot say IMMEDIATE)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        _set_wal(cursor)
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        # FULL: a commit is on disk when it returns (NORMAL in WAL mode may
        # lose the last commits to a power cut, and so name lost payloads).
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        _set_synchronous(conn, "NORMAL" if conn.get_execution_options().get(LIGHT_COMMIT) else "FULL")
        conn.exec_driver_sql(f"BEGIN {begin}")


def _set_synchronous(conn, level: str) -> None:
    """Per transaction, before BEGIN (SQLite refuses it inside one); the
    level in force is remembered per connection, so it costs nothing usually."""
    info = conn.connection.info
    if info.get("synchronous", "FULL") != level:
        conn.exec_driver_sql(f"PRAGMA synchronous={level}")
        info["synchronous"] = level


def _set_wal(cursor) -> None:
    """Switch to WAL. On a fresh file, processes opening it at once can get
    "database is locked" here at once: SQLite does not call the busy handler
    for this switch, so wait as the busy timeout would."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


_lock = threading.Lock()
_indexes: dict[tuple[int, str], Index] = {}


def get_index(url: str | None = None) -> Index:
    """The index for ``url`` (default: from settings), migrated, cached per process."""
    settings = get_settings()
    url = url or settings.index_url
    key = (os.getpid(), url)  # engines must not cross a fork
    with _lock:
        index = _indexes.get(key)
        if index is None:
            index = Index(url)
            upgrade_if_needed(index, settings.cache_dir)
            _indexes[key] = index
        return index


def reset_index_cache() -> None:
    """Forget cached engines (tests switch URLs and homes)."""
    with _lock:
        for index in _indexes.values():
            index.dispose()
        _indexes.clear()


def dialect_insert(session: Session):
    """``insert`` of the session's dialect, for ``on_conflict_do_nothing``
    (SQLite and PostgreSQL both have it). Imported here: the PostgreSQL
    dialect costs every command 50 ms otherwise."""
    if session.bind.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def ping(index: Index) -> None:
    with index.read() as session:
        session.execute(text("SELECT 1"))
