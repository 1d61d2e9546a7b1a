"""The pruner's queries and state changes in the index: which versions and
runs are unreferenced, condemning them under row locks with every condition
re-checked, marking payloads swept, forgetting rows, the lease row, and the
questions ``fsck`` asks. Every function takes a ``Session``; the caller
(``artifactfs.gc``) frames the transactions.

The one rule everything here serves: a version is condemned only inside the
transaction that holds its row lock, by a statement issued after the lock,
so a concurrent ``pipelines.link`` either committed first (and its
``step_io`` row is seen) or waits for the lock and then finds the version
not live.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import and_, delete, exists, func, or_, select, update
from sqlalchemy.orm import Session

from artifactfs.index.models import (
    Artifact,
    GcLease,
    GcScan,
    Pipeline,
    PipelineRun,
    RunStatus,
    SaveType,
    StepIO,
    StepRun,
    Store,
    Tag,
    VersionFile,
    VersionRow,
    VersionState,
    VersionTag,
)
from artifactfs.errors import ArtifactfsError
from artifactfs.index.artifacts import overlapping_uri
from artifactfs.index.newest import newest_rank
from artifactfs.index.clock import When, database_now
from artifactfs.index.pipelines import check_pipeline, delete_run
from artifactfs.index.generation import bump_generation
from artifactfs.index.liveness import crashed_among, shown_status
from artifactfs.enums import CONDEMNED, LIVE
from artifactfs.index.sql import CHUNK, chunks, is_live, is_postgres, utc
from artifactfs.stores.layout import registered_in_place


PRUNER_LEASE = "pruner"


# -- versions as the pruner sees them -------------------------------------------------


@dataclass(frozen=True, slots=True)
class VersionRef:
    """One version row, flat and detached: what the plan lists."""

    id: int
    uuid: str
    name: str
    version: str
    store_id: int
    uri: str
    payload_kind: str
    size: int
    file_count: int
    save_type: str
    state: str
    condemned_at: dt.datetime | None
    swept_at: dt.datetime | None
    has_viz: bool = False  # the row lists visualizations (in ``layout.viz_folder(uri)``)
    hash_algorithm: str = "sha256"  # of the manifest digests

    @property
    def label(self) -> str:
        return f"{self.name}:{self.version}"

    @property
    def in_place(self) -> bool:
        """Registered in place: the payload is a user's file or folder, not a
        folder of the store's payload layout (``stores.layout``)."""
        return registered_in_place(self.uri, self.uuid, self.payload_kind)


_REF_COLUMNS = (
    VersionRow.id, VersionRow.uuid, Artifact.name, VersionRow.version, VersionRow.store_id, VersionRow.uri,
    VersionRow.payload_kind, VersionRow.size, VersionRow.file_count, VersionRow.save_type, VersionRow.state,
    VersionRow.condemned_at, VersionRow.swept_at, VersionRow.visualizations, VersionRow.hash_algorithm,
)


def _refs(session: Session, query) -> list[VersionRef]:
    """Streamed in batches and with the repetitive strings shared: a plan may
    hold a hundred thousand of these."""
    intern = sys.intern
    return [
        VersionRef(i, uuid, intern(name), version, store_id, uri, intern(kind), size, files, intern(save_type),
                   intern(state), utc(condemned_at), utc(swept_at), bool(viz), intern(algorithm))
        for (i, uuid, name, version, store_id, uri, kind, size, files, save_type, state, condemned_at, swept_at, viz,
             algorithm) in session.execute(query.execution_options(yield_per=2000))
    ]


def _ref_query():
    return select(*_REF_COLUMNS).join(Artifact, Artifact.id == VersionRow.artifact_id)


# -- the candidate rule -------------------------------------------------------------------


def _unreferenced(ignored_runs=()):
    """No step run links the version, as input or output (runs being dropped
    in the same pass, a list of ids or a select of them, do not count)."""
    links = select(StepIO.id).where(StepIO.version_id == VersionRow.id)
    empty = ignored_runs is None or (isinstance(ignored_runs, (list, tuple)) and not ignored_runs)
    if not empty:
        links = links.join(StepRun, StepRun.id == StepIO.step_run_id).where(StepRun.run_id.not_in(ignored_runs))
    return ~exists(links)


