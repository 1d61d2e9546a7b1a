"""Planning a prune pass: read the index and list the stores, change nothing,
and return a frozen :class:`PrunePlan` with its :class:`PruneStats`.

The plan is what the user confirms; ``execute`` never deletes anything the
plan does not list, and re-checks every item before it acts on it.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from artifactfs.gc.payloads import StoreCache, StoreFailure, StoreProblem, describe_error, folder_age, layout_folders
from artifactfs.gc.policy import PrunePolicy
from artifactfs.index.db import Index
from artifactfs.index.gc import (
    RunRef,
    VersionRef,
    candidate_versions,
    chunks,
    condemned_versions,
    named_uuids,
    old_run_ids,
    runs_to_prune,
    uri_named,
)
from artifactfs.index.models import utcnow


@dataclass(frozen=True, slots=True)
class OrphanRef:
    """A payload-layout folder that no row names, older than the grace period."""

    store_id: int
    store: str
    uri: str
    uuid: str
    files: int
    bytes: int
    newest: dt.datetime


@dataclass(frozen=True)
class StoreStats:
    store: str
    versions: int = 0  # versions whose payload or row goes
    in_place: int = 0  # of those, registered in place (a user's own file or folder)
    files: int = 0  # payload files deleted
    bytes: int = 0  # payload bytes deleted
    orphans: int = 0
    orphan_files: int = 0
    orphan_bytes: int = 0
    waiting: int = 0  # condemned, payload kept until the sweep delay has passed

    @property
    def freed(self) -> int:
        return self.bytes + self.orphan_bytes


@dataclass(frozen=True)
class PruneStats:
    runs: int
    condemn: int
    sweep: int
    forget: int
    orphans: int
    waiting: int
    young_orphans: int
    files: int
    bytes: int
    stores: tuple[StoreStats, ...]

    @property
    def freed(self) -> int:
        return sum(s.freed for s in self.stores)


@dataclass(frozen=True)
class PrunePlan:
    """What one pass will do, in order: drop ``runs``, ``condemn`` versions,
    ``sweep`` payloads, ``forget`` rows, delete ``orphans``."""

    policy: PrunePolicy
    now: dt.datetime
    runs: tuple[RunRef, ...]
    condemn: tuple[VersionRef, ...]
    sweep: tuple[VersionRef, ...]
    forget: tuple[VersionRef, ...]
    orphans: tuple[OrphanRef, ...]
    waiting: tuple[VersionRef, ...]
    stores: tuple[tuple[int, str], ...]
    errors: tuple[StoreProblem, ...] = ()
    stats: PruneStats = field(default=None)  # type: ignore[assignment]
    # Stores this machine leaves to their own machine (StoreCache.elsewhere):
    # their condemned payloads wait, their orphans are not looked for.
    elsewhere: tuple[StoreProblem, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.runs or self.condemn or self.sweep or self.forget or self.orphans)

    @property
    def in_place(self) -> tuple[VersionRef, ...]:
        """Registered-in-place payloads this pass deletes: a user's own files."""
        return tuple(v for v in self.sweep if v.in_place)

    def store_name(self, store_id: int) -> str:
        return dict(self.stores).get(store_id, f"#{store_id}")


