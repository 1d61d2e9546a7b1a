"""Pages and records for browsing the index (the web view and its JSON API):
pipelines, runs with their step runs, artifacts, versions with their files,
and search by name, tag and metadata.

Every list is one keyset page: at most ``limit`` rows after a cursor (a name
for lists in name order, an id for newest-first lists) and the cursor of the
next page, so the thousandth page costs what the first does (no OFFSET).
Details of a page's rows (step counts, tags, producers, ...) come in one
query per kind for the whole page. Only live versions are shown: condemned
ones have vanished for users.

Every function takes a ``Session``; the caller frames the read transaction.
Results are plain frozen records that serialize to JSON as they are.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Float, Select, String, case, cast, func, select, tuple_
from sqlalchemy.orm import Session

from artifactfs.index import artifacts, names, steplogs
from artifactfs.index.artifacts import like_escape
from artifactfs.index.newest import newest_rank
from artifactfs.index.models import (
    Artifact,
    ArtifactVersion,
    Metadata,
    Pipeline,
    PipelineRun,
    RunStatus,
    StepIO,
    StepLog,
    StepRun,
    Store,
    Tag,
    VersionFile,
    VersionTag,
)
from artifactfs.index.generation import get_generation
from artifactfs.index.liveness import CRASHED, crashed_among, shown_status
from artifactfs.index.pipelines import caching_on
from artifactfs.index.producers import producing_links
from artifactfs.enums import LIVE
from artifactfs.index.sql import is_live, is_postgres, utc

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


def seconds_between(start: dt.datetime | None, end: dt.datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((utc(end) - utc(start)).total_seconds(), 3)


def metadata_value(value: dict | None, kind: str) -> Any:
    """A stored metadata value as the user gave it (``{"v": ...}``; nan/inf kept as text)."""
    stored = (value or {}).get("v")
    return float(stored) if kind == "float" and isinstance(stored, str) else stored


# -- records ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    """One page of a list and the cursor of the next (``None``: last page)."""

    items: list
    next_cursor: str | None


@dataclass(frozen=True)
class VersionLink:
    """An artifact version as something to link to."""

    id: str
    artifact: str
    version: str
    data_type: str | None
    size: int


@dataclass(frozen=True)
class StepRef:
    id: str
    name: str
    status: str
    run: str
    run_id: str
    pipeline: str


@dataclass(frozen=True)
class StepIOItem:
    """A named input or output of a step run."""

    name: str
    version: VersionLink


@dataclass(frozen=True)
class PipelineItem:
    name: str
    runs: int
    last_run: str | None
    last_run_id: str | None
    last_status: str | None
    last_start: dt.datetime | None


@dataclass(frozen=True)
class RunItem:
    id: str
    name: str
    pipeline: str
    status: str
    start_time: dt.datetime
    end_time: dt.datetime | None
    duration_s: float | None
    steps: int
    cached_steps: int
    failed_steps: int
    error: str | None = None  # a failed run's first failed step, "<step>: <its error>"


@dataclass(frozen=True)
class StepDetail:
    id: str
    name: str
    status: str
    run: str
    run_id: str
    pipeline: str
    start_time: dt.datetime
    end_time: dt.datetime | None
    duration_s: float | None
    parameters: dict[str, Any]
    code_hash: str | None
    cache_key: str | None
    caching: bool  # whether caching was on (index.pipelines.caching_on)
    cached_from: StepRef | None
    inputs: list[StepIOItem]
    outputs: list[StepIOItem]
    metadata: dict[str, Any]


@dataclass(frozen=True)
class RunDetail:
    run: RunItem
    parameters: dict[str, Any]
    metadata: dict[str, Any]
    steps: list[StepDetail]


@dataclass(frozen=True)
class ArtifactItem:
    name: str
    versions: int
    newest_version: str | None
    newest_id: str | None
    updated_at: dt.datetime | None
    data_type: str | None


@dataclass(frozen=True)
class VersionItem:
    id: str
    artifact: str
    version: str
    created_at: dt.datetime
    size: int
    file_count: int
    store: str
    data_type: str | None
    materializer: str | None
    save_type: str
    tags: list[str]
    metadata: dict[str, Any]
    producer: StepRef | None
    consumers: int


@dataclass(frozen=True)
class Visualization:
    index: int
    kind: str


@dataclass(frozen=True)
class VersionDetail:
    version: VersionItem
    uri: str
    payload_kind: str
    content_hash: str | None
    hash_algorithm: str
    artifact_type: str
    visualizations: list[Visualization]
    consumers: list[StepRef]
    more_consumers: int  # consumers beyond those listed (the first MAX_LIMIT)


@dataclass(frozen=True)
class FileItem:
    path: str
    size: int
    mode: int
    digest: str | None


@dataclass(frozen=True)
class StoreItem:
    name: str
    flavor: str
    root_uri: str
    options: dict[str, Any]


@dataclass(frozen=True)
class Overview:
    pipelines: int
    runs: int
    artifacts: int
    versions: int
    generation: int


# -- paging ----------------------------------------------------------------------------------


def clamp(limit: int | None) -> int:
    return max(1, min(int(limit or DEFAULT_LIMIT), MAX_LIMIT))


def _cut(rows: Sequence, limit: int, cursor: Callable[[Any], Any]) -> tuple[list, str | None]:
    """The page's rows and the next cursor; the query asked for one row more."""
    rows = list(rows)
    if len(rows) <= limit:
        return rows, None
    return rows[:limit], str(cursor(rows[limit - 1]))