def _unprotected(keep_tags: Iterable[str]):
    names = sorted(set(keep_tags))
    if not names:
        return None
    return ~exists(
        select(VersionTag.version_id)
        .join(Tag, Tag.id == VersionTag.tag_id)
        .where(VersionTag.version_id == VersionRow.id, Tag.name.in_(names))
    )


def _candidates(
    cutoff: When,
    keep_tags: Iterable[str],
    keep_latest: int,
    ignored_runs=(),
    artifact_ids: Sequence[int] | None = None,
):
    query = _ref_query().where(is_live(VersionRow), VersionRow.created_at < cutoff, _unreferenced(ignored_runs))
    unprotected = _unprotected(keep_tags)
    if unprotected is not None:
        query = query.where(unprotected)
    if keep_latest > 0:
        ranked = newest_rank(artifact_ids)  # the one order of "newest"
        query = query.join(ranked, ranked.c.vid == VersionRow.id).where(ranked.c.rank > keep_latest)
    return query


def candidate_versions(
    session: Session,
    cutoff: When,
    keep_tags: Iterable[str],
    keep_latest: int,
    ignored_runs=(),
) -> list[VersionRef]:
    """Live versions that no step run links, not tagged with a protected tag,
    not among the newest ``keep_latest`` of their name, created before ``cutoff``.
    Links from ``ignored_runs`` (ids, or a select of ids: see :func:`old_run_ids`) do not count."""
    return _refs(session, _candidates(cutoff, keep_tags, keep_latest, ignored_runs).order_by(VersionRow.id))


def condemned_versions(session: Session) -> list[VersionRef]:
    return _refs(session, _ref_query().where(VersionRow.state == CONDEMNED).order_by(VersionRow.id))


def lost_versions(session: Session) -> list[tuple[VersionRef, str]]:
    """Versions lost with a store removed by ``store remove --force``, with
    the name that store had (fsck lists them)."""
    refs = _refs(session, _ref_query().where(VersionRow.state == VersionState.LOST.value).order_by(VersionRow.id))
    stores = dict(session.execute(select(Store.id, Store.name).where(Store.id.in_({r.store_id for r in refs}))).all())
    return [(ref, stores.get(ref.store_id, f"#{ref.store_id}").rsplit("~", 1)[0]) for ref in refs]


def condemn(
    session: Session,
    ids: Sequence[int],
    cutoff: dt.datetime,
    keep_tags: Iterable[str],
    keep_latest: int,
    now: dt.datetime,
) -> tuple[list[int], list[int]]:
    """Move the versions of ``ids`` that still qualify from live to condemned.

    Call inside ONE write transaction. Order matters on PostgreSQL: the
    generation row is taken first (every writer bumps it, so taking it last
    could close a wait cycle with a run that holds it and waits for one of
    our version rows); then the version rows are locked ``FOR UPDATE SKIP
    LOCKED`` (a row some transaction holds is being linked right now: never a
    candidate, and we never wait on it); then a NEW statement re-checks every
    condition, so under READ COMMITTED it sees any link committed before the
    lock. A link that comes later waits for our lock and then finds the row
    condemned. On SQLite the IMMEDIATE transaction is already exclusive.

    Returns ``(condemned ids, ids that no longer qualify)``.
    """
    if not ids:
        return [], []
    bump_generation(session)
    condemned: list[int] = []
    for chunk in chunks(sorted(ids)):
        lock = select(VersionRow.id).where(VersionRow.id.in_(chunk), is_live(VersionRow)).order_by(VersionRow.id)
        if is_postgres(session):
            lock = lock.with_for_update(skip_locked=True)
        locked = list(session.scalars(lock))
        if not locked:
            continue
        artifact_ids = list(session.scalars(select(VersionRow.artifact_id).where(VersionRow.id.in_(locked)).distinct()))
        recheck = _candidates(cutoff, keep_tags, keep_latest, artifact_ids=artifact_ids).where(VersionRow.id.in_(locked))
        still = [ref.id for ref in _refs(session, recheck)]
        if still:
            session.execute(
                update(VersionRow).where(VersionRow.id.in_(still), is_live(VersionRow)).values(state=CONDEMNED, condemned_at=now)
            )
            condemned.extend(still)
    done = set(condemned)
    return condemned, [i for i in ids if i not in done]


