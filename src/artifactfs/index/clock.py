"""The index's clock: the one owner of the time that every age, grace,
expiry and lease is measured on.

* PostgreSQL: the server's ``now()``. Every time an age is computed from is
  written by the server (:class:`index_now` as the column default of
  versions' ``created_at``, runs' ``start_time``, intents' ``started_at``,
  ``condemned_at``; lease expiry from :func:`database_now`), and every age is
  the server's ``now()`` minus such a time. No host clock enters.
* SQLite: only host clocks exist, and any of them can jump. The index keeps
  a high-water mark, ``index_state.clock_mark``: the latest time any writer
  has seen, advanced by the statement every writing transaction already runs
  at commit (the generation bump), so it costs nothing. A time written is the
  later of the writer's clock and the mark (a writer whose clock jumped back
  never writes a time that looks old), and a prune pass checks its clock
  against the mark first (:func:`pass_now`): ahead of it by more than the
  pass's tolerance (its smallest grace) or behind it, the pass prunes nothing
  and says why (:class:`ClockJumpError`).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Union, overload

from sqlalchemy import DateTime, select, text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from artifactfs.errors import ArtifactfsError
from artifactfs.index.sql import is_sqlite, utc

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

#: How far a SQLite pass's clock may run behind the mark (clocks of one host
#: agree; this covers an NTP step), and ahead of it at least, whatever the grace.
CLOCK_SLACK = dt.timedelta(seconds=60)

# The host clock inside SQLite, in SQLAlchemy's storage format (microseconds,
# so text comparison is time comparison).
_SQLITE_HOST = "strftime('%Y-%m-%d %H:%M:%f000', 'now')"
_SQLITE_MARK = "(SELECT clock_mark FROM index_state WHERE id = 1)"


class index_now(FunctionElement):  # noqa: N801 - reads as a SQL function
    """The index's clock inside a statement: ``now()`` on PostgreSQL; on
    SQLite the later of this host's clock and the index's high-water mark."""

    type = DateTime(timezone=True)
    inherit_cache = True
    name = "index_now"


#: A time to compare with: a value, or the index's clock read by the statement itself.
When = Union[dt.datetime, index_now]


@compiles(index_now)
def _default(element, compiler, **kw) -> str:
    return "CURRENT_TIMESTAMP"


@compiles(index_now, "postgresql")
def _postgres(element, compiler, **kw) -> str:
    return "now()"


@compiles(index_now, "sqlite")
def _sqlite(element, compiler, **kw) -> str:
    return f"max({_SQLITE_HOST}, coalesce({_SQLITE_MARK}, ''))"


@overload
def as_utc(value: None) -> None: ...


@overload
def as_utc(value: dt.datetime | str) -> dt.datetime: ...


def as_utc(value: dt.datetime | str | None) -> dt.datetime | None:
    """A time the index answered (a datetime, or SQLite's text), as aware UTC."""
    if value is None:
        return None
    if isinstance(value, str):  # SQLite answers text, in UTC
        value = dt.datetime.fromisoformat(value)
    return utc(value)


def database_now(session: Session) -> dt.datetime:
    """The index's clock (timezone-aware UTC): PostgreSQL's ``now()``; on
    SQLite the later of this host's clock and the index's mark."""
    return as_utc(session.scalar(select(index_now())))


def clock_mark(session: Session) -> dt.datetime | None:
    """SQLite: the latest time any writer of this index has seen (None: not yet known)."""
    return as_utc(session.scalar(text("SELECT clock_mark FROM index_state WHERE id = 1")))


def advance_mark(session: Session, to: dt.datetime | None = None) -> None:
    """SQLite: move the mark to this host's clock if that is later (or, with
    ``to``, set it: a clock a user vouched for). PostgreSQL: nothing to do."""
    if not is_sqlite(session):
        return
    if to is None:
        session.execute(text(f"UPDATE index_state SET clock_mark = {_sqlite(None, None)} WHERE id = 1"))
    else:
        session.execute(text("UPDATE index_state SET clock_mark = :to WHERE id = 1"),
                        {"to": to.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")})


class ClockJumpError(ArtifactfsError):
    """A SQLite pass's clock disagrees with the index's mark: it prunes nothing."""


def _span(delta: dt.timedelta) -> str:
    seconds = int(abs(delta.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else "", f"{minutes}m" if minutes and not days else "",
             f"{seconds}s" if not (days or hours) else ""]
    return "".join(parts) or "0s"


def _stamp(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


def pass_now(session: Session, tolerance: dt.timedelta, trust_host: bool = False) -> dt.datetime:
    """The time a prune pass measures ages on. PostgreSQL: the server's
    ``now()``. SQLite: this host's clock, checked against the index's mark:
    raises :class:`ClockJumpError` when it runs ahead of the mark by more
    than ``tolerance`` (never less than :data:`CLOCK_SLACK`) or behind it by
    more than the slack. ``trust_host``: a user checked this host's clock;
    it is taken as the index's time (the caller records it as the mark)."""
    if not is_sqlite(session):
        return database_now(session)
    mark = clock_mark(session)
    host = dt.datetime.now(dt.timezone.utc)
    if trust_host or mark is None:
        return host
    limit = max(tolerance, CLOCK_SLACK)
    if host - mark > limit:
        raise ClockJumpError(
            f"refusing to prune: this host's clock ({_stamp(host)}) is {_span(host - mark)} ahead of the latest time "
            f"a writer of this index saw ({_stamp(mark)}), more than this pass's grace ({_span(limit)}) allows; "
            "a clock that jumped ahead makes fresh data look old, so nothing was pruned",
            "check this host's clock (`date`); if it is right and nothing was written to the index for that long, "
            "run `artifactfs gc --trust-clock` once",
        )
    if mark - host > CLOCK_SLACK:
        raise ClockJumpError(
            f"refusing to prune: this host's clock ({_stamp(host)}) is {_span(mark - host)} behind the latest time "
            f"a writer of this index saw ({_stamp(mark)}); this clock or a writer's jumped, so nothing was pruned",
            "fix this host's clock (NTP); if it is right and a writer's clock ran ahead, "
            "run `artifactfs gc --trust-clock` once",
        )
    return max(host, mark)


__all__ = ["CLOCK_SLACK", "ClockJumpError", "advance_mark", "as_utc", "clock_mark", "database_now", "index_now",
           "is_sqlite", "pass_now"]
