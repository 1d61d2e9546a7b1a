"""The index's change clock: what every writing transaction bumps and what
readers (the mount) poll to learn, cheaply and without ever missing one,
that something changed.

No writer waits on another for it. Functions that change the index call
:func:`bump_generation`, which only marks the session; one statement runs
when the transaction commits (the ``before_commit`` hook installed by
``index.db``), after everything else, so it is the last thing a writer
touches:

* SQLite: ``UPDATE index_state SET generation = generation + 1`` (and the
  clock mark of ``index.clock`` moves to this writer's time). Writers
  are serialized by the database anyway, and the counter commits with the
  data, so a reader that sees it also sees the data.
* PostgreSQL: ``nextval('index_generation')``, which takes no row lock and
  does not wait (the single ``index_state`` row was a hot row that every
  write transaction held until COMMIT).

No ``NOTIFY``: PostgreSQL serializes the COMMIT of every notifying
transaction, WAL flush included, behind one cluster-wide lock (async.c,
``PreCommit_Notify``), which would put a hot spot back into every write.
Readers poll instead; a reading is two trivial statements.

A sequence is not transactional: it moves before its transaction commits.
So on PostgreSQL the reader's token is the sequence value *and* what the
snapshot of a later statement (``pg_current_snapshot()``) says had not
completed: the transactions in flight below its ``xmax``, and everything
from ``xmax`` on. A writer that bumped before the reader read the sequence
had its transaction id by then (the bump is its last statement), so it had
either committed before that snapshot (its data is visible to the reader's
next queries) or had not completed; the next reading sees it complete (an
in-flight id that left the list, or ``xmax`` moving past it) and reports a
change. A writer that bumps later moves the sequence. Transaction ids are
the cluster's, so a write elsewhere in the cluster may report a change
that is none (a spurious refresh, never a missed one). Readers must read
with READ COMMITTED (the default), where each statement takes a new
snapshot.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import event, select, text, update

from artifactfs.faults import fault_point
from artifactfs.index.clock import index_now
from artifactfs.index.statements import Statement
from artifactfs.index.sql import is_postgres
from artifactfs.index.tables import index_state as _STATE

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection
    from sqlalchemy.orm import Session

SEQUENCE = "index_generation"

# Core (``index.statements``), not ORM: every writing transaction runs one
# (an ORM UPDATE also evaluates its WHERE against the session's objects).
# SQLite: the same statement advances the index's clock mark (``index.clock``): free.
_SQLITE_BUMP = Statement(update(_STATE).where(_STATE.c.id == 1).values(generation=_STATE.c.generation + 1,
                                                                      clock_mark=index_now()))
_PG_BUMP = Statement(text(f"SELECT nextval('{SEQUENCE}')"))
_PG_COUNTER = text(f"SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM {SEQUENCE}")
_PG_SNAPSHOT = text("SELECT pg_current_snapshot()::text")
_MARK = "artifactfs_changed"


class Generation(int):
    """A reading of the change clock: an integer that grows with every
    change, plus (PostgreSQL) which transactions had not completed when it
    was read: ``in_flight`` ids below ``horizon``, and every id from
    ``horizon`` on. Compare readings with :meth:`moved_since`, not ``==``."""

    in_flight: frozenset[int]
    horizon: int

    def __new__(cls, counter: int, in_flight: frozenset[int] = frozenset(), horizon: int = 0) -> Generation:
        value = super().__new__(cls, counter)
        value.in_flight, value.horizon = in_flight, horizon
        return value

    def moved_since(self, earlier: Generation | int | None) -> bool:
        """Whether anything may have changed since ``earlier`` was read."""
        if earlier is None or int(self) != int(earlier):
            return True
        before = earlier if isinstance(earlier, Generation) else Generation(int(earlier))
        # A transaction not completed then and completed now may have committed a change.
        return bool(before.in_flight - self.in_flight) or self.horizon > before.horizon


def bump_generation(session: Session | Connection) -> None:
    """Tell pollers that this transaction changes something (the bump runs
    once, at commit: a session's ``before_commit`` hook, or
    :func:`bump_marked` on a Core connection)."""
    session.info[_MARK] = True


def bump_marked(connection: Connection) -> None:
    """A Core write transaction's last statement, before its commit: the
    bump, when a function marked the transaction (``Index.write_core``; a
    connection's ``info`` outlives the transaction, so :func:`forget_mark`
    after it either way)."""
    if connection.info.pop(_MARK, False):
        (_PG_BUMP if is_postgres(connection) else _SQLITE_BUMP).rows(connection)
        fault_point("generation_bumped")


def forget_mark(connection: Connection) -> None:
    """Drop the mark of a Core transaction that ended without its bump
    (rolled back). A connection lost meanwhile takes its mark along: the
    pool clears a connection's ``info`` when it connects again."""
    if not connection.invalidated:
        connection.info.pop(_MARK, None)


def get_generation(connection) -> Generation:
    """The change clock, read with a Session or a Core Connection; read it
    before the data it guards."""
    if is_postgres(connection):
        counter = connection.execute(_PG_COUNTER).scalar() or 0
        return _reading(counter, connection.execute(_PG_SNAPSHOT).scalar())
    return Generation(connection.execute(select(_STATE.c.generation).where(_STATE.c.id == 1)).scalar() or 0)


def _reading(counter: int, snapshot: str) -> Generation:
    """A reading from a ``pg_snapshot`` text, ``xmin:xmax:xip,...``."""
    _, xmax, listed = snapshot.split(":")
    return Generation(counter, frozenset(int(x) for x in listed.split(",") if x), int(xmax))


def install(sessionmaker_) -> None:
    """Run the bump of a marked session as its transaction's last statement."""

    @event.listens_for(sessionmaker_, "before_commit")
    def _bump(session: Session) -> None:
        if not session.info.pop(_MARK, False):
            return
        session.flush()  # the bump must follow every write (see the module docstring)
        (_PG_BUMP if is_postgres(session) else _SQLITE_BUMP).rows(session)
        fault_point("generation_bumped")

    @event.listens_for(sessionmaker_, "after_rollback")
    def _forget(session: Session) -> None:
        session.info.pop(_MARK, None)