class VersionInUseError(ArtifactfsError):
    """An explicit delete of a version that a step run read or wrote."""


def condemn_requested(session: Session, ids: Sequence[int], now: dt.datetime) -> list[int]:
    """Condemn the live versions of ``ids`` because a user asked (no grace,
    no keep rules), refusing, before changing anything, any that a step run
    links: lineage would lose an input or output. Same order of locks as
    :func:`condemn`. Returns the ids condemned (ids already condemned are
    skipped)."""
    if not ids:
        return []
    bump_generation(session)
    lock = select(VersionRow.id).where(VersionRow.id.in_(list(ids)), is_live(VersionRow)).order_by(VersionRow.id)
    if is_postgres(session):
        lock = lock.with_for_update()
    locked = list(session.scalars(lock))
    linked = session.execute(
        select(Artifact.name, VersionRow.version, StepIO.direction, StepRun.name, PipelineRun.name)
        .join(VersionRow, VersionRow.artifact_id == Artifact.id).join(StepIO, StepIO.version_id == VersionRow.id)
        .join(StepRun, StepRun.id == StepIO.step_run_id).join(PipelineRun, PipelineRun.id == StepRun.run_id)
        .where(VersionRow.id.in_(locked)).limit(1)
    ).first()
    if linked is not None:
        name, version, direction, step, run = linked
        used = "read" if direction == "input" else "produced"
        raise VersionInUseError(
            f"artifact version {name}:{version} cannot be deleted: step {step!r} of run {run!r} {used} it",
            f"delete that run first (Client().delete_pipeline_run({run!r}) or `artifactfs run delete {run}`)",
        )
    if locked:
        session.execute(update(VersionRow).where(VersionRow.id.in_(locked), is_live(VersionRow)).values(state=CONDEMNED, condemned_at=now))
    return locked


def sweepable(session: Session, ids: Sequence[int], cutoff: When) -> list[VersionRef]:
    """Of ``ids``, the versions condemned at or before ``cutoff`` whose payload is not yet swept."""
    return _refs(
        session,
        _ref_query().where(
            VersionRow.id.in_(ids), VersionRow.state == CONDEMNED,
            VersionRow.swept_at.is_(None), VersionRow.condemned_at <= cutoff
        ).order_by(VersionRow.id),
    )


def mark_swept(session: Session, ids: Sequence[int], now: When) -> None:
    for chunk in chunks(list(ids)):
        session.execute(
            update(VersionRow).where(VersionRow.id.in_(chunk), VersionRow.state == CONDEMNED, VersionRow.swept_at.is_(None)).values(swept_at=now)
        )


def forget(session: Session, ids: Sequence[int], require_swept: bool = True) -> list[int]:
    """Delete condemned version rows (manifest, tags and metadata cascade).
    A row some step run links is never deleted (the link's foreign key would
    refuse anyway)."""
    gone: list[int] = []
    for chunk in chunks(sorted(ids)):
        where = [VersionRow.id.in_(chunk), VersionRow.state == CONDEMNED, ~exists(select(StepIO.id).where(StepIO.version_id == VersionRow.id))]
        if require_swept:
            where.append(VersionRow.swept_at.is_not(None))
        doomed = list(session.scalars(select(VersionRow.id).where(*where)))
        if doomed:
            session.execute(delete(VersionRow).where(VersionRow.id.in_(doomed)))
            gone.extend(doomed)
    return gone


def live_owner_uris(session: Session) -> tuple[int, list[str]]:
    """``(highest version id, uris of live registered versions)``: the only
    rows whose payload can overlap another version's (layout payloads are
    ``<root>/<name>/<uuid>`` and cannot nest). The id is a watermark for
    :func:`live_owner_uris_since`."""
    top = session.scalar(select(func.max(VersionRow.id))) or 0
    uris = session.scalars(
        select(VersionRow.uri).where(is_live(VersionRow), VersionRow.save_type == SaveType.REGISTERED.value, VersionRow.id <= top)
    )
    return top, list(uris)