class BadCursor(ValueError):
    """A cursor no page of this list handed out (a newest-first list's is a row id)."""


def _id_cursor(text: str | None) -> int | None:
    """Newest-first lists continue below an id; anything else is refused
    (starting over would show page one as if it were the next)."""
    if not text:
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        raise BadCursor(f"{text[:40]!r} is not a cursor of this list: pass back a `next_cursor` as it was given")
    return int(text)


def _ids_in(column, ids: Iterable[int]):
    return column.in_(list(ids))


# -- overview and stores --------------------------------------------------------------------------


def overview(session: Session) -> Overview:
    count = func.count()
    return Overview(
        pipelines=session.scalar(select(count).select_from(Pipeline)) or 0,
        runs=session.scalar(select(count).select_from(PipelineRun)) or 0,
        artifacts=session.scalar(select(count).select_from(Artifact)) or 0,
        versions=session.scalar(select(count).select_from(ArtifactVersion).where(is_live())) or 0,
        generation=get_generation(session),
    )


def list_stores(session: Session, public_options: Callable[[str, dict], dict]) -> list[StoreItem]:
    """Every store; ``public_options(flavor, options)`` drops what must not be shown."""
    rows = session.execute(select(Store.name, Store.flavor, Store.root_uri, Store.options).order_by(Store.name))
    return [StoreItem(name, flavor, root, public_options(flavor, dict(options or {}))) for name, flavor, root, options
            in rows]


# -- pipelines and runs ---------------------------------------------------------------------------

_RUN_COLUMNS = (PipelineRun.id, PipelineRun.uuid, PipelineRun.name, Pipeline.name, PipelineRun.status,
                PipelineRun.start_time, PipelineRun.end_time)


def _runs() -> Select:
    return select(*_RUN_COLUMNS).join(Pipeline, Pipeline.id == PipelineRun.pipeline_id)


def list_pipelines(session: Session, after: str | None = None, limit: int | None = None) -> Page:
    """Pipelines in name order, with their run count and newest run."""
    limit = clamp(limit)
    query = select(Pipeline.id, Pipeline.name).order_by(Pipeline.name).limit(limit + 1)
    if after:
        query = query.where(Pipeline.name > after)
    rows, cursor = _cut(session.execute(query).all(), limit, lambda r: r[1])
    ids = [r[0] for r in rows]
    stats = {pid: (n, newest) for pid, n, newest in session.execute(
        select(PipelineRun.pipeline_id, func.count(), func.max(PipelineRun.id))
        .where(_ids_in(PipelineRun.pipeline_id, ids)).group_by(PipelineRun.pipeline_id))} if ids else {}
    newest = {r[0]: r for r in session.execute(
        _runs().where(_ids_in(PipelineRun.id, [s[1] for s in stats.values()])))} if stats else {}
    dead = _crashed(session, newest.values())
    items = []
    for pid, name in rows:
        runs, top = stats.get(pid, (0, None))
        last = newest.get(top)
        items.append(PipelineItem(name, runs, last and last[2], last and last[1],
                                  last and shown_status(last[4], last[0] in dead), utc(last[5]) if last else None))
    return Page(items, cursor)


def pipeline_id(session: Session, name: str) -> int | None:
    return session.scalar(select(Pipeline.id).where(Pipeline.name == name))


#: What a run list sorts by: each an expression and the run id after it,
#: so that keyset pages stay exact among equal values.
RUN_SORTS = ("started", "name", "pipeline", "status", "duration", "steps", "cached")


