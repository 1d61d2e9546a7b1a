"""Planning a prune pass: read the index and list the stores, change nothing,
and return a frozen :class:`PrunePlan` with its :class:`PruneStats`.

The plan is what the user confirms; ``execute`` never deletes anything the
plan does not list, and re-checks every item before it acts on it.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from artifactfs.gc.journal_ahead import held_by_journals
from artifactfs.gc.orphans import OrphanRef, StaleIntent, StoreOrphans, find_orphans
from artifactfs.gc.ownership import CLAIMABLE
from artifactfs.gc.payloads import StoreCache, StoreFailure, StoreProblem, describe_error
from artifactfs.gc.policy import PrunePolicy
from artifactfs.gc.scan import OddEntry
from artifactfs.index.db import Index
from artifactfs.index.gc import (
    RunRef,
    VersionRef,
    candidate_versions,
    condemned_versions,
    old_run_ids,
    runs_to_prune,
)
from artifactfs.index.clock import advance_mark, is_sqlite, pass_now
from artifactfs.index.liveness import crashed_among
from artifactfs.index.models import utcnow
from artifactfs.index.stores import index_identity
from artifactfs.stores.layout import count_payloads


@dataclass(frozen=True)
class StoreNote:
    """Something the user should know about one store's orphan sweep."""

    store: str
    message: str

    def __str__(self) -> str:
        return f"{self.store}: {self.message}"


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
    orphan_cutoff: dt.datetime | None = None  # orphans were last written before this (None: now - orphan age)
    odd: tuple[OddEntry, ...] = ()  # entries left alone and reported
    notes: tuple[StoreNote, ...] = ()  # stores not swept for orphans (and why), partial scans
    claims: tuple[int, ...] = ()  # unmarked stores holding only this index's payloads: marked by the pass
    owned: tuple[int, ...] = ()  # stores whose orphans this index may sweep
    clear_intents: tuple[StaleIntent, ...] = ()  # stale intents whose folder is gone
    scanned: tuple[tuple[int, tuple[str, ...]], ...] = ()  # remote name folders listed, remembered by the pass
    index_uuid: str | None = None
    #: Versions to condemn whose manifest file the plan could not read (their
    #: store failed): the sweep reads it before deleting (gc.journal_ahead).
    journals_unread: tuple[int, ...] = ()
    # Stores this machine leaves to their own machine (StoreCache.elsewhere):
    # their condemned payloads wait, their orphans are not looked for.
    elsewhere: tuple[StoreProblem, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.runs or self.condemn or self.sweep or self.forget or self.orphans or self.clear_intents
                    or self.claims)

    @property
    def orphans_before(self) -> dt.datetime:
        return self.orphan_cutoff or (self.now - self.policy.orphan_cutoff_age)

    @property
    def in_place(self) -> tuple[VersionRef, ...]:
        """Registered-in-place payloads this pass deletes: a user's own files."""
        return tuple(v for v in self.sweep if v.in_place)

    def store_name(self, store_id: int) -> str:
        return dict(self.stores).get(store_id, f"#{store_id}")


def plan_prune(index: Index, policy: PrunePolicy, now: dt.datetime | None = None,
               stores: StoreCache | None = None) -> PrunePlan:
    """Compute the plan; only reads. A store that cannot be listed is skipped
    and listed in ``errors``; an entry that cannot be read is left alone and
    listed in ``odd``.

    Every age is measured on the index's clock (``index.clock``): on SQLite
    a host clock that disagrees with the index's raises
    :class:`~artifactfs.index.clock.ClockJumpError` before anything is
    planned. ``now`` is for tests only (the time the pass pretends it is)."""
    stores = stores or StoreCache(index)
    if now is None:
        now = _checked_now(index, policy)
        # Modification times are written by a host's clock (the store's
        # machine), not the index's: aged on the earlier of the two, so
        # neither clock running ahead makes a fresh payload look old.
        orphan_cutoff = min(now, utcnow()) - policy.orphan_cutoff_age
    else:
        orphan_cutoff = now - policy.orphan_cutoff_age
    with index.read() as session:
        index_uuid = index_identity(session)
        runs: list[RunRef] = []
        ignored = None
        if policy.drops_runs and policy.runs_older_than is not None:
            retention = (now - policy.runs_older_than, policy.keep_last_runs, policy.run_pipeline)
            crashed = crashed_among(session, started_before=retention[0])  # one verdict for the list and the links it frees
            runs = runs_to_prune(session, *retention, crashed=crashed)
            ignored = old_run_ids(*retention, crashed=crashed) if runs else None
        candidates = candidate_versions(session, now - policy.grace, policy.keep_tags, policy.keep_latest,
                                        ignored_runs=ignored)
        condemned = condemned_versions(session)
    # An index restored from a backup may lack a keep tag or a link its
    # store's journal records: such a version is not condemned (gc.journal_ahead).
    candidates, held, unchecked = held_by_journals(index, stores, candidates, policy.keep_tags)
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
    found = scan_stores(index, stores, policy, index_uuid, orphan_cutoff) if policy.sweeps else OrphanScan()
    plan = PrunePlan(
        policy=policy, now=now, runs=tuple(runs), condemn=tuple(candidates),
        sweep=tuple(sorted(sweep, key=lambda v: v.id)), forget=tuple(sorted(forget, key=lambda v: v.id)),
        orphans=tuple(found.orphans), waiting=tuple(sorted(waiting, key=lambda v: v.id)),
        stores=tuple((i, stores.name(i)) for i in sorted(stores.rows)), errors=tuple(found.errors),
        orphan_cutoff=orphan_cutoff, odd=tuple(found.odd),
        notes=tuple(found.notes) + tuple(StoreNote(store, why) for store, why in held), claims=tuple(found.claims),
        owned=tuple(found.owned), clear_intents=tuple(found.gone_intents), scanned=tuple(found.scanned),
        index_uuid=index_uuid, journals_unread=tuple(unchecked),
        elsewhere=tuple(StoreProblem(stores.name(i), why) for i, why in sorted(stores.elsewhere.items())),
    )
    object.__setattr__(plan, "stats", _stats(plan, found.young))
    return plan