def live_owner_uris_since(session: Session, watermark: int) -> tuple[int, list[str]]:
    """Live registered uris of rows inserted after ``watermark`` (by primary key)."""
    top = session.scalar(select(func.max(VersionRow.id))) or 0
    uris = session.scalars(
        select(VersionRow.uri).where(VersionRow.id > watermark, VersionRow.id <= top, is_live(VersionRow), VersionRow.save_type == SaveType.REGISTERED.value)
    )
    return top, list(uris)


def named_uuids(session: Session, uuids: Sequence[str]) -> set[str]:
    """Which of ``uuids`` are versions (any state)."""
    found: set[str] = set()
    for chunk in chunks(list(uuids)):
        found.update(session.scalars(select(VersionRow.uuid).where(VersionRow.uuid.in_(chunk))))
    return found


def uri_named(session: Session, uri: str, uuid: str | None = None) -> str | None:
    """The label of a version (any state) whose uuid is ``uuid`` or whose
    payload is ``uri``, lies inside it, or contains it; None when no row names it."""
    condition = overlapping_uri(uri) if uuid is None else or_(overlapping_uri(uri), VersionRow.uuid == uuid)
    row = session.execute(
        select(Artifact.name, VersionRow.version).join(Artifact, Artifact.id == VersionRow.artifact_id).where(condition).limit(1)
    ).first()
    return f"{row[0]}:{row[1]}" if row else None


def store_rows(session: Session) -> list[Store]:
    """The stores in use (not those removed with their versions marked lost)."""
    return list(session.scalars(select(Store).where(Store.removed_at.is_(None)).order_by(Store.id)))


# -- runs -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunRef:
    id: int
    name: str
    pipeline: str
    status: str
    start_time: dt.datetime


def _old_runs(cutoff: dt.datetime, keep_last: int, pipeline: str | None, crashed: Collection[int] = ()):
    """Runs started before ``cutoff`` that ended (finished, or ``crashed``:
    marked running but their process is gone, ``index.liveness``), except the
    newest ``keep_last`` of each pipeline. A run whose process may still run
    is never among them: it may yet link what it saves."""
    ranked = select(
        PipelineRun.id.label("rid"),
        func.row_number().over(partition_by=PipelineRun.pipeline_id, order_by=PipelineRun.id.desc()).label("rank"),
    ).subquery()
    ended = PipelineRun.status != RunStatus.RUNNING.value
    if crashed:
        ended = or_(ended, PipelineRun.id.in_(sorted(crashed)))
    query = (
        select(PipelineRun.id, PipelineRun.name, Pipeline.name, PipelineRun.status, PipelineRun.start_time)
        .join(Pipeline, Pipeline.id == PipelineRun.pipeline_id)
        .join(ranked, ranked.c.rid == PipelineRun.id)
        .where(PipelineRun.start_time < cutoff, ended, ranked.c.rank > keep_last)
    )
    if pipeline is not None:
        query = query.where(Pipeline.name == pipeline)
    return query.order_by(PipelineRun.id)


def old_run_ids(cutoff: dt.datetime, keep_last: int = 0, pipeline: str | None = None, crashed: Collection[int] = ()):
    """The ids of :func:`runs_to_prune`, as a select to use inside another
    query (``crashed``: ``crashed_among(session, started_before=cutoff)``, read in the same session)."""
    return select(_old_runs(cutoff, keep_last, pipeline, crashed).subquery().c.id)


def runs_to_prune(session: Session, cutoff: dt.datetime, keep_last: int = 0, pipeline: str | None = None,
                  crashed: Collection[int] | None = None) -> list[RunRef]:
    """Runs to delete under a retention of ``cutoff`` and ``keep_last`` (a
    crashed run shows as crashed; ``crashed`` defaults to the runs
    ``index.liveness.crashed_among`` finds started before ``cutoff``)."""
    if pipeline is not None:
        check_pipeline(session, pipeline)  # a misspelt name is an error, not "no runs to delete"
    if crashed is None:
        crashed = crashed_among(session, started_before=cutoff)
    return [RunRef(i, n, p, shown_status(s, i in crashed), utc(t))
            for i, n, p, s, t in session.execute(_old_runs(cutoff, keep_last, pipeline, crashed))]


