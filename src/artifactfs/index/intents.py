"""Write intents: the index's record of payload folders being written.

A save records its intent (store, folder relative to the store root, and
the version it will commit, numbered now) in a transaction of its own
before it writes a byte; the transaction that commits the version deletes
it. The folder is ``<name>/<uuid>`` (``stores.layout``): an intent names
the version uuid of a save in flight, or of one that crashed. The pruner never touches a folder with an
intent younger than the orphan floor, whatever flags it was given, and
ages intents by the index's clock (``index.clock``), so hosts with skewed
clocks agree. Its holder is this process (``index.holders``): while that
process runs on this machine, its intent is live whatever its age.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, delete, insert, select
from sqlalchemy.orm import Session

from artifactfs.index.artifacts import version_number_of
from artifactfs.index.clock import as_utc, database_now
from artifactfs.index.holders import this_process
from artifactfs.index.models import WriteIntent
from artifactfs.index.statements import Statement


def record_intent(session: Session, store_id: int, folder: str, holder: str | None = None) -> str:
    """Record that ``folder`` (relative to the store root) is about to be
    written by ``holder`` (default: this process, ``index.holders``);
    returns the intent's id. Commit before writing the payload."""
    return record_intents(session, store_id, [PlannedWrite(folder)], holder)[0][0]


@dataclass(frozen=True)
class PlannedWrite:
    """One payload folder about to be written (relative to the store root)
    and, for a new version, the number it will commit under."""

    folder: str
    artifact_id: int | None = None
    version: str | None = None


def record_intents(session: Session | Connection, store_id: int, writes: list[PlannedWrite],
                   holder: str | None = None) -> tuple[list[str], dt.datetime]:
    """Record the intents of several payload folders in one statement, held
    by ``holder`` (default: this process); returns their ids, in order, and
    when they started (the index's clock). Commit before writing the payloads."""
    if holder is None:
        holder = str(this_process())
    ids = [str(uuid.uuid4()) for _ in writes]
    started = [_RECORD.rows(session, {
        "uuid": intent_id, "store_id": store_id, "folder": write.folder.strip("/"), "holder": holder,
        "artifact_id": write.artifact_id, "version": write.version,
        "version_number": version_number_of(write.version) if write.version is not None else None,
    })[0][0] for intent_id, write in zip(ids, writes)]
    return ids, as_utc(min(started))


def clear_intent(session: Session, intent_id: str) -> None:
    """Forget an intent: in the commit's transaction, or after a failed save
    removed its folder."""
    clear_intents(session, [intent_id])


def clear_intents(session: Session, intent_ids: list[str]) -> None:
    """Forget several intents in one statement."""
    # One statement run for each id: a plain "=" compiles once, an IN list per length.
    _CLEAR.many(session, [{"intent": intent_id} for intent_id in intent_ids])


# Every save runs both: Core statements (``index.statements``). The intent's start is
# the column default, the index's clock, read back.
_RECORD = Statement(insert(WriteIntent.__table__).returning(WriteIntent.__table__.c.started_at))
_CLEAR = Statement(delete(WriteIntent.__table__).where(WriteIntent.__table__.c.uuid == bindparam("intent")))


def live_intent_folders(session: Session, store_id: int, younger_than: dt.timedelta) -> set[str]:
    """Folders of ``store_id`` whose intents are younger than ``younger_than``
    by the index's clock: payloads being written that no sweep may touch."""
    cutoff = database_now(session) - younger_than
    rows = session.scalars(
        select(WriteIntent.folder).where(WriteIntent.store_id == store_id, WriteIntent.started_at > cutoff)
    )
    return set(rows)


def stale_intents(session: Session, store_id: int, older_than: dt.timedelta) -> list[WriteIntent]:
    """Intents older than ``older_than``: their writers died; the pruner may
    remove their folders (as orphans) and then these rows."""
    cutoff = database_now(session) - older_than
    return list(session.scalars(
        select(WriteIntent).where(WriteIntent.store_id == store_id, WriteIntent.started_at <= cutoff)
    ))
