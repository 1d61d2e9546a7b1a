"""Executing a prune plan, one function per phase, in order:

1. ``drop_runs``      delete runs past the retention (only when the policy asks),
2. ``condemn``        one transaction: lock, re-check, live -> condemned,
3. ``sweep``          delete payloads of versions condemned longer than the sweep delay,
4. ``forget``         delete the rows of swept versions,
5. ``sweep_orphans``  delete payload-layout entries no row names, older than the orphan age,
                      in stores this index owns (marking the stores it may claim first),
                      clear stale write intents, remember which name folders were listed.

Each phase acts only on what the plan lists and re-checks each item first.
A store that fails is reported and skipped, an entry that cannot be read or
deleted is reported and left alone: the pass goes on with everything else.
Between phases and before every destructive step the lease is checked and
cancellation honoured; each phase boundary is a fault-injection point
(``gc_after_<phase>``, plus ``gc_mid_sweep`` and ``gc_mid_orphans``) for crash
tests. A pruner killed anywhere resumes from the states it left: condemned
rows are swept by the next pass, swept rows forgotten, a half-deleted
payload deleted again (deletion is idempotent).
"""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from artifactfs.errors import ArtifactfsError
from artifactfs.faults import fault_point
from artifactfs.gc.journal_ahead import held_at_sweep
from artifactfs.gc.lease import Lease, LeaseLostError
from artifactfs.gc.orphans import OrphanRef
from artifactfs.gc.ownership import OWNED, claim, read_ownership
from artifactfs.gc.payloads import (
    LiveOwners,
    StoreCache,
    StoreFailure,
    StoreProblem,
    delete_entry,
    delete_payload,
    describe_error,
    entry_age,
)
from artifactfs.gc.plan import PrunePlan
from artifactfs.gc.scan import EntryProblem, LayoutEntry, OddEntry, printable
from artifactfs.index import gc as gc_rows
from artifactfs.index.db import Index
from artifactfs.index.gc import VersionRef
from artifactfs.index.clock import database_now, index_now
from artifactfs.index.intents import clear_intent
from artifactfs.index.journal import rewrite_journals, versions_linked
from artifactfs.index.sweep import drop_journals, listed_files
from artifactfs.stores import layout
from artifactfs.stores.beneath import LinkFound

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
    kept_extra: list[tuple[str, str, list[str]]] = field(default_factory=list)  # (label, uri, files not listed)
    intents_cleared: int = 0
    claimed: list[str] = field(default_factory=list)  # stores this pass marked as owned by this index
    odd: list[OddEntry] = field(default_factory=list)  # entries left alone (could not be read or deleted)
    errors: list[StoreProblem] = field(default_factory=list)
    stopped: str | None = None  # why the pass ended early
    seconds: float = 0.0

    @property
    def freed(self) -> int:
        return self.swept_bytes + self.orphan_bytes

    @property
    def ok(self) -> bool:
        return self.stopped is None and not self.errors

    @property
    def clean(self) -> bool:
        """Nothing skipped at all: no failing store, no odd entry (what --strict asks)."""
        return self.ok and not self.odd


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
        """Record a failing store: the pass skips it from now on and goes on with the others."""
        name = self.stores.name(store_id)
        if store_id not in self.failed:
            self.failed.add(store_id)
            self.result.errors.append(StoreProblem(name, message))


# -- the phases --------------------------------------------------------------------------


def drop_runs(p: _Pass) -> None:
    """Delete the runs the plan lists that are still past the retention."""
    if not p.plan.runs:
        return
    p.checkpoint()
    policy = p.policy
    with p.index.write() as session:
        linked = versions_linked(session, run_ids=[r.id for r in p.plan.runs])
        p.result.runs_deleted = gc_rows.prune_runs(
            session, [r.id for r in p.plan.runs], database_now(session) - policy.runs_older_than,
            policy.keep_last_runs,
            policy.run_pipeline,
        )
    # Their versions' manifest files no longer name the runs (a version the
    # pass then condemns goes with its file); a store that fails is fsck's to report.
    rewrite_journals(p.index, linked, _journal_store(p))


def _journal_store(p: _Pass):
    def open_store(store_id: int):
        if store_id in p.failed or not p.stores.here(store_id):
            return None
        try:
            return p.stores.get(store_id)
        except StoreFailure:
            return None

    return open_store


