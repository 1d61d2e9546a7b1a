"""Connections to the index: one engine per URL and process, SQLite tuned for
concurrent writers, and the schema brought up to date on first use.

Callers frame their own transactions: ``with index.read() as session`` for
queries (``with index.read_rows() as connection``: a Core connection, for a
query that selects from ``index.tables`` and needs no ORM; the ORM is loaded
only when a first session is made), ``index.run_write(fn, ...)`` for changes: it runs ``fn(session, ...)``
in a write transaction and runs it again when PostgreSQL aborted the
transaction for a deadlock or a serialization failure (bounded, with
jittered backoff), so ``fn`` must do nothing but database work. ``with
index.write() as session`` is the same transaction without the retry (a
with-block cannot be re-run); both turn a conflict that is left over into
one :class:`IndexConflictError` line. On SQLite the write transaction takes
the write lock at BEGIN, so writers queue instead of deadlocking.

Connections: a process keeps one connection to PostgreSQL (threads that
need more at the same moment open short-lived extras, closed on return).
No session state is used (no SET, no session-level advisory lock, no
server-side prepared statement), so the index works behind PgBouncer in
transaction pooling mode.

An index that cannot be used says why in words (``index.health``): a full
device, a file that is not a database or is damaged, a newer schema. A
SQLite index on a full device is opened read only (when its write-ahead log
holds nothing, so the file alone is the whole index): commands that only
read go on working, a write fails with the full device named.
"""

from __future__ import annotations

import logging
import os
import random
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    DisconnectionError,
    InterfaceError,
    NoSuchModuleError,
    OperationalError,
)
from sqlalchemy.pool import QueuePool

from artifactfs.errors import ArtifactfsError, ConfigError
from artifactfs.index import generation
from artifactfs.index.health import IndexFullError, device_full, explain, full_error, sqlite_path
from artifactfs.index.migrate import upgrade_if_needed
from artifactfs.index.sql import is_postgres
from artifactfs.settings import create_private_file, get_settings

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection
    from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 60_000
# PostgreSQL SQLSTATEs after which the whole transaction may simply run again.
RETRYABLE = {"40P01": "deadlock detected", "40001": "serialization failure"}
WRITE_ATTEMPTS = 8
BACKOFF_S = (0.005, 0.5)  # first and largest wait before a retry (jittered)
# Connections per process: one kept open; extras for threads, closed on return.
POOL_SIZE, POOL_OVERFLOW = 1, 2
IDLE_PING_S = 10.0  # a connection idle this long is checked before use

T = TypeVar("T")
log = logging.getLogger("artifactfs.index")


class IndexRetryableError(ArtifactfsError):
    """A write transaction that did not happen; ``retryable``: running it
    again is safe (``run_write`` does, a bounded number of times)."""

    retryable = True


class IndexConflictError(IndexRetryableError):
    """PostgreSQL aborted a write transaction for a deadlock or a
    serialization failure (after the retries, when it ran under ``run_write``)."""


class IndexConnectionError(IndexRetryableError):
    """The connection to the index was lost in the middle of a write."""

    def __init__(self, message: str, hint: str | None = None, retryable: bool = True) -> None:
        super().__init__(message, hint)
        self.retryable = retryable


