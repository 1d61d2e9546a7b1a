"""Small pieces every query module of the index shares, each written once:
which database a session talks to, a long id list cut into ``IN (...)``
chunks, timestamps made aware (SQLite hands back naive ones), and the
filter "this version is live"."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, overload

from sqlalchemy import ColumnElement
from sqlalchemy.engine import Connection, Engine

from artifactfs.enums import LIVE

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

#: Ids per ``IN (...)`` clause: well below SQLite's and PostgreSQL's limits.
CHUNK = 1000


def dialect_name(connection: Session | Connection | Engine) -> str:
    """The name of the database (``sqlite``, ``postgresql``) a Session, a Core
    Connection or an Engine talks to (told apart without importing the ORM:
    ``artifact list`` reads through a Core Connection alone)."""
    if isinstance(connection, (Connection, Engine)):
        return connection.dialect.name
    return connection.get_bind().dialect.name


def is_sqlite(connection: Session | Connection | Engine) -> bool:
    """Whether a Session or Core Connection talks to SQLite."""
    return dialect_name(connection) == "sqlite"


def is_postgres(connection: Session | Connection | Engine) -> bool:
    """Whether a Session or Core Connection talks to PostgreSQL."""
    return dialect_name(connection) == "postgresql"


def chunks(items: Iterable, size: int = CHUNK) -> Iterator[Sequence]:
    """``items`` in lists of at most ``size`` (for ``IN (...)`` clauses)."""
    items = items if isinstance(items, Sequence) else list(items)
    for start in range(0, len(items), size):
        yield items[start:start + size]


@overload
def utc(value: dt.datetime) -> dt.datetime: ...


@overload
def utc(value: None) -> None: ...


def utc(value: dt.datetime | None) -> dt.datetime | None:
    """An aware UTC datetime: SQLite hands back naive ones, and every timestamp of the index is UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value


def is_live(version: Any = None) -> ColumnElement[bool]:
    """The filter "the version is live" on ``version`` (the table, by default,
    or a model or an alias of either: anything with a ``state`` column)."""
    if version is None:
        from artifactfs.index.tables import artifact_version  # tables imports index.clock, which imports this

        return artifact_version.c.state == LIVE
    return version.state == LIVE


__all__ = ["CHUNK", "chunks", "dialect_name", "is_live", "is_postgres", "is_sqlite", "utc"]