def _run_sort_key(session: Session, sort: str):
    if sort == "name":
        return PipelineRun.name
    if sort == "pipeline":
        return Pipeline.name
    if sort == "status":
        return PipelineRun.status
    if sort == "duration":  # still running: -1, below every finished run
        if is_postgres(session):
            seconds = cast(func.extract("epoch", PipelineRun.end_time - PipelineRun.start_time), Float)
        else:
            seconds = (func.julianday(PipelineRun.end_time) - func.julianday(PipelineRun.start_time)) * 86400.0
        return func.coalesce(seconds, -1.0)
    if sort == "steps":  # a count per run, answered from the (run_id, name) index alone
        return (select(func.count()).select_from(StepRun).where(StepRun.run_id == PipelineRun.id)
                .correlate(PipelineRun).scalar_subquery())
    return None  # cached: the status is not in that index; counted for every run at once (_cached_counts)


def _cached_counts():
    """Cached-step counts of the runs that have any, in one grouped pass
    (per run, each count would read every step row: 4x slower on 10,000 runs)."""
    return (select(StepRun.run_id.label("run_id"), func.count().label("cached"))
            .where(StepRun.status == "cached").group_by(StepRun.run_id).subquery())


def _value_cursor(sort: str, descending: bool, value: Any, row_id: int) -> str:
    raw = json.dumps([sort, descending, value, row_id], separators=(",", ":")).encode()
    return "k" + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _read_value_cursor(text: str, sort: str, descending: bool) -> tuple[Any, int]:
    try:
        raw = base64.urlsafe_b64decode(text[1:] + "=" * (-len(text[1:]) % 4))
        got_sort, got_descending, value, row_id = json.loads(raw)
    except (ValueError, TypeError):
        raise BadCursor(f"{text[:40]!r} is not a cursor of this list: pass back a `next_cursor` as it was given"
                        ) from None
    if (got_sort, got_descending) != (sort, descending) or not isinstance(row_id, int):
        raise BadCursor("this cursor belongs to another order of the list: start again from the first page")
    return value, row_id


def list_runs(session: Session, pipeline: int | None = None, before: str | None = None,
              limit: int | None = None, name_contains: str | None = None, *, pipeline_name: str | None = None,
              status: str | None = None, since: dt.datetime | None = None, until: dt.datetime | None = None,
              sort: str = "started", descending: bool = True) -> Page:
    """Runs newest first (of one pipeline when ``pipeline`` is its id, or
    ``pipeline_name``), filtered by ``status`` and start time (``since`` <=
    start < ``until``), or sorted by any of ``RUN_SORTS``."""
    limit = clamp(limit)
    if sort not in RUN_SORTS:
        raise BadCursor(f"cannot sort runs by {sort!r}: one of {', '.join(RUN_SORTS)}")
    query = _runs().limit(limit + 1)
    if pipeline is not None:
        query = query.where(PipelineRun.pipeline_id == pipeline)
    if pipeline_name is not None:
        query = query.where(Pipeline.name == pipeline_name)
    dead = None
    if status in (RunStatus.RUNNING.value, CRASHED):  # both stored as running: the process tells them apart
        dead = crashed_among(session)
        query = query.where(PipelineRun.status == RunStatus.RUNNING.value)
        if status == CRASHED:
            query = query.where(_ids_in(PipelineRun.id, dead))
        elif dead:
            query = query.where(PipelineRun.id.not_in(sorted(dead)))
    elif status is not None:
        query = query.where(PipelineRun.status == status)
    if since is not None:
        query = query.where(PipelineRun.start_time >= since)
    if until is not None:
        query = query.where(PipelineRun.start_time < until)
    if name_contains:
        query = query.where(_contains(PipelineRun.name, name_contains))
    if sort == "started":  # ids grow with start: the id is the key, and the cursor is an id
        query = query.order_by(PipelineRun.id.desc() if descending else PipelineRun.id.asc())
        if (edge := _id_cursor(before)) is not None:
            query = query.where(PipelineRun.id < edge if descending else PipelineRun.id > edge)
        rows, cursor = _cut(session.execute(query).all(), limit, lambda r: r[0])
        return Page(_run_items(session, rows, dead), cursor)
    key = _run_sort_key(session, sort)
    if key is None:
        counts = _cached_counts()
        query = query.outerjoin(counts, counts.c.run_id == PipelineRun.id)
        key = func.coalesce(counts.c.cached, 0)
    query = query.add_columns(key.label("sort_value"))
    query = query.order_by(*((key.desc(), PipelineRun.id.desc()) if descending else (key.asc(), PipelineRun.id.asc())))
    if before:
        value, edge = _read_value_cursor(before, sort, descending)
        # one row-value comparison (SQLite and PostgreSQL): the sort key is computed once per row, not twice
        after = tuple_(key, PipelineRun.id)
        query = query.where(after < tuple_(value, edge) if descending else after > tuple_(value, edge))
    rows, cursor = _cut(session.execute(query).all(), limit, lambda r: (r[-1], r[0]))
    if cursor is not None:
        value, edge = rows[-1][-1], rows[-1][0]
        cursor = _value_cursor(sort, descending, float(value) if sort == "duration" else value, edge)
    return Page(_run_items(session, [r[:-1] for r in rows], dead), cursor)