def prune_runs(
    session: Session, ids: Sequence[int], cutoff: dt.datetime, keep_last: int = 0, pipeline: str | None = None
) -> list[int]:
    """Delete the runs of ``ids`` that still qualify (re-checked here); their
    versions stay for the pruner. Returns the deleted ids."""
    wanted = set(ids)
    still = [ref.id for ref in runs_to_prune(session, cutoff, keep_last, pipeline) if ref.id in wanted]
    for run_id in still:
        run = session.get(PipelineRun, run_id)
        if run is not None:
            delete_run(session, run)
    return still


# -- the lease ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LeaseState:
    holder: str | None
    acquired_at: dt.datetime | None
    heartbeat_at: dt.datetime | None
    expires_at: dt.datetime | None


def _lease_row(session: Session, name: str) -> GcLease:
    # Fresh under the lock: holder and expiry are checked right after.
    query = select(GcLease).where(GcLease.name == name).with_for_update().execution_options(populate_existing=True)
    row = session.scalars(query).first()
    if row is None:
        session.add(GcLease(name=name))
        session.flush()
        row = session.scalars(query).one()
    return row


def lease_state(session: Session, name: str = PRUNER_LEASE) -> LeaseState:
    row = session.get(GcLease, name)
    if row is None:
        return LeaseState(None, None, None, None)
    return LeaseState(row.holder, utc(row.acquired_at), utc(row.heartbeat_at), utc(row.expires_at))


def take_lease(
    session: Session, holder: str, ttl: dt.timedelta, may_take, name: str = PRUNER_LEASE
) -> tuple[bool, LeaseState, dt.datetime]:
    """Take the lease for ``holder`` unless another holder has it and
    ``may_take(state, expired)`` says no (``expired``: by the index's
    clock; the caller knows whether a holder of this machine is alive,
    whatever the clocks say). Returns ``(taken, the state found, the
    index's now)``."""
    row = _lease_row(session, name)
    now = database_now(session)
    found = LeaseState(row.holder, utc(row.acquired_at), utc(row.heartbeat_at), utc(row.expires_at))
    other = row.holder not in (None, holder)
    expired = found.expires_at is None or found.expires_at <= now
    if other and not may_take(found, expired):
        return False, found, now
    row.holder, row.acquired_at, row.heartbeat_at, row.expires_at = holder, now, now, now + ttl
    return True, found, now


def renew_lease(session: Session, holder: str, ttl: dt.timedelta, name: str = PRUNER_LEASE) -> bool:
    """Extend the lease, by the database's clock, if ``holder`` still holds
    it (even past expiry: nobody took it meanwhile, so nobody else acted).
    False: it was lost."""
    row = _lease_row(session, name)
    if row.holder != holder:
        return False
    now = database_now(session)
    row.heartbeat_at, row.expires_at = now, now + ttl
    return True


def release_lease(session: Session, holder: str, name: str = PRUNER_LEASE) -> None:
    session.execute(
        update(GcLease).where(GcLease.name == name, GcLease.holder == holder)
        .values(holder=None, expires_at=None, heartbeat_at=None)
    )


# -- the orphan scan's memory ---------------------------------------------------------------


def scan_marks(session: Session, store_id: int) -> dict[str, dt.datetime]:
    """When each name folder of a store was last listed for orphans."""
    rows = session.execute(select(GcScan.prefix, GcScan.listed_at).where(GcScan.store_id == store_id))
    return {prefix: utc(listed_at) for prefix, listed_at in rows}


def mark_scanned(session: Session, store_id: int, prefixes: Iterable[str], when: dt.datetime) -> None:
    """Remember that ``prefixes`` of a store were listed at ``when``."""
    wanted = sorted(set(prefixes))
    for chunk in chunks(wanted):
        session.execute(delete(GcScan).where(GcScan.store_id == store_id, GcScan.prefix.in_(chunk)))
        session.execute(GcScan.__table__.insert(),
                        [{"store_id": store_id, "prefix": p, "listed_at": when} for p in chunk])