class Index:
    """The lineage index behind one SQLAlchemy URL."""

    def __init__(self, url: str, full: IndexFullError | None = None) -> None:
        """``full``: the device holding this SQLite index is full; open it read
        only, and fail every write with this error."""
        self.url = url
        parsed = make_url(url)
        # Its password is masked where it stands, in a URL's password field (redact,
        # mask_url), never as free text: a password `team` must not mask /tmp/team/homes.
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        self._reconnecting = threading.Lock()
        self._making_sessions = threading.Lock()
        self._connect(full)
        self._retried = 0

    def _connect(self, full: IndexFullError | None) -> None:
        self.full = full
        if full is not None:
            self.engine = self._write_engine = self._light_engine = _make_read_only_engine(self.url)
        else:
            self.engine = _make_engine(self.url, begin="DEFERRED")
            # SQLite: a second engine whose transactions start with BEGIN IMMEDIATE;
            # commits that need not reach the disk at once run on its connections
            # too, at synchronous=NORMAL (an execution option of that engine). One
            # connection for a save's intent and its commit keeps SQLite's page
            # cache warm: a second connection would read every page again after
            # each commit of the first (about twenty on every save).
            self._write_engine = _make_engine(self.url, begin="IMMEDIATE") if self.is_sqlite else self.engine
            self._light_engine = (self._write_engine.execution_options(**{_LIGHT: True}) if self.is_sqlite
                                  else self.engine)
        self._session_makers: tuple[sessionmaker, sessionmaker, sessionmaker] | None = None

    def _sessions(self) -> tuple[sessionmaker, sessionmaker, sessionmaker]:
        """The reader's, the writer's and the light writer's session makers,
        made on first use: importing the ORM costs a command that reads
        through :meth:`read_rows` alone a fifth of its start."""
        makers = self._session_makers
        if makers is not None:
            return makers
        from sqlalchemy.orm import sessionmaker

        with self._making_sessions:
            if self._session_makers is None:
                reader = sessionmaker(self.engine, expire_on_commit=False)
                writer = sessionmaker(self._write_engine, expire_on_commit=False)
                light = (sessionmaker(self._light_engine, expire_on_commit=False)
                         if self._light_engine is not self._write_engine else writer)
                generation.install(writer)
                if light is not writer:
                    generation.install(light)
                self._session_makers = (reader, writer, light)
            return self._session_makers

    def _writable_again(self) -> bool:
        """A read-only index (its device was full) opened for writing again
        once its device has space (a long-running daemon must not stay read only)."""
        path = sqlite_path(self.url)
        with self._reconnecting:
            if self.full is None:
                return True  # another thread did it
            if path is None or device_full(path) is not None:
                return False
            self.dispose()
            self._connect(None)
        log.warning("the device holding the index %s has space again: writing to it", path)
        return True

    def __repr__(self) -> str:
        return f"Index({make_url(self.url).render_as_string(hide_password=True)!r})"

    @contextmanager
    def read(self) -> Iterator[Session]:
        """An ORM session in a read transaction."""
        with self._explained(), self._sessions()[0]() as session, session.begin():
            yield session

    @contextmanager
    def read_rows(self) -> Iterator[Connection]:
        """A Core connection in a read transaction, for queries that select
        from ``index.tables`` (``artifact list``): the ORM stays unloaded."""
        with self._explained(), self.engine.connect() as connection, connection.begin():
            yield connection

    @contextmanager
    def _explained(self) -> Iterator[None]:
        """A database error of a read named in words when ``index.health`` knows it."""
        try:
            yield
        except DBAPIError as exc:
            explained = explain(exc, self.url)
            if explained is None:
                raise
            raise explained from exc

    @contextmanager
    def write(self, durable: bool = True) -> Iterator[Session]:
        """A transaction that commits on success and rolls back on error
        (prefer :meth:`run_write`, which also runs it again when that is safe).

        Every commit is durable (SQLite ``synchronous=FULL``) unless
        ``durable=False``: on SQLite that commit may then be lost to a power
        cut (never to a crash of the process, and never out of order: a
        later durable commit makes it durable too). Write intents use it.
        """
        if self.full is not None and not self._writable_again():
            raise self.full
        _, writer, light_writer = self._sessions()
        with (writer if durable else light_writer)() as session:
            with self._committed(session.begin()):
                yield session

    @contextmanager
    def write_core(self, durable: bool = True) -> Iterator[Connection]:
        """:meth:`write` on a Core ``Connection`` instead of a ``Session``
        (about half the cost): for work that is Core statements only. A
        function that bumps the generation (``index.generation``) gets its
        bump as the transaction's last statement, as in a session. A save's
        write intents and its commit use it."""
        if self.full is not None and not self._writable_again():
            raise self.full
        with (self._write_engine if durable else self._light_engine).connect() as connection:
            try:
                with self._committed(connection.begin(), before_commit=lambda: generation.bump_marked(connection)):
                    yield connection
            finally:
                generation.forget_mark(connection)

    @contextmanager
    def _committed(self, transaction, before_commit: Callable[[], None] | None = None) -> Iterator[None]:
        """Commit ``transaction`` after the block (``before_commit`` run
        last inside it), roll it back on error; a database error comes out
        as its one-line translation."""
        try:
            yield
            if before_commit is not None:
                before_commit()
        except BaseException as exc:
            _rollback(transaction)
            translated = _translated(exc, committing=False, url=self.url) if isinstance(exc, DBAPIError) else exc
            if translated is exc:
                raise
            raise translated from exc
        try:
            transaction.commit()
        except DBAPIError as exc:
            translated = _translated(exc, committing=True, url=self.url)
            if translated is exc:
                raise
            raise translated from exc

    def run_write(self, fn: Callable[..., T], *args, durable: bool = True, core: bool = False, **kwargs) -> T:
        """``fn(session, *args, **kwargs)`` in a write transaction, run again
        (up to :data:`WRITE_ATTEMPTS` times, after a jittered exponential
        wait) when PostgreSQL aborted it for a deadlock or a serialization
        failure, or its connection was lost before COMMIT (nothing of it was
        kept). ``fn`` may run several times: it must only work on the database.
        ``durable``: as for :meth:`write`; ``core``: ``fn`` gets a Core
        ``Connection`` (:meth:`write_core`)."""
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                with (self.write_core(durable) if core else self.write(durable)) as session:
                    return fn(session, *args, **kwargs)
            except IndexRetryableError as exc:
                if not exc.retryable:
                    raise
                if attempt == WRITE_ATTEMPTS:
                    raise type(exc)(
                        f"{exc.message}, {attempt} times in a row",
                        "the index is very busy or keeps dropping connections: run the command again",
                    ) from exc.__cause__
                self._retried += 1
                time.sleep(random.uniform(0, min(BACKOFF_S[1], BACKOFF_S[0] * 2 ** attempt)))
        raise AssertionError("unreachable")

    def statistics(self) -> dict[str, int]:
        """``retried``: write transactions run again after a conflict;
        ``connections``: connections this process holds open to the database."""
        pool = self.engine.pool
        open_now = pool.checkedin() + pool.checkedout() if isinstance(pool, QueuePool) else 0
        return {"retried": self._retried, "connections": open_now}

    def write_connection(self):
        """A raw connection in a write transaction (used by migrations)."""
        return self._write_engine.begin()

    def dispose(self) -> None:
        self.engine.dispose()
        if self._write_engine is not self.engine:
            self._write_engine.dispose()  # the light engine shares its pool