def _run_items(session: Session, rows: Sequence, dead: set[int] | None = None) -> list[RunItem]:
    """``dead``: the crashed runs, when the caller knows them."""
    counts: dict[int, tuple[int, int, int]] = {}
    errors: dict[int, str] = {}
    if rows:
        counts = {run_id: (n, cached or 0, failed or 0) for run_id, n, cached, failed in session.execute(
            select(StepRun.run_id, func.count(), func.sum(case((StepRun.status == "cached", 1), else_=0)),
                   func.sum(case((StepRun.status == "failed", 1), else_=0)))
            .where(_ids_in(StepRun.run_id, [r[0] for r in rows])).group_by(StepRun.run_id))}
        failed = [r[0] for r in rows if counts.get(r[0], (0, 0, 0))[2]]
        if failed:
            for run_id, step, value, kind in session.execute(
                select(StepRun.run_id, StepRun.name, Metadata.value, Metadata.type)
                .join(Metadata, Metadata.step_run_id == StepRun.id)
                .where(_ids_in(StepRun.run_id, failed), StepRun.status == "failed", Metadata.key == "error")
                .order_by(StepRun.id.desc())
            ):
                errors[run_id] = f"{step}: {metadata_value(value, kind)}"  # the first failed step wins (ordered last)
    dead = _crashed(session, rows) if dead is None else dead
    return [RunItem(uuid, name, pipeline, shown_status(status, pk in dead), utc(start), utc(end),
                    seconds_between(start, end),
                    *counts.get(pk, (0, 0, 0)), errors.get(pk))
            for pk, uuid, name, pipeline, status, start, end in rows]


def _crashed(session: Session, rows: Iterable) -> set[int]:
    """Of run rows (``_RUN_COLUMNS``), the ids of those marked running whose process is gone."""
    return crashed_among(session, [r[0] for r in rows if r[4] == RunStatus.RUNNING.value])


def _find_run_row(session: Session, run: str):
    """A run by uuid or by name."""
    return session.execute(_runs().where(PipelineRun.uuid == run)).first() or \
        session.execute(_runs().where(PipelineRun.name == run)).first()


def get_run(session: Session, run: str) -> RunDetail | None:
    """A run (by uuid or name) with every step run, its links and metadata."""
    row = _find_run_row(session, run)
    if row is None:
        return None
    parameters = session.scalar(select(PipelineRun.parameters).where(PipelineRun.id == row[0]))
    steps = session.execute(_steps().where(StepRun.run_id == row[0]).order_by(StepRun.id)).all()
    return RunDetail(_run_items(session, [row])[0], dict(parameters or {}), _metadata_of(session, run_id=row[0]),
                     _step_details(session, steps))


def previous_run(session: Session, run: str) -> str | None:
    """The uuid of the run of the same pipeline started before ``run`` (for "compare with the previous")."""
    row = _find_run_row(session, run)
    if row is None:
        return None
    return session.scalar(select(PipelineRun.uuid).where(
        PipelineRun.pipeline_id == select(PipelineRun.pipeline_id).where(PipelineRun.id == row[0]).scalar_subquery(),
        PipelineRun.id < row[0]).order_by(PipelineRun.id.desc()).limit(1))


def run_progress(session: Session, run: str) -> tuple[str, int, list[tuple[str, str]]] | None:
    """``(status, generation, [(step, status)])`` of a run: what a page
    showing a running run polls to learn that it should refresh."""
    row = _find_run_row(session, run)
    if row is None:
        return None
    steps = session.execute(select(StepRun.name, StepRun.status).where(StepRun.run_id == row[0]).order_by(StepRun.id))
    crashed = bool(_crashed(session, [row]))
    return (shown_status(row[4], crashed), get_generation(session),
            [(name, shown_status(status, crashed)) for name, status in steps])


# -- step runs ------------------------------------------------------------------------------------

_STEP_COLUMNS = (StepRun.id, StepRun.uuid, StepRun.name, StepRun.status, PipelineRun.name, PipelineRun.uuid,
                 Pipeline.name, StepRun.start_time, StepRun.end_time, StepRun.parameters, StepRun.code_hash,
                 StepRun.cache_key, StepRun.original_step_run_id, StepRun.run_id)


def _steps() -> Select:
    return (select(*_STEP_COLUMNS).join(PipelineRun, PipelineRun.id == StepRun.run_id)
            .join(Pipeline, Pipeline.id == PipelineRun.pipeline_id))


def _step_ref(row) -> StepRef:
    return StepRef(row[1], row[2], row[3], row[4], row[5], row[6])


