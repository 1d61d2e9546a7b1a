"""Executing a prune plan, one function per phase, in order:

1. ``drop_runs``      delete runs past the retention (only when the policy asks),
2. ``condemn``        one transaction: lock, re-check, live -> condemned,
3. ``sweep``          delete payloads of versions condemned longer than the sweep delay,
4. ``forget``         delete the rows of swept versions,
5. ``sweep_orphans``  delete payload-layout folders no row names, older than the grace period.

Each phase acts only on what the plan lists and re-checks each item first.
Between phases and before every destructive step the lease is checked and
cancellation honoured; each phase boundary is a fault-injection point
(``gc_after_<phase>``, plus ``gc_mid_sweep`` and ``gc_mid_orphans``) for crash
tests. A pruner killed anywhere resumes from the states it left: condemned
rows are swept by the next pass, swept rows forgotten, a half-deleted
payload deleted again (deletion is idempotent).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from artifactfs.errors import ArtifactfsError
from artifactfs.faults import fault_point
from artifactfs.gc.lease import Lease, LeaseLostError
from artifactfs.gc.payloads import (
    LiveOwners,
    StoreCache,
    StoreFailure,
    StoreProblem,
    delete_folder,
    delete_payload,
    describe_error,
    folder_age,
)
from artifactfs.gc.plan import OrphanRef, PrunePlan
from artifactfs.index import gc as rows
from artifactfs.index.db import Index
from artifactfs.index.gc import VersionRef
from artifactfs.index.models import utcnow

SWEEP_BATCH = 500
# Deletions in flight per store: object stores answer slowly but in parallel.
LOCAL_WORKERS = 2  # measured: more threads only contend for the GIL and the disk
REMOTE_WORKERS = 16


class PruneCancelled(ArtifactfsError):
    """The pass was asked to stop (SIGTERM, Ctrl-C)."""


class Progress(Protocol):
    def start(self, phase: str, total: int) -> None: ...

    def advance(self, phase: str, amount: int = 1) -> None: ...


class _NoProgress:
    def start(self, phase: str, total: int) -> None:
        pass

    def advance(self, phase: str, amount: int = 1) -> None:
        pass


@dataclass
class PruneResult:
    """What a pass did (ids and uris, so a test can compare them with the plan)."""

    runs_deleted: list[int] = field(default_factory=list)
    condemned: list[int] = field(default_factory=list)
    refused: list[int] = field(default_factory=list)  # no longer qualified at condemn time
    swept: list[int] = field(default_factory=list)
    shared: list[tuple[int, str]] = field(default_factory=list)  # payload kept: a live row owns it
    swept_files: int = 0
    swept_bytes: int = 0
    forgotten: list[int] = field(default_factory=list)
    orphans_deleted: list[str] = field(default_factory=list)
    orphans_kept: list[str] = field(default_factory=list)  # claimed by a row or written to since the plan
    orphan_bytes: int = 0
    errors: list[StoreProblem] = field(default_factory=list)
    stopped: str | None = None  # why the pass ended early
    seconds: float = 0.0

    @property
    def freed(self) -> int:
        return self.swept_bytes + self.orphan_bytes

    @property
    def ok(self) -> bool:
        return self.stopped is None and not self.errors


@dataclass
class _Pass:
    index: Index
    plan: PrunePlan
    lease: Lease | None
    cancel: threading.Event
    progress: Progress
    stores: StoreCache
    result: PruneResult = field(default_factory=PruneResult)
    failed: set[int] = field(default_factory=set)

    @property
    def policy(self):
        return self.plan.policy

    def checkpoint(self) -> None:
        """Before every destructive step: still asked to go on, still holding the lease."""
        if self.cancel.is_set():
            raise PruneCancelled("the pruner was asked to stop")
        if self.lease is not None:
            self.lease.check()

    def store_failed(self, store_id: int, message: str) -> None:
        """Record a failing store; stop the pass unless errors are ignored."""
        name = self.stores.name(store_id)
        if store_id not in self.failed:
            self.failed.add(store_id)
            self.result.errors.append(StoreProblem(name, message))
        if not self.policy.ignore_errors:
            raise StoreFailure(name, message, "nothing else was deleted; fix the store, or pass --ignore-errors")


# -- the phases --------------------------------------------------------------------------


def drop_runs(p: _Pass) -> None:
    """Delete the runs the plan lists that are still past the retention."""
    if not p.plan.runs:
        return
    p.checkpoint()
    policy = p.policy
    with p.index.write() as session:
        p.result.runs_deleted = rows.prune_runs(
            session, [r.id for r in p.plan.runs], utcnow() - policy.runs_older_than, policy.keep_last_runs,
            policy.run_pipeline,
        )


def condemn(p: _Pass) -> None:
    """One transaction: lock the planned versions, re-check every condition
    after the lock, move those that still qualify to ``condemned``."""
    ids = [v.id for v in p.plan.condemn]
    if not ids:
        return
    p.checkpoint()
    policy = p.policy
    now = utcnow()
    with p.index.write() as session:
        condemned, refused = rows.condemn(session, ids, now - policy.grace, policy.keep_tags, policy.keep_latest, now)
    p.result.condemned, p.result.refused = condemned, refused


def sweep(p: _Pass) -> None:
    """Delete the payloads of planned versions that are condemned, not yet
    swept, and condemned at least the sweep delay ago; mark them swept."""
    planned = [v.id for v in p.plan.sweep]
    if not planned:
        return
    p.progress.start("sweep", len(planned))
    owners = LiveOwners(p.index)
    first = True
    for batch in rows.chunks(planned, SWEEP_BATCH):
        p.checkpoint()
        with p.index.read() as session:
            due = rows.sweepable(session, batch, utcnow() - p.policy.sweep_delay)
        owners.refresh()
        by_store: dict[int, list[VersionRef]] = defaultdict(list)
        for ref in due:
            if ref.store_id not in p.failed:
                by_store[ref.store_id].append(ref)
        done: list[int] = []
        problem: tuple[int, str] | None = None
        for store_id, refs in by_store.items():
            outcome = _sweep_store(p, store_id, refs, owners)
            done.extend(outcome[0])
            if outcome[1] is not None and problem is None:
                problem = (store_id, outcome[1])
        if first and done:
            fault_point("gc_mid_sweep")  # payloads deleted, not yet marked
            first = False
        if done:
            with p.index.write() as session:
                rows.mark_swept(session, done, utcnow())
            p.result.swept.extend(done)
        p.progress.advance("sweep", len(batch))
        if problem is not None:
            p.store_failed(*problem)


def _sweep_store(p: _Pass, store_id: int, refs: list[VersionRef], owners: LiveOwners) -> tuple[list[int], str | None]:
    """Delete one store's share of a batch; returns (swept ids, first error)."""
    try:
        store = p.stores.get(store_id)
    except StoreFailure as exc:
        return [], exc.problem
    errors: list[str] = []
    stop = threading.Event()

    def one(ref: VersionRef) -> tuple[VersionRef, str]:
        if stop.is_set():
            return ref, "skipped"
        owner = owners.owner_of(ref.uri)
        if owner is not None:
            return ref, f"shared:{owner}"
        try:
            p.checkpoint()
            delete_payload(store, ref)
        except (LeaseLostError, PruneCancelled):
            stop.set()
            raise
        except Exception as exc:  # noqa: BLE001 - any flavor error: the store failed
            stop.set()
            errors.append(f"cannot delete {ref.uri} ({describe_error(store, exc)})")
            return ref, "error"
        return ref, "deleted"

    workers = LOCAL_WORKERS if store.is_local else REMOTE_WORKERS
    swept: list[int] = []
    with ThreadPoolExecutor(max_workers=min(workers, len(refs)), thread_name_prefix="artifactfs-gc") as pool:
        futures = [pool.submit(one, ref) for ref in refs]
        failure: BaseException | None = None
        for future in futures:
            try:
                ref, outcome = future.result()
            except (LeaseLostError, PruneCancelled) as exc:
                failure = failure or exc
                continue
            if outcome == "deleted":
                swept.append(ref.id)
                p.result.swept_files += ref.file_count
                p.result.swept_bytes += ref.size
            elif outcome.startswith("shared:"):
                # A live row owns this path or a part of it: the row goes, the payload stays.
                swept.append(ref.id)
                p.result.shared.append((ref.id, outcome[len("shared:"):]))
    if failure is not None:
        # Mark what was deleted before stopping, so a rerun does not redo it.
        if swept:
            with p.index.write() as session:
                rows.mark_swept(session, swept, utcnow())
            p.result.swept.extend(swept)
        raise failure
    return swept, (errors[0] if errors else None)


