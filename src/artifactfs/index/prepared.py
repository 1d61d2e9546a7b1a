"""The statements every save runs, compiled once per dialect and run on the
transaction's DBAPI cursor (:class:`Prepared`).

Why: SQLAlchemy's execution of a Core statement, even one whose compiled
form is cached, builds an execution context, a result object and runs its
event hooks: about 40-80 µs of CPU a statement on the project's machine,
against 2-5 µs for the DBAPI call itself. A small save runs about ten
statements in two transactions, so that machinery was a third of a save's
CPU (issue 20 item 2, measured with ``bench/save_load.py``).

What stays SQLAlchemy's: the statement is built with Core and compiled by
the dialect in use (the SQL text is the one Core would send), every
parameter goes through its column type's own bind processor and every
RETURNING value through its result processor, and a DBAPI error comes out
as SQLAlchemy's ``DBAPIError`` (a lost connection invalidated), so
``index.db`` explains and retries it as any other. Only the per-execution
machinery is skipped, so Core's ``before_cursor_execute`` events do not see
these statements. "Prepared" on the client only: the driver gets plain
SQL text, never a server-side prepared statement (``index.db``: PgBouncer
in transaction mode). A statement whose compiled form would need SQLAlchemy at
execution time is refused when it is first compiled, with its reason: a
Python-side column default to compute, an expanding ``IN`` list.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.engine import Connection
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement


class _Compiled:
    """One statement compiled for one dialect and one set of parameter keys."""

    def __init__(self, statement: ClauseElement, dialect: Any, keys: tuple[str, ...]) -> None:
        compiled = cast(SQLCompiler, statement.compile(dialect=dialect, column_keys=list(keys)))
        self.sql = compiled.string
        prefetch = [c.key for c in getattr(compiled, "insert_prefetch", ())] + \
                   [c.key for c in getattr(compiled, "update_prefetch", ())]
        if prefetch or "POSTCOMPILE" in self.sql:
            raise ValueError(f"{self.sql.split()[0]} statement cannot be prepared: "
                             + (f"pass {', '.join(prefetch)} (a Python-side default)" if prefetch
                                else "an expanding IN list is rendered per call"))
        names = (compiled.positiontup or []) if compiled.positional else list(compiled.binds)
        binds = []
        for name in names:
            bind = compiled.binds[name]
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            binds.append((name, bind.key, bind.value, processor))
        self.positional = compiled.positional
        self.binds = tuple(binds)
        columns = getattr(statement, "exported_columns", ())
        self.results = tuple(c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns)

    def parameters(self, values: dict[str, Any]) -> Sequence[Any] | dict[str, Any]:
        """The DBAPI parameters for ``values`` (by key; absent: the bind's own value)."""
        out = []
        for _, key, default, processor in self.binds:
            value = values[key] if key in values else default
            out.append(processor(value) if processor is not None and value is not None else value)
        if self.positional:
            return out
        return {name: value for (name, *_), value in zip(self.binds, out)}

    def row(self, raw: Sequence[Any]) -> tuple[Any, ...]:
        if not self.results:  # a text() statement: its values as the driver gives them
            return tuple(raw)
        return tuple(value if processor is None or value is None else processor(value)
                     for processor, value in zip(self.results, raw))


class Prepared:
    """A Core statement run on the DBAPI cursor of a session's transaction
    (see the module docstring). Build it once, at import; run it with
    :meth:`rows` (one execution, its RETURNING or SELECT rows) or
    :meth:`many` (one execution per parameter set, nothing returned)."""

    #: Executions by every prepared statement in this process, as Core's
    #: ``before_cursor_execute`` would count them (benches add it to theirs).
    executions = 0

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._compiled: dict[tuple[str, str, tuple[str, ...]], _Compiled] = {}

    def _for(self, connection, keys: tuple[str, ...]) -> _Compiled:
        dialect = connection.dialect
        cache_key = (dialect.name, dialect.driver, keys)
        compiled = self._compiled.get(cache_key)
        if compiled is None:
            compiled = self._compiled[cache_key] = _Compiled(self.statement, dialect, keys)
        return compiled

    def rows(self, session, values: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Run once with ``values``, in ``session``'s transaction (or on a Core
        ``Connection``); the rows it returns (RETURNING or SELECT), converted."""
        values = values or {}
        connection = session if isinstance(session, Connection) else session.connection()
        compiled = self._for(connection, tuple(values))
        parameters = compiled.parameters(values)
        cursor = connection.connection.cursor()
        Prepared.executions += 1
        try:
            cursor.execute(compiled.sql, parameters)
            fetched = cursor.fetchall() if cursor.description is not None else []
        except connection.dialect.loaded_dbapi.Error as exc:
            raise _wrapped(connection, cursor, compiled.sql, parameters, exc) from exc
        finally:
            cursor.close()
        return [compiled.row(raw) for raw in fetched]

    def many(self, session, values: list[dict[str, Any]]) -> None:
        """Run once per parameter set (every set with the same keys), as :meth:`rows`."""
        if not values:
            return
        connection = session if isinstance(session, Connection) else session.connection()
        compiled = self._for(connection, tuple(values[0]))
        parameters: Any = [compiled.parameters(v) for v in values]
        cursor = connection.connection.cursor()
        Prepared.executions += 1
        try:
            cursor.executemany(compiled.sql, parameters)
        except connection.dialect.loaded_dbapi.Error as exc:
            raise _wrapped(connection, cursor, compiled.sql, parameters, exc) from exc
        finally:
            cursor.close()


def _wrapped(connection, cursor, sql: str, parameters: Any, exc: Exception) -> StatementError:
    """The DBAPI error as SQLAlchemy would raise it; a connection the dialect
    says is lost is invalidated (the pool drops it), as Core does."""
    dialect = connection.dialect
    lost = bool(dialect.is_disconnect(exc, connection.connection.dbapi_connection, cursor))
    if lost:
        connection.invalidate(exc)
    return DBAPIError.instance(sql, parameters, exc, dialect.loaded_dbapi.Error,
                               connection_invalidated=lost, dialect=dialect)