def get_step(session: Session, step: str) -> StepDetail | None:
    """A step run by uuid."""
    row = session.execute(_steps().where(StepRun.uuid == step)).first()
    return _step_details(session, [row])[0] if row else None


_REF_COLUMNS = (ArtifactVersion.uuid, Artifact.name, ArtifactVersion.version, ArtifactVersion.data_type,
                ArtifactVersion.size)


def _step_details(session: Session, rows: Sequence) -> list[StepDetail]:
    """Step records with their inputs, outputs, metadata, cache origin and whether
    caching was on (five queries)."""
    ids = [r[0] for r in rows]
    links: dict[tuple[int, str], list[StepIOItem]] = {}
    metadata: dict[int, dict[str, Any]] = {i: {} for i in ids}
    originals: dict[int, StepRef] = {}
    if ids:
        for step_id, direction, name, *ref in session.execute(
            select(StepIO.step_run_id, StepIO.direction, StepIO.name, *_REF_COLUMNS)
            .join(ArtifactVersion, ArtifactVersion.id == StepIO.version_id)
            .join(Artifact, Artifact.id == ArtifactVersion.artifact_id)
            .where(_ids_in(StepIO.step_run_id, ids), _live_unindexed()).order_by(StepIO.id)
        ):
            links.setdefault((step_id, direction), []).append(StepIOItem(name, VersionLink(*ref)))
        for step_id, key, value, kind in session.execute(
            select(Metadata.step_run_id, Metadata.key, Metadata.value, Metadata.type)
            .where(_ids_in(Metadata.step_run_id, ids)).order_by(Metadata.id)
        ):
            metadata[step_id][key] = metadata_value(value, kind)
        wanted = {r[12] for r in rows if r[12] is not None}
        if wanted:
            originals = {r[0]: _step_ref(r) for r in session.execute(_steps().where(_ids_in(StepRun.id, wanted)))}
    dead = crashed_among(session, {r[13] for r in rows if r[3] == RunStatus.RUNNING.value})
    # each run's config once (a run of 1,000 steps has one config, not 1,000 copies)
    configs = dict(session.execute(select(PipelineRun.id, PipelineRun.config)
                                   .where(_ids_in(PipelineRun.id, {r[13] for r in rows}))).all()) if rows else {}
    return [
        StepDetail(
            id=r[1], name=r[2], status=shown_status(r[3], r[13] in dead), run=r[4], run_id=r[5], pipeline=r[6], start_time=utc(r[7]),
            end_time=utc(r[8]), duration_s=seconds_between(r[7], r[8]), parameters=dict(r[9] or {}),
            code_hash=r[10], cache_key=r[11], caching=caching_on(r[2], configs.get(r[13]), r[11]), cached_from=originals.get(r[12]),
            inputs=links.get((r[0], "input"), []), outputs=links.get((r[0], "output"), []), metadata=metadata[r[0]],
        )
        for r in rows
    ]


@dataclass(frozen=True)
class StepLogs:
    """What a step run wrote while it ran (``pipelines.logs``): the kept
    ``text``, the characters written (``total``) and cut from its middle
    (``cut``); ``total`` 0: it wrote nothing (or ran before logs were kept)."""

    step: str
    text: str
    total: int
    cut: int


def step_logs(session: Session, step: str) -> StepLogs | None:
    """The log of a step run by uuid; None: no such step run."""
    step_id = session.scalar(select(StepRun.id).where(StepRun.uuid == step))
    if step_id is None:
        return None
    found = steplogs.logs_of(session, [step_id]).get(step_id)
    return StepLogs(step, found.text, found.total, found.cut) if found else StepLogs(step, "", 0, 0)


def steps_with_logs(session: Session, run: str) -> set[str]:
    """The uuids of a run's step runs that have a log."""
    return set(session.scalars(select(StepRun.uuid).join(StepLog, StepLog.step_run_id == StepRun.id)
                               .join(PipelineRun, PipelineRun.id == StepRun.run_id).where(PipelineRun.uuid == run)))


def step_errors(session: Session, step_run_ids: list[int]) -> dict[int, str]:
    """Why step runs failed (their ``error`` metadata, "<type>: <message>"), by step run id."""
    if not step_run_ids:
        return {}
    rows = session.execute(select(Metadata.step_run_id, Metadata.value, Metadata.type)
                           .where(_ids_in(Metadata.step_run_id, step_run_ids), Metadata.key == "error"))
    return {step_id: str(metadata_value(value, kind)) for step_id, value, kind in rows}


