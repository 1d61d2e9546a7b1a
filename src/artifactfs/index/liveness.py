"""Whether a run marked running still runs: the one owner of "crashed".

A run records the process running it (``pipeline_run.holder``, in the one
holder format of ``index.holders``) and, while it runs, a heartbeat on the
index's clock (``pipeline_run.heartbeat_at``, written by
``pipelines.heartbeat``). A run still marked running is *crashed* when its
process is gone:

* on this machine: its pid no longer runs, or now belongs to a process that
  started later (``holders.known_dead``), whatever any clock says;
* on another machine: no heartbeat for :data:`HEARTBEAT_STALE`, measured on
  the index's clock (``index.clock``), never this host's.

"Crashed" is computed when a run is read, never written: a viewer (the web
view is read only) and the command line agree on it without a write, and a
run whose process turns out alive is never marked dead for good. Runs
recorded before the holder was (migration 0011) cannot be told and stay
"running".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from artifactfs.enums import RunStatus
from artifactfs.index.clock import as_utc, database_now, index_now
from artifactfs.index.holders import parse_holder, still_runs
from artifactfs.index.models import PipelineRun
from artifactfs.settings import machine_id

#: The status shown for a run (and its running steps) whose process is gone.
#: Never stored: ``pipeline_run.status`` keeps saying "running".
CRASHED = RunStatus.CRASHED.value
#: How often a running run's process writes its heartbeat.
HEARTBEAT_EVERY = dt.timedelta(seconds=30)
#: A run of another machine without a heartbeat for this long is crashed
#: (ten missed beats: a busy machine or a slow index is not a crash).
HEARTBEAT_STALE = dt.timedelta(minutes=5)


def is_crashed(holder: str | None, heartbeat_at: dt.datetime | None, now: dt.datetime | None,
               machine: str | None = None) -> bool:
    """Whether a run marked running, held by ``holder`` with its last
    heartbeat at ``heartbeat_at``, has lost its process (``now``: the
    index's clock, needed only for a holder of another machine; ``machine``:
    this machine's id, when the caller read it already)."""
    found = parse_holder(holder)
    if found is None:
        return False  # recorded before runs named their process: cannot tell
    if found.machine == (machine or machine_id()):
        return not still_runs(found)
    if now is None:
        return False
    beat = as_utc(heartbeat_at)
    return beat is None or now - beat > HEARTBEAT_STALE


def crashed_among(session: Session, run_ids: Iterable[int] | None = None,
                  started_before: dt.datetime | None = None) -> set[int]:
    """Of the runs marked running (all of them, or those of ``run_ids``; only
    those started before ``started_before`` when given), the ids of those
    whose process is gone. One query; the index's clock is read only when a
    run of another machine is among them."""
    query = select(PipelineRun.id, PipelineRun.holder, PipelineRun.heartbeat_at).where(
        PipelineRun.status == RunStatus.RUNNING.value)
    if started_before is not None:
        query = query.where(PipelineRun.start_time < started_before)
    if run_ids is not None:
        ids = sorted(set(run_ids))
        if not ids:
            return set()
        query = query.where(PipelineRun.id.in_(ids))
    rows = session.execute(query).all()
    if not rows:
        return set()
    machine = machine_id()
    now = None
    if any((h := parse_holder(holder)) is not None and h.machine != machine for _, holder, _ in rows):
        now = database_now(session)
    verdicts: dict[tuple, bool] = {}  # runs of one process share it
    for _, holder, beat in rows:
        if (holder, beat) not in verdicts:
            verdicts[holder, beat] = is_crashed(holder, beat, now, machine)
    return {run_id for run_id, holder, beat in rows if verdicts[holder, beat]}


def shown_status(status: str, crashed: bool) -> str:
    """The status users see: a running run (or step of it) whose process is gone is crashed."""
    return CRASHED if crashed and status == RunStatus.RUNNING.value else status


def beat(session: Session, run_id: int) -> None:
    """Say that run ``run_id`` still runs (the index's clock; no generation
    bump: nothing a reader caches changed)."""
    session.execute(update(PipelineRun).where(PipelineRun.id == run_id, PipelineRun.status == RunStatus.RUNNING.value)
                    .values(heartbeat_at=index_now()))


__all__ = ["CRASHED", "HEARTBEAT_EVERY", "HEARTBEAT_STALE", "beat", "crashed_among", "is_crashed", "shown_status"]