# -- questions fsck asks --------------------------------------------------------------------


def versions_to_check(session: Session, after_id: int, limit: int) -> list[VersionRef]:
    """Versions whose payload should exist (live, or condemned and not yet swept), by id."""
    return _refs(
        session,
        _ref_query().where(VersionRow.id > after_id, or_(is_live(VersionRow), and_(VersionRow.state == CONDEMNED, VersionRow.swept_at.is_(None))))
        .order_by(VersionRow.id).limit(limit),
    )


def manifests(session: Session, version_ids: Sequence[int]) -> dict[int, list[VersionFile]]:
    found: dict[int, list[VersionFile]] = {i: [] for i in version_ids}
    for chunk in chunks(list(version_ids)):
        for row in session.scalars(select(VersionFile).where(VersionFile.version_id.in_(chunk)).order_by(VersionFile.path)):
            found[row.version_id].append(row)
    return found


def link_counts(session: Session, version_ids: Sequence[int]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for chunk in chunks(list(version_ids)):
        rows = session.execute(
            select(StepIO.version_id, func.count()).where(StepIO.version_id.in_(chunk)).group_by(StepIO.version_id)
        )
        counts.update({vid: n for vid, n in rows})
    return counts


def referenced_condemned(session: Session) -> list[VersionRef]:
    """Condemned versions a step run links: the pruner must never make these."""
    return _refs(
        session,
        _ref_query().where(VersionRow.state == CONDEMNED, exists(select(StepIO.id).where(StepIO.version_id == VersionRow.id))).order_by(VersionRow.id),
    )


def revive(session: Session, ids: Sequence[int]) -> list[int]:
    """Back to live: condemned versions whose payload was not swept (fsck repair)."""
    ids = list(ids)
    if not ids:
        return []
    bump_generation(session)
    revived = []
    for chunk in chunks(ids):
        rows = list(session.scalars(
            select(VersionRow.id).where(VersionRow.id.in_(chunk), VersionRow.state == CONDEMNED, VersionRow.swept_at.is_(None)).with_for_update()
        ))
        if rows:
            session.execute(update(VersionRow).where(VersionRow.id.in_(rows)).values(state=LIVE, condemned_at=None))
            revived.extend(rows)
    return revived


def condemn_missing(session: Session, ids: Sequence[int], now: dt.datetime) -> list[int]:
    """Condemn live versions whose payload is gone and that no step run links
    (fsck repair): they vanish at once and the next ``gc`` forgets them."""
    ids = list(ids)
    if not ids:
        return []
    bump_generation(session)
    done = []
    for chunk in chunks(sorted(ids)):
        lock = select(VersionRow.id).where(VersionRow.id.in_(chunk), is_live(VersionRow)).order_by(VersionRow.id)
        if is_postgres(session):
            lock = lock.with_for_update(skip_locked=True)
        locked = list(session.scalars(lock))
        still = list(session.scalars(select(VersionRow.id).where(VersionRow.id.in_(locked), _unreferenced())))
        if still:
            session.execute(update(VersionRow).where(VersionRow.id.in_(still)).values(state=CONDEMNED, condemned_at=now, swept_at=now))
            done.extend(still)
    return done


__all__ = [
    "CHUNK",
    "CONDEMNED",
    "LIVE",
    "LeaseState",
    "PRUNER_LEASE",
    "RunRef",
    "VersionRef",
    "candidate_versions",
    "chunks",
    "condemn",
    "condemn_missing",
    "condemned_versions",
    "forget",
    "is_postgres",
    "lease_state",
    "link_counts",
    "lost_versions",
    "live_owner_uris",
    "live_owner_uris_since",
    "manifests",
    "mark_swept",
    "named_uuids",
    "old_run_ids",
    "prune_runs",
    "referenced_condemned",
    "release_lease",
    "renew_lease",
    "revive",
    "runs_to_prune",
    "store_rows",
    "sweepable",
    "take_lease",
    "uri_named",
    "utc",
    "versions_to_check",
]