def _make_engine(url: str, begin: str) -> Engine:
    parsed = make_url(url)
    kwargs: dict = {}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not parsed.query.get("uri"):
            create_private_file(Path(database))  # the index is its owner's alone (0600)
        kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
    else:
        kwargs.update(pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW)
        if parsed.drivername.partition("+")[2] == "psycopg":
            # No server-side prepared statements: PgBouncer in transaction
            # mode hands each transaction to any server connection.
            kwargs["connect_args"] = {"prepare_threshold": None}
    try:
        engine = create_engine(url, **kwargs)
    except (ArgumentError, NoSuchModuleError) as exc:
        raise ConfigError(
            f"the index URL is not usable: {exc}",
            "set ARTIFACTFS_INDEX_URL to a SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db",
        ) from exc
    if parsed.get_backend_name() == "sqlite":
        _tune_sqlite(engine, begin)
    else:
        _ping_when_idle(engine)
    return engine


def _make_read_only_engine(url: str) -> Engine:
    """A SQLite index opened read only and as immutable: no lock, no
    write-ahead log, no shared-memory file, so a full device cannot stop it
    (only used when the log is empty: the file then holds everything)."""
    uri = f"file:{urllib.parse.quote(str(sqlite_path(url)))}?mode=ro&immutable=1"
    engine = create_engine("sqlite://", creator=lambda: sqlite3.connect(uri, uri=True, check_same_thread=False))

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        conn.exec_driver_sql("BEGIN")

    return engine


def _ping_when_idle(engine: Engine) -> None:
    """Check a pooled connection before use only when it sat idle (a server
    restart or an idle timeout may have closed it meanwhile): a busy writer
    pays no round trip per transaction, as ``pool_pre_ping`` would make it.
    A connection lost in the middle of a transaction fails that transaction,
    which ``run_write`` runs again (see :func:`conflict_reason`)."""

    @event.listens_for(engine, "connect")
    @event.listens_for(engine, "checkin")
    def _used(_dbapi_conn, record) -> None:
        record.info["used"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_conn, record, _proxy) -> None:
        if time.monotonic() - record.info.get("used", 0.0) < IDLE_PING_S:
            return
        try:
            cursor = dbapi_conn.cursor()
            cursor.execute("SELECT 1")
            cursor.close()
            dbapi_conn.rollback()
        except Exception as exc:  # noqa: BLE001 - any sign of a dead connection
            raise DisconnectionError(f"connection lost while idle: {exc}") from exc


#: The execution option of a SQLite engine whose commits run at synchronous=NORMAL (see :meth:`Index.write`).
_LIGHT = "artifactfs_light"