def _metadata_of(session: Session, **owner: int) -> dict[str, Any]:
    (column, owner_id), = owner.items()
    rows = session.execute(select(Metadata.key, Metadata.value, Metadata.type)
                           .where(getattr(Metadata, column) == owner_id).order_by(Metadata.id))
    return {key: metadata_value(value, kind) for key, value, kind in rows}


# -- artifacts and versions ----------------------------------------------------------------------

_has_live = (
    select(ArtifactVersion.id)
    .where(ArtifactVersion.artifact_id == Artifact.id, is_live())
    .correlate(Artifact)
    .exists()
)


def _live_unindexed():
    """``state = 'live'`` written so that SQLite's planner (which has no
    statistics: the web view never runs ANALYZE, a write) does not drive
    a query from the state index, reading and sorting every live version,
    where walking the ids newest first and stopping after a page is cheap."""
    return (ArtifactVersion.state + "") == LIVE


def _contains(column, text: str):
    return column.ilike(f"%{like_escape(text)}%", escape="\\")


def list_artifacts(session: Session, after: str | None = None, limit: int | None = None,
                   name_contains: str | None = None) -> Page:
    """Artifacts with a live version, in name order, with their newest version."""
    limit = clamp(limit)
    query = select(Artifact.id, Artifact.name).where(_has_live).order_by(Artifact.name).limit(limit + 1)
    if after:
        query = query.where(Artifact.name > after)
    if name_contains:
        query = query.where(_contains(Artifact.name, name_contains))
    rows, cursor = _cut(session.execute(query).all(), limit, lambda r: r[1])
    stats = {}
    if rows:
        ids = [r[0] for r in rows]
        ranked = newest_rank(ids)  # the one order of "newest"
        tops = dict(session.execute(select(ranked.c.artifact_id, ranked.c.vid).where(ranked.c.rank == 1)).all())
        stats = {aid: (n, tops.get(aid)) for aid, n in session.execute(
            select(ArtifactVersion.artifact_id, func.count())
            .where(_ids_in(ArtifactVersion.artifact_id, ids), is_live())
            .group_by(ArtifactVersion.artifact_id))}
    newest = {}
    if stats:
        newest = {r[0]: r[1:] for r in session.execute(
            select(ArtifactVersion.id, ArtifactVersion.version, ArtifactVersion.uuid, ArtifactVersion.created_at,
                   ArtifactVersion.data_type).where(_ids_in(ArtifactVersion.id, [s[1] for s in stats.values()])))}
    items = []
    for aid, name in rows:
        count, top = stats.get(aid, (0, None))
        version, uuid, created, data_type = newest.get(top, (None, None, None, None))
        items.append(ArtifactItem(name, count, version, uuid, utc(created), data_type))
    return Page(items, cursor)


def artifact_id(session: Session, name: str) -> int | None:
    return session.scalar(select(Artifact.id).where(Artifact.name == name, _has_live))


_VERSION_COLUMNS = (ArtifactVersion.id, ArtifactVersion.uuid, Artifact.name, ArtifactVersion.version,
                    ArtifactVersion.created_at, ArtifactVersion.size, ArtifactVersion.file_count, Store.name,
                    ArtifactVersion.data_type, ArtifactVersion.materializer, ArtifactVersion.save_type)


def _versions(by_artifact: bool = False) -> Select:
    """Live versions; ``by_artifact``: the query names one artifact, and the
    (artifact, state, id) index serves it best."""
    return (select(*_VERSION_COLUMNS)
            .join(Artifact, Artifact.id == ArtifactVersion.artifact_id)
            .join(Store, Store.id == ArtifactVersion.store_id)
            .where(is_live() if by_artifact else _live_unindexed()))


def _version_page(session: Session, query: Select, before: str | None, limit: int | None,
                  key=ArtifactVersion.id) -> Page:
    """Newest first, below the cursor's id. ``key``: the column equal to the
    version id that the query's index walks in order (a join's column)."""
    limit = clamp(limit)
    query = query.order_by(key.desc()).limit(limit + 1)
    if (below := _id_cursor(before)) is not None:
        query = query.where(key < below)
    rows, cursor = _cut(session.execute(query).all(), limit, lambda r: r[0])
    return Page(_version_items(session, rows), cursor)


def list_versions(session: Session, artifact: int, before: str | None = None, limit: int | None = None) -> Page:
    """The live versions of one artifact (by id), newest first."""
    return _version_page(session, _versions(by_artifact=True).where(ArtifactVersion.artifact_id == artifact),
                         before, limit)


