"""Step logs in the index (``step_log``, migration 0011): one row per step
run that wrote anything, holding what ``pipelines.logs`` kept of it.
Every function takes a ``Session``; the caller frames the transaction."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from artifactfs.index.models import StepLog

#: Characters a step's log keeps at most (1 MiB of ASCII): the first
#: :data:`STEP_LOG_HEAD` and the last ``STEP_LOG_LIMIT - STEP_LOG_HEAD``.
STEP_LOG_LIMIT = 1 << 20
STEP_LOG_HEAD = STEP_LOG_LIMIT // 4


@dataclass(frozen=True)
class StepLogText:
    """A step run's log: the kept ``text``, the characters written in all
    (``total``) and those cut from the middle (``cut``; 0: all kept)."""

    text: str
    total: int
    cut: int


def save(session: Session, step_run_id: int, text: str, total: int, cut: int) -> None:
    """Store (or replace) the log of one step run."""
    session.execute(delete(StepLog).where(StepLog.step_run_id == step_run_id))
    session.add(StepLog(step_run_id=step_run_id, text=text, total_chars=total, cut_chars=cut))


def logs_of(session: Session, step_run_ids: Iterable[int]) -> dict[int, StepLogText]:
    """The logs of several step runs in one query (a step that wrote nothing has none)."""
    ids = list(step_run_ids)
    if not ids:
        return {}
    rows = session.execute(select(StepLog.step_run_id, StepLog.text, StepLog.total_chars, StepLog.cut_chars)
                           .where(StepLog.step_run_id.in_(ids)))
    return {step_id: StepLogText(text, total, cut) for step_id, text, total, cut in rows}


def forget(session: Session, step_run_ids) -> None:
    """Remove the logs of these step runs (an id list or a select of ids)."""
    session.execute(delete(StepLog).where(StepLog.step_run_id.in_(step_run_ids)))


__all__ = ["STEP_LOG_HEAD", "STEP_LOG_LIMIT", "StepLogText", "forget", "logs_of", "save"]
