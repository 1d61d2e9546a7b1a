"""Write intents: the index's record of payload folders being written.

A save records its intent (store, folder relative to the store root) in a
transaction of its own before it writes a byte; the transaction that
commits the version deletes it. The pruner never touches a folder with an
intent younger than the orphan floor, whatever flags it was given, and
ages intents by the index's clock (``index.clock``), so hosts with skewed
clocks agree. Its holder is this process (``index.holders``): while that
process runs on this machine, its intent is live whatever its age.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import bindparam, delete, insert, select
from sqlalchemy.orm import Session

from artifactfs.index.clock import database_now
from artifactfs.index.holders import this_process
from artifactfs.index.models import WriteIntent


def record_intent(session: Session, store_id: int, folder: str, holder: str | None = None) -> str:
    """Record that ``folder`` (relative to the store root) is about to be
    written by ``holder`` (default: this process, ``index.holders``);
    returns the intent's id. Commit before writing the payload."""
    if holder is None:
        holder = str(this_process())
    intent_id = str(uuid.uuid4())
    session.execute(_RECORD, {"uuid": intent_id, "store_id": store_id, "folder": folder.strip("/"), "holder": holder})
    return intent_id


def clear_intent(session: Session, intent_id: str) -> None:
    """Forget an intent: in the commit's transaction, or after a failed save
    removed its folder."""
    session.execute(_CLEAR, {"intent": intent_id})


# Built once: every save runs both.
_RECORD = insert(WriteIntent.__table__)
_CLEAR = delete(WriteIntent.__table__).where(WriteIntent.__table__.c.uuid == bindparam("intent"))


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