def _version_items(session: Session, rows: Sequence) -> list[VersionItem]:
    """Version records with tags, metadata, producer and consumer count (four queries)."""
    ids = [r[0] for r in rows]
    tags: dict[int, list[str]] = {i: [] for i in ids}
    metadata: dict[int, dict[str, Any]] = {i: {} for i in ids}
    producers: dict[int, StepRef] = {}
    consumers: dict[int, int] = {}
    if ids:
        for vid, tag in session.execute(select(VersionTag.version_id, Tag.name).join(Tag, Tag.id == VersionTag.tag_id)
                                        .where(_ids_in(VersionTag.version_id, ids)).order_by(Tag.name)):
            tags[vid].append(tag)
        for vid, key, value, kind in session.execute(
            select(Metadata.version_id, Metadata.key, Metadata.value, Metadata.type)
            .where(_ids_in(Metadata.version_id, ids)).order_by(Metadata.id)
        ):
            metadata[vid][key] = metadata_value(value, kind)
        for vid, *step in session.execute(
            select(StepIO.version_id, *_STEP_COLUMNS).join(StepRun, StepRun.id == StepIO.step_run_id)
            .join(PipelineRun, PipelineRun.id == StepRun.run_id).join(Pipeline, Pipeline.id == PipelineRun.pipeline_id)
            .where(StepIO.id.in_(producing_links(ids)))
        ):
            producers[vid] = _step_ref(step)
        consumers = dict(session.execute(
            select(StepIO.version_id, func.count()).where(_ids_in(StepIO.version_id, ids), StepIO.direction == "input")
            .group_by(StepIO.version_id)).all())
    return [
        VersionItem(uuid, artifact, version, utc(created), size, files, store, data_type, materializer, save_type,
                    tags[vid], metadata[vid], producers.get(vid), consumers.get(vid, 0))
        for vid, uuid, artifact, version, created, size, files, store, data_type, materializer, save_type in rows
    ]


def get_version(session: Session, version: str) -> VersionDetail | None:
    """A live version by uuid, with what its page shows besides the files."""
    row = session.execute(
        _versions().add_columns(ArtifactVersion.uri, ArtifactVersion.payload_kind, ArtifactVersion.content_hash,
                                ArtifactVersion.hash_algorithm, ArtifactVersion.artifact_type,
                                ArtifactVersion.visualizations).where(ArtifactVersion.uuid == version)
    ).first()
    if row is None:
        return None
    width = len(_VERSION_COLUMNS)
    uri, payload_kind, content_hash, algorithm, artifact_type, visualizations = row[width:]
    consumers = [_step_ref(r[1:]) for r in session.execute(
        select(StepIO.version_id, *_STEP_COLUMNS).join(StepRun, StepRun.id == StepIO.step_run_id)
        .join(PipelineRun, PipelineRun.id == StepRun.run_id).join(Pipeline, Pipeline.id == PipelineRun.pipeline_id)
        .where(StepIO.version_id == row[0], StepIO.direction == "input").order_by(StepIO.id).limit(MAX_LIMIT))]
    shown = [Visualization(i, str(v.get("kind", ""))) for i, v in enumerate(visualizations or [])]
    item = _version_items(session, [row[:width]])[0]
    return VersionDetail(item, uri, payload_kind, content_hash, algorithm, artifact_type, shown, consumers,
                         max(0, item.consumers - len(consumers)))


def previous_version(session: Session, version: str) -> str | None:
    """The uuid of the live version of the same artifact saved before ``version``."""
    row = session.execute(select(ArtifactVersion.id, ArtifactVersion.artifact_id)
                          .where(ArtifactVersion.uuid == version)).first()
    if row is None:
        return None
    return session.scalar(select(ArtifactVersion.uuid).where(
        ArtifactVersion.artifact_id == row[1], is_live(), ArtifactVersion.id < row[0])
        .order_by(ArtifactVersion.id.desc()).limit(1))


def get_version_by_name(session: Session, artifact: str, version: str) -> str | None:
    """The uuid of a live version named ``artifact`` / ``version``; ``latest``
    is the newest, as in the mount (``artifacts.newest_version`` decides)."""
    if version == names.LATEST:
        newest = artifacts.newest_version(session, artifact)
        return newest.uuid if newest is not None else None
    return session.scalar(select(ArtifactVersion.uuid).join(Artifact, Artifact.id == ArtifactVersion.artifact_id)
                          .where(Artifact.name == artifact, ArtifactVersion.version == version,
                                 is_live()))


def version_uuid(session: Session, version: str) -> str:
    """The uuid of the live version that ``version`` names: its id, or what
    the CLI and ``Client`` accept besides (``artifacts.find_version``: an
    unambiguous id prefix, or an artifact name for its newest version).

    Raises:
        NotFoundError: nothing, or more than one version, matches.
    """
    if session.scalar(select(ArtifactVersion.id).where(ArtifactVersion.uuid == version,
                                                       is_live())) is not None:
        return version
    return artifacts.find_version(session, version).uuid