def forget(p: _Pass) -> None:
    """Delete the rows of the planned versions that are condemned and swept
    (with --only-metadata: condemned, payload left in place)."""
    ids = [v.id for v in p.plan.forget]
    if not ids:
        return
    require_swept = not p.policy.only_metadata
    for batch in rows.chunks(ids):
        p.checkpoint()
        with p.index.write() as session:
            p.result.forgotten.extend(rows.forget(session, batch, require_swept=require_swept))


def sweep_orphans(p: _Pass) -> None:
    """Delete the planned orphan folders that still have no row and were not
    written to since the plan (re-checked just before each deletion)."""
    orphans = p.plan.orphans
    if not orphans:
        return
    p.progress.start("orphans", len(orphans))
    cutoff = utcnow() - p.policy.orphan_cutoff_age
    first = True
    for orphan in orphans:
        p.progress.advance("orphans")
        if orphan.store_id in p.failed:
            continue
        p.checkpoint()
        if not _still_orphan(p, orphan, cutoff):
            p.result.orphans_kept.append(orphan.uri)
            continue
        try:
            store = p.stores.get(orphan.store_id)
            delete_folder(store, orphan.uri)
        except StoreFailure as exc:
            p.store_failed(orphan.store_id, exc.problem)
            continue
        except Exception as exc:  # noqa: BLE001
            p.store_failed(orphan.store_id, f"cannot delete {orphan.uri} ({describe_error(None, exc)})")
            continue
        p.result.orphans_deleted.append(orphan.uri)
        p.result.orphan_bytes += orphan.bytes
        if first:
            fault_point("gc_mid_orphans")
            first = False


