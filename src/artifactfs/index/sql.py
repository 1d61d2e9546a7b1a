"""Small pieces every query module of the index shares, each written once:
which database a session talks to, a long id list cut into ``IN (...)``
chunks, timestamps made aware (SQLite hands back naive ones), and the
filter "this version is live"."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, overload

from sqlalchemy import ColumnElement
from sqlalchemy.orm import Session

from artifactfs.enums import LIVE

#: Ids per ``IN (...)`` clause: well below SQLite's and PostgreSQL's limits.
CHUNK = 1000


def is_sqlite(connection: Any) -> bool:
    """Whether a Session or Core Connection talks to SQLite."""
    bind = connection.get_bind() if isinstance(connection, Session) else connection
    return bind.dialect.name == "sqlite"


def is_postgres(connection: Any) -> bool:
    """Whether a Session or Core Connection talks to PostgreSQL."""
    bind = connection.get_bind() if isinstance(connection, Session) else connection
    return bind.dialect.name == "postgresql"


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
    """The filter "the version is live" on ``version`` (the model, by default, or an alias of it)."""
    if version is None:
        from artifactfs.index.models import VersionRow as version  # models imports index.clock, which imports this

    return version.state == LIVE


__all__ = ["CHUNK", "chunks", "is_live", "is_postgres", "is_sqlite", "utc"]