def version_payload(session: Session, version: str) -> tuple[int, str, str, int, list] | None:
    """``(row id, uri, payload kind, store id, visualizations)`` of a live version."""
    row = session.execute(
        select(ArtifactVersion.id, ArtifactVersion.uri, ArtifactVersion.payload_kind, ArtifactVersion.store_id,
               ArtifactVersion.visualizations).where(ArtifactVersion.uuid == version, is_live())
    ).first()
    return tuple(row) if row else None


# -- files ----------------------------------------------------------------------------------------

_FILE_COLUMNS = (VersionFile.path, VersionFile.size, VersionFile.mode, VersionFile.digest)


def list_files(session: Session, version_id: int, after: str | None = None, limit: int | None = None) -> Page:
    """A version's manifest in path order."""
    limit = clamp(limit)
    query = select(*_FILE_COLUMNS).where(VersionFile.version_id == version_id).order_by(VersionFile.path)
    if after:
        query = query.where(VersionFile.path > after)
    rows, cursor = _cut(session.execute(query.limit(limit + 1)).all(), limit, lambda r: r[0])
    return Page([FileItem(*r) for r in rows], cursor)


def find_file(session: Session, version_id: int, path: str) -> FileItem | None:
    """The manifest row of ``path`` exactly (the only files a reader may name)."""
    row = session.execute(select(*_FILE_COLUMNS).where(VersionFile.version_id == version_id,
                                                       VersionFile.path == path)).first()
    return FileItem(*row) if row else None


# -- search ---------------------------------------------------------------------------------------


def versions_tagged(session: Session, tag: str, before: str | None = None, limit: int | None = None) -> Page:
    """Live versions carrying ``tag``, newest first."""
    query = (_versions().join(VersionTag, VersionTag.version_id == ArtifactVersion.id)
             .join(Tag, Tag.id == VersionTag.tag_id).where(Tag.name == tag))
    return _version_page(session, query, before, limit, key=VersionTag.version_id)


def tags_like(session: Session, text: str, limit: int = 20) -> list[str]:
    return list(session.scalars(select(Tag.name).where(_contains(Tag.name, text)).order_by(Tag.name).limit(limit)))


#: Metadata rows of one key that a search page compares at most: a value
#: no version holds would otherwise be looked for in every row of a key
#: that every version has. A page may hold fewer matches than asked for;
#: its cursor then continues below what was compared.
SCAN_WINDOW = 10_000


def versions_with_metadata(session: Session, key: str, value: str | None = None, before: str | None = None,
                           limit: int | None = None) -> Page:
    """Live versions whose metadata ``key`` is present (``value`` None) or
    equals ``value``, read as JSON when it parses (``3``, ``0.5``, ``true``,
    ``null``) and as text otherwise; newest first."""
    below = _id_cursor(before)
    window = select(Metadata.version_id).where(Metadata.key == key, Metadata.version_id.is_not(None))
    if below is not None:
        window = window.where(Metadata.version_id < below)
    window = window.order_by(Metadata.version_id.desc()).limit(SCAN_WINDOW).subquery()
    floor, scanned = session.execute(select(func.min(window.c.version_id), func.count()).select_from(window)).one()
    if not scanned:
        return Page([], None)
    query = (_versions().join(Metadata, Metadata.version_id == ArtifactVersion.id)
             .where(Metadata.key == key, Metadata.version_id >= floor))
    if value is not None:
        query = query.where(_metadata_equals(value))
    page = _version_page(session, query, before, limit, key=Metadata.version_id)
    if page.next_cursor is None and scanned == SCAN_WINDOW:
        return Page(page.items, str(floor))  # more rows of the key lie below the window
    return page


def _metadata_equals(text: str):
    """The same comparison on SQLite (``json_extract``) and PostgreSQL (``->>``)."""
    try:
        wanted = json.loads(text)
    except ValueError:
        wanted = text
    if wanted is None:
        return Metadata.type == "null"
    as_text = cast(Metadata.value["v"].as_string(), String)
    if isinstance(wanted, bool):  # SQLite extracts true as 1, PostgreSQL as 'true'
        return (Metadata.type == "bool") & as_text.in_(("true", "1") if wanted else ("false", "0"))
    if isinstance(wanted, (int, float)):
        number = case((Metadata.type.in_(("int", "float")), Metadata.value["v"].as_float()))
        return number == float(wanted)
    if isinstance(wanted, str):
        return (Metadata.type == "str") & (as_text == wanted)
    return Metadata.type == ("dict" if isinstance(wanted, dict) else "list")


def recent_versions(session: Session, limit: int | None = None) -> Page:
    """The newest live versions of every artifact."""
    return _version_page(session, _versions(), None, limit)