def condemn(p: _Pass) -> None:
    """One transaction: lock the planned versions, re-check every condition
    after the lock, move those that still qualify to ``condemned``."""
    ids = [v.id for v in p.plan.condemn]
    if not ids:
        return
    p.checkpoint()
    policy = p.policy
    with p.index.write() as session:
        now = database_now(session)
        condemned, refused = gc_rows.condemn(session, ids, now - policy.grace, policy.keep_tags, policy.keep_latest, now)
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
    for batch in gc_rows.chunks(planned, SWEEP_BATCH):
        p.checkpoint()
        with p.index.read() as session:
            due = gc_rows.sweepable(session, batch, database_now(session) - p.policy.sweep_delay)
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
                gc_rows.mark_swept(session, done, index_now())
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

    with p.index.read() as session:
        listed = listed_files(session, refs)
    # The plan read the manifest files of what it condemns (gc.journal_ahead), unless their store failed.
    planned = {v.id for v in p.plan.condemn} - set(p.plan.journals_unread)
    held = held_at_sweep(p.index, store, [ref for ref in refs if ref.id not in planned], p.policy.keep_tags)

    def one(ref: VersionRef) -> tuple[VersionRef, str]:
        if stop.is_set():
            return ref, "skipped"
        if ref.id in held:  # reported, left condemned: looked at again by the next pass
            p.result.odd.append(OddEntry(store.name, printable(ref.uri), held[ref.id]))
            return ref, "odd"
        owner = owners.owner_of(ref.uri)
        if owner is not None:
            return ref, f"shared:{owner}"
        try:
            p.checkpoint()
            left = delete_payload(store, ref, listed.get(ref.id))
        except (LeaseLostError, PruneCancelled):
            stop.set()
            raise
        except ENTRY_ERRORS as exc:  # this payload only: report it, go on with the others
            p.result.odd.append(OddEntry(store.name, printable(ref.uri), f"cannot delete ({describe_error(store, exc)})"))
            return ref, "odd"
        except Exception as exc:  # noqa: BLE001 - any flavor error: the store failed
            stop.set()
            errors.append(f"cannot delete {ref.uri} ({describe_error(store, exc)})")
            return ref, "error"
        if left:
            p.result.kept_extra.append((ref.label, ref.uri, left))
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
                gc_rows.mark_swept(session, swept, index_now())
            p.result.swept.extend(swept)
        raise failure
    return swept, (errors[0] if errors else None)


# Errors that concern one entry, not the store: a local permission problem, a
# name the filesystem refuses, a file where a folder should be.
# A link where a payload should be (``stores.beneath.LinkFound``) is one too:
# reported, never followed, and the pass goes on.
ENTRY_ERRORS = (PermissionError, NotADirectoryError, IsADirectoryError, UnicodeError, EntryProblem, LinkFound)


def forget(p: _Pass) -> None:
    """Delete the rows of the planned versions that are condemned and swept
    (with --only-metadata: condemned, payload left in place)."""
    ids = [v.id for v in p.plan.forget]
    if not ids:
        return
    require_swept = not p.policy.only_metadata
    if not require_swept:
        drop_journals(p.plan.forget, _journal_store(p))
    for batch in gc_rows.chunks(ids):
        p.checkpoint()
        with p.index.write() as session:
            p.result.forgotten.extend(gc_rows.forget(session, batch, require_swept=require_swept))