def _checked_now(index: Index, policy: PrunePolicy) -> dt.datetime:
    """The pass's time on the index's clock; on SQLite, once checked, this
    host's clock moves the index's mark (a pruner keeps a quiet index's
    mark fresh)."""
    with index.read() as session:
        now = pass_now(session, policy.clock_tolerance, trust_host=policy.trust_clock)
        sqlite = is_sqlite(session)
    if sqlite:
        with index.write() as session:
            advance_mark(session, to=now if policy.trust_clock else None)
    return now


@dataclass
class OrphanScan:
    """What the orphan scan of every store found."""

    orphans: list[OrphanRef] = field(default_factory=list)
    young: int = 0
    odd: list[OddEntry] = field(default_factory=list)
    notes: list[StoreNote] = field(default_factory=list)
    errors: list[StoreProblem] = field(default_factory=list)
    claims: list[int] = field(default_factory=list)
    owned: list[int] = field(default_factory=list)
    gone_intents: list[StaleIntent] = field(default_factory=list)
    scanned: list[tuple[int, tuple[str, ...]]] = field(default_factory=list)

    def add(self, store: str, result: StoreOrphans, limit: int | None) -> None:
        self.orphans.extend(result.orphans)
        self.young += len(result.young)
        self.odd.extend(result.odd)
        self.gone_intents.extend(result.gone_intents)
        ownership = result.ownership
        if ownership.reason:
            self.notes.append(StoreNote(store, ownership.reason))
        if ownership.sweeps:
            self.owned.append(result.store_id)
        if ownership.state == CLAIMABLE:
            self.claims.append(result.store_id)
        if result.total > len(result.listed) and ownership.sweeps and limit is not None:
            self.notes.append(StoreNote(store, f"listed {len(result.listed)} of {result.total} name folders for "
                                               "orphans; later passes list the rest (--full-scan lists all)"))
        if limit is not None and result.listed:
            self.scanned.append((result.store_id, tuple(result.listed)))


def scan_stores(index: Index, stores: StoreCache, policy: PrunePolicy, index_uuid: str,
                cutoff: dt.datetime) -> OrphanScan:
    """The orphan scan of every store; a store that fails is skipped and reported."""
    found = OrphanScan()
    for store_id in sorted(stores.rows):
        if not stores.here(store_id):
            continue  # another machine's store: plan.elsewhere says so
        try:
            store = stores.get(store_id)
            result = find_orphans(index, store, store_id, index_uuid, cutoff, policy.orphan_cutoff_age,
                                  policy.scan_limit)
        except StoreFailure as exc:
            found.errors.append(StoreProblem(exc.store, exc.problem))
            continue
        except Exception as exc:  # noqa: BLE001 - whatever the flavor library raised
            found.errors.append(StoreProblem(
                stores.name(store_id),
                f"cannot list it for orphan payloads ({describe_error(stores.get_if_open(store_id), exc)})"))
            continue
        found.add(store.name, result, policy.scan_limit if not store.is_local else None)
    return found


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
    orphans: dict[int, list[str]] = defaultdict(list)
    for o in plan.orphans:
        orphans[o.store_id].append(o.uri)
        per[o.store_id]["orphan_files"] += o.files
        per[o.store_id]["orphan_bytes"] += o.bytes
    for v in plan.waiting:
        per[v.store_id]["waiting"] += 1
    for store_id, uris in orphans.items():
        per[store_id]["orphans"] = count_payloads(uris)
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
        orphans=sum(count_payloads(uris) for uris in orphans.values()), waiting=len(plan.waiting), young_orphans=young,
        files=sum(s.files for s in rows), bytes=sum(s.bytes for s in rows), stores=tuple(rows),
    )