def _still_orphan(p: _Pass, orphan: OrphanRef, cutoff: dt.datetime) -> bool:
    with p.index.read() as session:
        if rows.uri_named(session, orphan.uri, orphan.uuid) is not None:
            return False
    try:
        age = folder_age(p.stores.get(orphan.store_id), p.stores.get(orphan.store_id).resolve(orphan.uri))
    except StoreFailure as exc:
        p.store_failed(orphan.store_id, exc.problem)
        return False
    except Exception as exc:  # noqa: BLE001
        p.store_failed(orphan.store_id, f"cannot look into {orphan.uri} ({describe_error(None, exc)})")
        return False
    return age.newest is not None and age.newest < cutoff


PHASES: tuple[tuple[str, Callable[[_Pass], None]], ...] = (
    ("runs", drop_runs),
    ("condemn", condemn),
    ("sweep", sweep),
    ("forget", forget),
    ("orphans", sweep_orphans),
)


def phases_for(plan: PrunePlan) -> list[tuple[str, Callable[[_Pass], None]]]:
    policy = plan.policy
    wanted = {"condemn"}
    if policy.drops_runs:
        wanted.add("runs")
    if policy.sweeps:
        wanted |= {"sweep", "orphans"}
    if policy.forgets:
        wanted.add("forget")
    return [(name, fn) for name, fn in PHASES if name in wanted]


def execute(
    index: Index,
    plan: PrunePlan,
    lease: Lease | None,
    cancel: threading.Event | None = None,
    progress: Progress | None = None,
    stores: StoreCache | None = None,
) -> PruneResult:
    """Run the plan's phases once, in order. Never raises for a lost lease, a
    cancellation or a failing store: the result says where it stopped and why.

    ``lease`` is required for a real pass; ``None`` only for tests of a phase
    in isolation.
    """
    started = time.monotonic()
    p = _Pass(index, plan, lease, cancel or threading.Event(), progress or _NoProgress(), stores or StoreCache(index))
    try:
        for name, phase in phases_for(plan):
            p.checkpoint()
            phase(p)
            fault_point(f"gc_after_{name}")
    except (LeaseLostError, PruneCancelled, StoreFailure) as exc:
        p.result.stopped = exc.message
    p.result.seconds = time.monotonic() - started
    return p.result
