"""Pipelines, runs and step runs in the index, and the links between step
runs and versions. Every function takes a ``Session``; the caller frames
the transaction.

Linking is where the pruner and a run could race: a link succeeds only on a
version that is ``live``, checked under a row lock in the linking
transaction, so the pruner (which condemns under the same lock) and a run
can never both win. Links take SHARE locks, in version id order: runs that
read the same version do not queue behind each other, and the pruner's
``FOR UPDATE SKIP LOCKED`` passes over a version being linked.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from artifactfs.enums import LIVE
from artifactfs.faults import fault_point
from artifactfs.errors import ArtifactfsError, NotFoundError
from artifactfs.index.db import dialect_insert
from artifactfs.index.models import (
    Artifact,
    ArtifactVersion,
    Pipeline,
    PipelineRun,
    RunStatus,
    StepIO,
    StepRun,
)
from artifactfs.index.clock import index_now
from artifactfs.index.generation import bump_generation
from artifactfs.index.holders import this_process
from artifactfs.index import steplogs
from artifactfs.index.producers import producing_link


class VersionNotLiveError(ArtifactfsError):
    """A version was condemned by the pruner before it could be linked."""


def caching_on(step: str, run_config: dict[str, Any] | None, cache_key: str | None) -> bool:
    """Whether caching was on for step run ``step``: the one rule the API and
    the web view read. A run lists its steps with caching off
    (``steps_without_cache`` in its config); a step run keeps its cache key
    either way, so a later cached run can reuse it. Runs recorded before the
    list was kept gave a key only to steps with caching on."""
    listed = (run_config or {}).get("steps_without_cache")
    if listed is None:
        return cache_key is not None
    return step not in listed


def get_or_create_pipeline(session: Session, name: str) -> Pipeline:
    query = select(Pipeline).where(Pipeline.name == name)
    pipeline = session.scalars(query).first()  # the common case: one statement
    if pipeline is None:
        session.execute(dialect_insert(session)(Pipeline).values(name=name, created_at=index_now())
                        .on_conflict_do_nothing(index_elements=["name"]))
        pipeline = session.scalars(query).one()
    return pipeline


def create_run(session: Session, pipeline_name: str, run_name: str, parameters: dict[str, Any],
               config: dict[str, Any] | None = None) -> PipelineRun:
    """A running run, held by this process (``index.liveness`` tells when
    that process is gone); ``config`` is what it was configured with besides
    its parameters."""
    pipeline = get_or_create_pipeline(session, pipeline_name)
    run = PipelineRun(pipeline_id=pipeline.id, name=run_name, parameters=parameters, config=config,
                      status=RunStatus.RUNNING.value, holder=str(this_process()), heartbeat_at=index_now())
    session.add(run)
    session.flush()
    bump_generation(session)
    return run


def create_step_run(
    session: Session, run_id: int, name: str, code_hash: str, cache_key: str | None, parameters: dict[str, Any],
    original_step_run_id: int | None = None, status: RunStatus = RunStatus.RUNNING,
) -> StepRun:
    """A step run; ``status`` CACHED (with the original it reuses) records it finished at once."""
    now = index_now()  # one statement, one reading: a cached step ends when it starts
    step = StepRun(run_id=run_id, name=name, code_hash=code_hash, cache_key=cache_key, parameters=parameters,
                   status=status.value, original_step_run_id=original_step_run_id, start_time=now,
                   end_time=None if status == RunStatus.RUNNING else now)
    session.add(step)
    session.flush()
    bump_generation(session)
    return step


def finish(session: Session, row: PipelineRun | StepRun, status: RunStatus) -> None:
    row.status = status.value
    row.end_time = index_now()
    bump_generation(session)


def finish_by_id(session: Session, model: type[PipelineRun] | type[StepRun], row_id: int, status: RunStatus) -> None:
    """:func:`finish` in one UPDATE, without loading the row first."""
    session.execute(update(model).where(model.id == row_id).values(status=status.value, end_time=index_now()))
    bump_generation(session)


def _not_live(label: str) -> VersionNotLiveError:
    return VersionNotLiveError(
        f"artifact version {label} was removed by the pruner and cannot be used",
        "save or re-run the step that produces it",
    )


def lock_live_versions(session: Session, version_ids: Iterable[int]) -> None:
    """Share-lock the versions until commit, in id order (the lock order:
    after artifact rows, before tags), and check with a fresh read that
    every one is live; else VersionNotLiveError."""
    ids = sorted(set(version_ids))
    if not ids:
        return
    found = dict(session.execute(
        select(ArtifactVersion.id, ArtifactVersion.state).where(ArtifactVersion.id.in_(ids))
        .order_by(ArtifactVersion.id).with_for_update(read=True, of=ArtifactVersion)
    ).all())
    for version_id in ids:
        if found.get(version_id) != LIVE:
            raise _not_live(_label(session, version_id))


def _label(session: Session, version_id: int) -> str:
    row = session.execute(
        select(Artifact.name, ArtifactVersion.version).join(ArtifactVersion.artifact)
        .where(ArtifactVersion.id == version_id)
    ).first()
    return f"{row[0]}:{row[1]}" if row is not None else f"#{version_id}"


@dataclass(frozen=True)
class Link:
    """A step run read (``input``) or wrote (``output``) a version under a name."""

    version_id: int
    direction: str
    name: str


def link_all(session: Session, step_run_id: int, links: Iterable[Link], fresh: Iterable[int] = ()) -> None:
    """Record links of one step run (idempotent per direction, name and
    version: several versions may share a name, as ZenML's output lists do).
    Versions in ``fresh`` were inserted by this very transaction: live, and
    seen by no one else yet, so they need no lock."""
    links = list(links)
    if not links:
        return
    fresh = set(fresh)
    lock_live_versions(session, [l.version_id for l in links if l.version_id not in fresh])
    fault_point("link_checked")
    session.execute(
        dialect_insert(session)(StepIO).on_conflict_do_nothing(
            index_elements=["step_run_id", "direction", "name", "version_id"]),
        [{"step_run_id": step_run_id, "version_id": l.version_id, "direction": l.direction, "name": l.name}
         for l in links],
    )
    bump_generation(session)


def link(session: Session, step_run_id: int, version_id: int, direction: str, name: str) -> None:
    """Record that a step run read or wrote a version (idempotent per name and version)."""
    link_all(session, step_run_id, [Link(version_id, direction, name)])


def find_cached_step(session: Session, cache_key: str) -> StepRun | None:
    """The newest completed step run with this key whose outputs are all live."""
    candidates = session.scalars(
        select(StepRun)
        .where(StepRun.cache_key == cache_key, StepRun.status == RunStatus.COMPLETED.value)
        .order_by(StepRun.id.desc())
        .limit(5)
        # PostgreSQL: FOR KEY SHARE, so a concurrent delete_run cannot remove the
        # step run this one is about to name as its original (an FK error or a deadlock).
        .with_for_update(read=True, key_share=True, of=StepRun)
    )
    for candidate in candidates:
        outputs = step_links(session, candidate.id, "output")
        states = {v.state for _, v in outputs}
        if outputs and states == {LIVE}:
            return candidate
    return None


def links_of_steps(session: Session, step_run_ids: list[int]) -> dict[tuple[int, str], dict[str, list[ArtifactVersion]]]:
    """Every link of several step runs in one query: ``(step run id,
    direction) -> {name: [versions, in the order they were linked]}``."""
    found: dict[tuple[int, str], dict[str, list[ArtifactVersion]]] = {}
    if not step_run_ids:
        return found
    rows = session.execute(
        select(StepIO.step_run_id, StepIO.direction, StepIO.name, ArtifactVersion)
        .join(ArtifactVersion, ArtifactVersion.id == StepIO.version_id)
        .where(StepIO.step_run_id.in_(step_run_ids))
        .order_by(StepIO.id)
    ).all()
    for step_run_id, direction, name, version in rows:
        found.setdefault((step_run_id, direction), {}).setdefault(name, []).append(version)
    return found


def step_links(session: Session, step_run_id: int, direction: str) -> list[tuple[str, ArtifactVersion]]:
    """``(name, version)`` of every link of one step run in one direction,
    in the order they were made (a name may come several times)."""
    rows = session.execute(
        select(StepIO.name, ArtifactVersion)
        .join(ArtifactVersion, ArtifactVersion.id == StepIO.version_id)
        .where(StepIO.step_run_id == step_run_id, StepIO.direction == direction)
        .order_by(StepIO.id)
    ).all()
    return [(name, version) for name, version in rows]


def run_outputs(session: Session, run_id: int) -> list[int]:
    """Ids of every version the run's step runs output (cached ones included)."""
    return list(session.scalars(
        select(StepIO.version_id).distinct().join(StepRun, StepRun.id == StepIO.step_run_id)
        .where(StepRun.run_id == run_id, StepIO.direction == "output")
    ))


# -- queries ----------------------------------------------------------------------------------


def find_run(session: Session, name_or_id: str) -> PipelineRun:
    run = session.scalars(select(PipelineRun).where(PipelineRun.name == name_or_id)).first()
    if run is None and len(name_or_id) >= 4:
        matches = list(session.scalars(select(PipelineRun).where(PipelineRun.uuid.like(name_or_id + "%")).limit(3)))
        if len(matches) > 1:
            raise NotFoundError(f"run id prefix {name_or_id!r} is ambiguous", "give more characters of the id")
        run = matches[0] if matches else None
    if run is None:
        known = session.scalars(select(PipelineRun.name).order_by(PipelineRun.id.desc()).limit(10_000))
        raise NotFoundError(f"no pipeline run named {name_or_id!r}", "list runs with `artifactfs run list`",
                            name=name_or_id, known=known)
    return run


def check_pipeline(session: Session, name: str) -> None:
    """Raise NotFoundError (with the closest name) unless a pipeline ``name`` has run."""
    if session.scalar(select(Pipeline.id).where(Pipeline.name == name)) is None:
        known = session.scalars(select(Pipeline.name).order_by(Pipeline.name))
        raise NotFoundError(f"no pipeline named {name!r}", "list pipelines with `artifactfs pipeline list`",
                            name=name, known=known)


def list_runs(session: Session, pipeline: str | None = None, limit: int | None = None,
              status: str | None = None) -> list[PipelineRun]:
    """Runs, newest first; ``status``: with that stored status only (a crashed
    run is stored as running: ``index.liveness`` tells it on read)."""
    query = select(PipelineRun).join(Pipeline)
    if pipeline is not None:
        check_pipeline(session, pipeline)
        query = query.where(Pipeline.name == pipeline)
    if status is not None:
        query = query.where(PipelineRun.status == status)
    query = query.order_by(PipelineRun.id.desc())
    return list(session.scalars(query.limit(limit) if limit else query))


def list_pipelines(session: Session) -> list[tuple[Pipeline, int, dt.datetime | None]]:
    rows = session.execute(
        select(Pipeline, func.count(PipelineRun.id), func.max(PipelineRun.start_time))
        .outerjoin(PipelineRun, PipelineRun.pipeline_id == Pipeline.id)
        .group_by(Pipeline.id)
        .order_by(Pipeline.name)
    ).all()
    return [(p, n, last) for p, n, last in rows]


def steps_of(session: Session, run_id: int) -> list[StepRun]:
    return list(session.scalars(select(StepRun).where(StepRun.run_id == run_id).order_by(StepRun.id)))


def delete_run(session: Session, run: PipelineRun) -> None:
    """Remove a run, its step runs and their links; the versions stay for the pruner."""
    step_ids = select(StepRun.id).where(StepRun.run_id == run.id)
    session.execute(update(StepRun).where(StepRun.original_step_run_id.in_(step_ids)).values(original_step_run_id=None))
    session.execute(delete(StepIO).where(StepIO.step_run_id.in_(step_ids)))
    steplogs.forget(session, step_ids)
    session.execute(delete(StepRun).where(StepRun.run_id == run.id))
    session.delete(run)
    bump_generation(session)


def producer_of(session: Session, version_id: int) -> StepRun | None:
    """The step run that produced the version (``index.producers``), or None."""
    return session.scalars(
        select(StepRun).join(StepIO, StepIO.step_run_id == StepRun.id).where(StepIO.id == producing_link(version_id))
    ).first()


def consumers_of(session: Session, version_id: int) -> list[StepRun]:
    return list(session.scalars(
        select(StepRun).join(StepIO, StepIO.step_run_id == StepRun.id)
        .where(StepIO.version_id == version_id, StepIO.direction == "input")
        .order_by(StepRun.id)
    ))