def _tune_sqlite(engine: Engine, begin: str) -> None:
    """WAL, foreign keys, a busy timeout, and transactions we begin ourselves
    (pysqlite's own implicit BEGIN cannot say IMMEDIATE); a connection used
    with the execution option ``_LIGHT`` commits at synchronous=NORMAL (see
    :meth:`Index.write`)."""

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
        _set_synchronous(conn, "NORMAL" if conn.get_execution_options().get(_LIGHT) else "FULL")
        conn.exec_driver_sql(f"BEGIN {begin}")


def _set_synchronous(conn, level: str) -> None:
    """Per transaction, before BEGIN (SQLite refuses it inside one); the
    level in force is remembered per connection, so it is set only when it
    changes. Set on the driver's connection, as ``_on_connect`` sets the
    others: a save switches twice (its intent, then its commit), and a
    statement through the Connection costs several times the pragma."""
    record = conn.connection
    if record.info.get("synchronous", "FULL") != level:
        record.dbapi_connection.execute(f"PRAGMA synchronous={level}")
        record.info["synchronous"] = level


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
            index = _open(url, settings.cache_dir)
            _indexes[key] = index
        return index


def _open(url: str, cache_dir: Path) -> Index:
    """The index at ``url``, migrated; read only when its device is full."""
    index = Index(url)
    try:
        upgrade_if_needed(index, cache_dir)
        return index
    except IndexFullError as exc:
        index.dispose()
        path = sqlite_path(url)
        if path is None:
            raise
        if _wal_holds_commits(path):
            mount, free = device_full(path) or (None, None)
            raise full_error(path, mount, free, reads_work=False) from exc
        read_only = Index(url, full=exc)
        upgrade_if_needed(read_only, cache_dir)  # a check only: a schema to migrate fails with ``exc``
        log.warning("warning: %s: it is read only until there is space (commands that only read work)", exc.message)
        return read_only


def _wal_holds_commits(path: Path) -> bool:
    try:
        return os.stat(f"{path}-wal").st_size > 0
    except FileNotFoundError:
        return False


def reset_index_cache() -> None:
    """Forget cached engines (tests switch URLs and homes)."""
    with _lock:
        for index in _indexes.values():
            index.dispose()
        _indexes.clear()


def dialect_insert(session: Session | Connection):
    """``insert`` of the session's dialect, for ``on_conflict_do_nothing``
    (SQLite and PostgreSQL both have it). Imported here: the PostgreSQL
    dialect costs every command 50 ms otherwise."""
    if is_postgres(session):
        from sqlalchemy.dialects.postgresql import insert as postgres_insert

        return postgres_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


def _rollback(transaction) -> None:
    try:
        transaction.rollback()
    except DBAPIError:
        pass  # a lost connection rolled it back already; the original error is the one to show


def _translated(exc: DBAPIError, committing: bool, url: str) -> Exception:
    """The one-line error for a failed write, or ``exc`` itself."""
    explained = explain(exc, url)
    if explained is not None:
        return explained
    reason = conflict_reason(exc)
    if reason is not None:  # aborted by the server: nothing was kept, also when it happened at COMMIT
        return IndexConflictError(f"the index aborted a write for a {reason} with another writer",
                                  "run the command again")
    if exc.connection_invalidated and not committing:  # the server rolled it back
        return IndexConnectionError(f"the connection to the index was lost during a write ({_first_line(exc)})",
                                    "check that the database server is up, then run the command again")
    if exc.connection_invalidated:
        return IndexConnectionError(
            f"the connection to the index was lost while committing ({_first_line(exc)}): the change may or may "
            "not have been recorded", "look before running the command again", retryable=False)
    return exc


def _first_line(exc: DBAPIError) -> str:
    return str(exc.orig).splitlines()[0][:200] if exc.orig is not None else type(exc).__name__


def conflict_reason(exc: DBAPIError) -> str | None:
    """The retryable conflict behind a database error, or None."""
    orig = exc.orig
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return RETRYABLE.get(state) if state else None


def is_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` means the index's database server cannot be reached
    (down, restarting, the network): an outage, not a bug."""
    if isinstance(exc, (IndexConnectionError, DisconnectionError)):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        return isinstance(exc, (OperationalError, InterfaceError)) and not isinstance(exc.orig, sqlite3.Error)
    return False


def describe_index_error(exc: BaseException) -> str:
    """One line for an error of the index, without a driver's raw text for an outage."""
    if is_unreachable(exc):
        return "the index's database server cannot be reached (down or restarting)"
    if isinstance(exc, ArtifactfsError):
        return exc.message
    return f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}".rstrip(": ")