def sweep_orphans(p: _Pass) -> None:
    """Mark the stores the plan may claim; delete the planned orphans that
    still have no row and were not written to since the plan (re-checked just
    before each deletion), only in stores this index owns; clear the stale
    write intents that went with them or whose folder is gone; remember which
    name folders were listed."""
    plan = p.plan
    owned = _claim_stores(p) if plan.orphans or plan.claims else set()
    if plan.orphans:
        p.progress.start("orphans", len(plan.orphans))
    first = True
    # A stale intent goes once every entry of its payload is gone: a numbered
    # manifest file left without its intent would look like a committed
    # payload the index does not know.
    entries_left = Counter(o.intent for o in plan.orphans if o.intent is not None)
    for orphan in plan.orphans:
        p.progress.advance("orphans")
        if orphan.store_id in p.failed or orphan.store_id not in owned:
            continue
        p.checkpoint()
        if not _still_orphan(p, orphan):
            p.result.orphans_kept.append(orphan.uri)
            continue
        try:
            delete_entry(p.stores.get(orphan.store_id), orphan.uri, orphan.kind)
        except ENTRY_ERRORS as exc:
            p.result.odd.append(OddEntry(orphan.store, printable(orphan.uri), f"cannot delete ({describe_error(None, exc)})"))
            continue
        except StoreFailure as exc:
            p.store_failed(orphan.store_id, exc.problem)
            continue
        except Exception as exc:  # noqa: BLE001
            p.store_failed(orphan.store_id, f"cannot delete {orphan.uri} ({describe_error(None, exc)})")
            continue
        p.result.orphans_deleted.append(orphan.uri)
        p.result.orphan_bytes += orphan.bytes
        if orphan.intent is not None:
            entries_left[orphan.intent] -= 1
            if not entries_left[orphan.intent]:
                _clear_intents(p, [orphan.intent])
        if first:
            fault_point("gc_mid_orphans")
            first = False
    _clear_gone_intents(p)
    _remember_scans(p)


def _claim_stores(p: _Pass) -> set[int]:
    """The stores whose orphans this pass may delete: those whose marker
    names this index now (read again: it may have changed since the plan),
    after marking the unmarked ones the plan found holding only this index's
    payloads."""
    owned: set[int] = set()
    wanted = {o.store_id for o in p.plan.orphans} | set(p.plan.claims)
    for store_id in sorted(wanted):
        if store_id in p.failed:
            continue
        p.checkpoint()
        try:
            store = p.stores.get(store_id)
            state = read_ownership(store, p.plan.index_uuid).state
            if state != OWNED and store_id in p.plan.claims and claim(store, p.plan.index_uuid):
                p.result.claimed.append(store.name)
                state = OWNED
        except StoreFailure as exc:
            p.store_failed(store_id, exc.problem)
            continue
        except Exception as exc:  # noqa: BLE001
            p.store_failed(store_id, f"cannot read its marker ({describe_error(p.stores.get_if_open(store_id), exc)})")
            continue
        if state == OWNED:
            owned.add(store_id)
    return owned


def _still_orphan(p: _Pass, orphan: OrphanRef) -> bool:
    """No row names it now, and nothing in it was written since the plan's
    cutoff (a write after the plan would be newer). Its uuid is fresh to every
    save, so no new write intent can cover it."""
    store = p.stores.get(orphan.store_id)
    with p.index.read() as session:
        if gc_rows.uri_named(session, _folder_uri(orphan), orphan.uuid) is not None:
            return False
    entry = LayoutEntry(orphan.uri, store.confine(orphan.uri), orphan.uuid, orphan.kind, "", "")
    try:
        age = entry_age(store, entry)
    except ENTRY_ERRORS as exc:
        p.result.odd.append(OddEntry(orphan.store, printable(orphan.uri), str(exc)))
        return False
    except Exception as exc:  # noqa: BLE001
        p.store_failed(orphan.store_id, f"cannot look into {orphan.uri} ({describe_error(store, exc)})")
        return False
    return age.newest is not None and age.newest < p.plan.orphans_before


def _folder_uri(orphan: OrphanRef) -> str:
    return layout.payload_of(orphan.uri)


def _clear_intents(p: _Pass, intent_ids: list[str]) -> None:
    with p.index.write() as session:
        for intent_id in intent_ids:
            clear_intent(session, intent_id)
    p.result.intents_cleared += len(intent_ids)


def _clear_gone_intents(p: _Pass) -> None:
    """Stale intents whose folder was gone at planning: cleared if it is still gone."""
    gone = []
    for intent in p.plan.clear_intents:
        if intent.store_id in p.failed:
            continue
        try:
            store = p.stores.get(intent.store_id)
            if any(store.exists(path) for path, _ in layout.payload_entries(intent.folder)):
                continue
        except Exception:  # noqa: BLE001 - cannot tell: a later pass clears it
            continue
        gone.append(intent.uuid)
    if gone:
        p.checkpoint()
        _clear_intents(p, gone)


def _remember_scans(p: _Pass) -> None:
    """Remember which name folders of remote stores were listed, so later
    passes list the others first."""
    if not p.plan.scanned:
        return
    with p.index.write() as session:
        when = database_now(session)
        for store_id, prefixes in p.plan.scanned:
            gc_rows.mark_scanned(session, store_id, prefixes, when)


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
