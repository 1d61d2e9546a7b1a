"""The statements every save runs, built once with SQLAlchemy Core at import
(:class:`Statement`) and run on the transaction's connection.

Why not the ORM: a small save inserts its intent, its version, its files and
metadata and bumps the generation; as ORM objects each flush computes a unit
of work, as Core statements SQLAlchemy compiles each once (its compiled
cache) and only binds the values. Run through the public ``Connection.execute``,
so Core's events, type conversions and error translation apply as anywhere
else (an earlier try ran them on the DBAPI cursor to spare Core's
per-statement machinery, about 0.6 ms of a save's 2.9 ms of CPU here; it
re-implemented SQLAlchemy's execution, which this project does not do).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.sql.expression import ClauseElement


class Statement:
    """A Core statement, run in a session's transaction or on a Core
    ``Connection``: :meth:`rows` (one execution, its rows) or :meth:`many`
    (one execution per parameter set, nothing returned)."""

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement

    def rows(self, session, values: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Run once with ``values``; the rows it returns (RETURNING or SELECT)."""
        result = _connection(session).execute(self.statement, values or {})  # type: ignore[call-overload]
        return [tuple(row) for row in result] if result.returns_rows else []

    def many(self, session, values: list[dict[str, Any]]) -> None:
        """Run once per parameter set (every set with the same keys)."""
        if values:
            _connection(session).execute(self.statement, values)  # type: ignore[call-overload]


def _connection(session) -> Connection:
    """A Core connection as it is, or the connection of a session's transaction
    (not ``Session.execute``: its ORM-enabled path costs more for a Core statement)."""
    return session if isinstance(session, Connection) else session.connection()