def plan_prune(index: Index, policy: PrunePolicy, now: dt.datetime | None = None,
               stores: StoreCache | None = None) -> PrunePlan:
    """Compute the plan; only reads. A store that cannot be listed raises
    :class:`StoreFailure`, unless ``policy.ignore_errors`` (then it is in ``errors``)."""
    now = now or utcnow()
    stores = stores or StoreCache(index)
    with index.read() as session:
        runs: list[RunRef] = []
        ignored = None
        if policy.drops_runs:
            retention = (now - policy.runs_older_than, policy.keep_last_runs, policy.run_pipeline)
            runs = runs_to_prune(session, *retention)
            ignored = old_run_ids(*retention) if runs else None
        candidates = candidate_versions(session, now - policy.grace, policy.keep_tags, policy.keep_latest,
                                        ignored_runs=ignored)
        condemned = condemned_versions(session)
    unswept = [v for v in condemned if v.swept_at is None]
    sweep_cutoff = now - policy.sweep_delay
    immediate = policy.sweep_delay <= dt.timedelta(0)
    sweep: list[VersionRef] = []
    waiting: list[VersionRef] = []
    forget: list[VersionRef] = []
    if policy.sweeps:
        sweep = [v for v in unswept if v.condemned_at is not None and v.condemned_at <= sweep_cutoff]
        waiting = [v for v in unswept if v.condemned_at is None or v.condemned_at > sweep_cutoff]
        (sweep if immediate else waiting).extend(candidates)
        waiting += [v for v in sweep if not stores.here(v.store_id)]  # their own machine sweeps them
        sweep = [v for v in sweep if stores.here(v.store_id)]
    if policy.forgets:
        if policy.only_metadata:
            forget = condemned + candidates
        else:
            forget = [v for v in condemned if v.swept_at is not None] + sweep
    errors: list[StoreProblem] = []
    orphans: list[OrphanRef] = []
    young = 0
    if policy.sweeps:
        for store_id in sorted(stores.rows):
            if not stores.here(store_id):
                continue
            try:
                found, skipped = _scan_orphans(index, stores, store_id, now - policy.orphan_cutoff_age)
            except StoreFailure as exc:
                if not policy.ignore_errors:
                    raise
                errors.append(StoreProblem(exc.store, exc.problem))
                continue
            orphans.extend(found)
            young += skipped
    plan = PrunePlan(
        policy=policy, now=now, runs=tuple(runs), condemn=tuple(candidates),
        sweep=tuple(sorted(sweep, key=lambda v: v.id)), forget=tuple(sorted(forget, key=lambda v: v.id)),
        orphans=tuple(orphans), waiting=tuple(sorted(waiting, key=lambda v: v.id)),
        stores=tuple((i, stores.name(i)) for i in sorted(stores.rows)), errors=tuple(errors),
        elsewhere=tuple(StoreProblem(stores.name(i), why) for i, why in sorted(stores.elsewhere.items())),
    )
    object.__setattr__(plan, "stats", _stats(plan, young))
    return plan


def _scan_orphans(index: Index, stores: StoreCache, store_id: int, cutoff: dt.datetime) -> tuple[list[OrphanRef], int]:
    """Layout folders of one store that no row names, older than ``cutoff``; and how many were too young."""
    store = stores.get(store_id)
    found: list[OrphanRef] = []
    young = 0
    try:
        for folders in layout_folders(store):
            for batch in chunks(folders):
                with index.read() as session:
                    named = named_uuids(session, sorted({f.uuid for f in batch}))
                    unnamed = [f for f in batch if f.uuid not in named and uri_named(session, f.uri) is None]
                for folder in unnamed:
                    age = folder_age(store, folder.native)
                    if age.newest is None or age.newest >= cutoff:
                        young += 1
                        continue
                    found.append(OrphanRef(store_id, store.name, folder.uri, folder.uuid, age.files, age.bytes, age.newest))
    except StoreFailure:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever the flavor library raised
        raise StoreFailure(store.name, f"cannot list it for orphan payloads ({describe_error(store, exc)})",
                           "check the store with `artifactfs store check`, or pass --ignore-errors to skip it") from exc
    return found, young


def _stats(plan: PrunePlan, young: int) -> PruneStats:
    per: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    touched: dict[int, set[int]] = defaultdict(set)
    for v in plan.condemn + plan.forget:
        touched[v.store_id].add(v.id)
    for v in plan.sweep:
        touched[v.store_id].add(v.id)
        per[v.store_id]["files"] += v.file_count
        per[v.store_id]["bytes"] += v.size
    in_place: dict[int, set[int]] = defaultdict(set)
    for v in plan.condemn + plan.sweep + plan.forget:
        if v.in_place:
            in_place[v.store_id].add(v.id)
    for o in plan.orphans:
        per[o.store_id]["orphans"] += 1
        per[o.store_id]["orphan_files"] += o.files
        per[o.store_id]["orphan_bytes"] += o.bytes
    for v in plan.waiting:
        per[v.store_id]["waiting"] += 1
    rows = []
    for store_id, name in plan.stores:
        counts = per.get(store_id, {})
        stats = StoreStats(
            store=name, versions=len(touched.get(store_id, ())), in_place=len(in_place.get(store_id, ())),
            files=counts.get("files", 0), bytes=counts.get("bytes", 0), orphans=counts.get("orphans", 0),
            orphan_files=counts.get("orphan_files", 0), orphan_bytes=counts.get("orphan_bytes", 0),
            waiting=counts.get("waiting", 0),
        )
        rows.append(stats)
    return PruneStats(
        runs=len(plan.runs), condemn=len(plan.condemn), sweep=len(plan.sweep), forget=len(plan.forget),
        orphans=len(plan.orphans), waiting=len(plan.waiting), young_orphans=young,
        files=sum(s.files for s in rows), bytes=sum(s.bytes for s in rows), stores=tuple(rows),
    )
