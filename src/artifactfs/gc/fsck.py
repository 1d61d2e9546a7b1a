"""``fsck``: compare the index with the stores and report what disagrees;
with ``repair``, fix only what is safe to fix.

Checked: every version whose payload should exist (live, or condemned and
not yet swept) against its manifest (presence and size; digests with
``deep``), files in a payload the manifest does not list, payload-layout
folders no row names (in stores this index owns, as the pruner sees them:
``gc.orphans``), versions stuck in ``condemned``, condemned versions a
step run links (which the pruner must never produce), and versions lost
with a store removed by ``store remove --force``. A store that cannot be
reached is reported and skipped; an entry that cannot be read is reported
and the check goes on.

Safe repairs (under the pruner lease): old orphan folders are deleted as the
pruner would; stuck condemned versions are swept and forgotten; condemned
versions whose payload is already gone are marked swept; live versions whose
payload is entirely gone and that nothing links are condemned (hidden), then
forgotten; a condemned version that a step run links and whose payload is
still there goes back to live. Changed or missing files of a present
payload are only reported: the bytes were changed outside artifactfs and
only the user can say which side is right.
"""

from __future__ import annotations

import datetime as dt
import json
import posixpath
from collections import defaultdict
from dataclasses import dataclass, field, replace

from artifactfs.gc.execute import ENTRY_ERRORS, PruneResult, execute
from artifactfs.gc.journal_ahead import behind_message
from artifactfs.gc.lease import Lease
from artifactfs.gc.orphans import OrphanRef, StaleIntent, find_orphans
from artifactfs.gc.ownership import BEHIND
from artifactfs.gc.payloads import StoreCache, StoreFailure, StoreProblem, describe_error
from artifactfs.gc.plan import PrunePlan, PruneStats
from artifactfs.gc.policy import DEFAULT_GRACE, ORPHAN_FLOOR, PrunePolicy
from artifactfs.gc.scan import EntryProblem, printable
from artifactfs.index import gc as gc_rows
from artifactfs.index.db import Index
from artifactfs.index.gc import VersionRef
from artifactfs.index.clock import database_now, pass_now
from artifactfs.index.models import PayloadKind, utcnow
from artifactfs.index.stores import index_identity
from artifactfs.stores.base import ArtifactStore
from artifactfs.index.journal import Gathered, ahead_of_index, gather, rewrite_journals, runs_in_progress
from artifactfs.stores.beneath import LinkFound
from artifactfs.stores.manifest import JournalError, hash_store_file, journal_folder, manifest_file, read_manifest_file

DEFAULT_STUCK_AFTER = dt.timedelta(hours=1)
BATCH = 500

PROBLEM, INFO = "problem", "info"
JOURNAL_KINDS = ("journal-missing", "journal-unreadable", "journal-differs")


@dataclass(frozen=True)
class Finding:
    kind: str
    severity: str  # "problem" or "info"
    store: str
    subject: str  # "name:version" or a folder uri
    detail: str
    version: VersionRef | None = None
    orphan: OrphanRef | None = None
    intent: StaleIntent | None = None
    repair: str | None = None  # what --repair would do; None: report only
    repaired: bool = False


@dataclass
class FsckReport:
    findings: list[Finding] = field(default_factory=list)
    versions: int = 0
    files: int = 0
    errors: list[StoreProblem] = field(default_factory=list)  # stores that could not be reached or read
    repair_result: PruneResult | None = None
    index_uuid: str | None = None
    orphan_cutoff: dt.datetime | None = None

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == PROBLEM and not f.repaired]

    @property
    def ok(self) -> bool:
        return not self.problems and not self.errors


def fsck(
    index: Index,
    deep: bool = False,
    grace: dt.timedelta = DEFAULT_GRACE,
    stuck_after: dt.timedelta = DEFAULT_STUCK_AFTER,
) -> FsckReport:
    """Check everything; change nothing."""
    report = FsckReport()
    stores = StoreCache(index)
    orphan_age = max(grace, ORPHAN_FLOOR)
    with index.read() as session:
        report.index_uuid = index_identity(session)
        # The index's clock (SQLite: refused when this host's disagrees);
        # modification times are aged on the earlier of it and ours.
        now = pass_now(session, orphan_age)
        report.orphan_cutoff = min(now, utcnow()) - orphan_age
    failed: set[int] = set()
    after = 0
    while True:
        with index.read() as session:
            batch = gc_rows.versions_to_check(session, after, BATCH)
            if not batch:
                break
            manifests = gc_rows.manifests(session, [v.id for v in batch])
            links = gc_rows.link_counts(session, [v.id for v in batch])
            journals = gather(session, [v.id for v in batch if v.state == gc_rows.LIVE])
            running = runs_in_progress(journals)
        after = batch[-1].id
        for ref in batch:
            if ref.store_id in failed or not stores.here(ref.store_id):
                continue
            try:
                store = stores.get(ref.store_id)
                report.versions += 1
                _check_version(report, store, ref, manifests[ref.id], links.get(ref.id, 0), deep)
                if ref.id in journals:
                    _check_journal(report, store, ref, journals[ref.id], ref.id in running)
            except ENTRY_ERRORS as exc:  # this payload only: report it, check the others
                report.findings.append(Finding("unreadable", PROBLEM, stores.name(ref.store_id), ref.label,
                                               f"cannot be read ({describe_error(None, exc)}): {printable(ref.uri)}",
                                               version=ref))
            except StoreFailure as exc:
                failed.add(ref.store_id)
                report.errors.append(StoreProblem(exc.store, exc.problem))
            except Exception as exc:  # noqa: BLE001 - any flavor error
                failed.add(ref.store_id)
                report.errors.append(StoreProblem(stores.name(ref.store_id), describe_error(None, exc)))
    with index.read() as session:
        condemned = gc_rows.condemned_versions(session)
        referenced = {v.id for v in gc_rows.referenced_condemned(session)}
        lost = gc_rows.lost_versions(session)
    for ref, store_name in lost:
        report.findings.append(Finding(
            "lost", INFO, store_name, ref.label,
            "its store was removed with `store remove --force`: the version is hidden and its payload unreachable",
            version=ref))
    for ref in condemned:
        name = stores.name(ref.store_id)
        if ref.id in referenced:
            fix = "back to live" if ref.swept_at is None else None
            report.findings.append(Finding(
                "referenced-condemned", PROBLEM, name, ref.label,
                "condemned, yet a step run links it" + ("" if fix else "; its payload is already deleted"),
                version=ref, repair=fix))
        elif ref.swept_at is not None:
            report.findings.append(Finding(
                "payload-removed", INFO, name, ref.label,
                "payload deleted, row kept hidden: a gc pass stopped between sweep and forget, or "
                "`gc --only-artifact` was used; `artifactfs gc` forgets it",
                version=ref))
        elif ref.condemned_at is not None and now - ref.condemned_at > stuck_after:
            report.findings.append(Finding(
                "stuck-condemned", PROBLEM, name, ref.label,
                f"condemned since {ref.condemned_at:%Y-%m-%d %H:%M:%S} UTC and never swept",
                version=ref, repair="sweep and forget"))
    for store_id, why in sorted(stores.elsewhere.items()):
        report.findings.append(Finding("elsewhere", INFO, stores.name(store_id), "-", f"not checked here: {why}"))
    for store_id in sorted(stores.rows):
        if store_id in failed or not stores.here(store_id):
            continue
        try:
            _check_orphans(report, index, stores, store_id, orphan_age)
        except StoreFailure as exc:
            report.errors.append(StoreProblem(exc.store, exc.problem))
        except Exception as exc:  # noqa: BLE001
            report.errors.append(StoreProblem(stores.name(store_id), describe_error(stores.get_if_open(store_id), exc)))
    return report


def _check_version(report: FsckReport, store: ArtifactStore, ref: VersionRef, manifest, links: int, deep: bool) -> None:
    native = store.confine(ref.uri)
    found = _payload_files(store, native, ref.payload_kind)
    name = store.name
    if found is None or (not found and manifest):
        live = ref.state == gc_rows.LIVE
        if live:
            fix = "hide and forget the version" if links == 0 else None
            detail = "payload is missing" + ("" if fix else f" (linked by {links} step run(s): not repaired)")
        else:
            fix, detail = "mark swept", "condemned and its payload is already gone"
        report.findings.append(Finding("missing-payload", PROBLEM, name, ref.label, f"{detail}: {ref.uri}",
                                       version=ref, repair=fix))
        return
    listed = {f.path: f for f in manifest}
    for path, entry in listed.items():
        report.files += 1
        actual = found.get(path)
        if actual is None:
            report.findings.append(Finding("missing-file", PROBLEM, name, ref.label, f"{path} is missing", version=ref))
            continue
        if actual != entry.size:
            report.findings.append(Finding("size-mismatch", PROBLEM, name, ref.label,
                                           f"{path}: {actual} bytes, manifest says {entry.size}", version=ref))
            continue
        if deep and entry.digest:
            file_native = native if ref.payload_kind == PayloadKind.FILE.value else posixpath.join(native, path)
            _, digest = hash_store_file(store, file_native, ref.hash_algorithm)
            if digest != entry.digest:
                report.findings.append(Finding("hash-mismatch", PROBLEM, name, ref.label,
                                               f"{path}: {ref.hash_algorithm} {digest[:12]}, "
                                               f"manifest says {entry.digest[:12]}",
                                               version=ref))
    for path in sorted(set(found) - set(listed)):
        report.findings.append(Finding("extra-file", PROBLEM, name, ref.label,
                                       f"{path} is not in the manifest", version=ref))


def _check_journal(report: FsckReport, store: ArtifactStore, ref: VersionRef, gathered: Gathered,
                   in_progress: bool) -> None:
    """The version's manifest file (the store's journal) against the index:
    missing, unreadable or changed by hand, or out of date. While a run that
    links it is in progress its links are still being written: only the
    version's own facts are compared then."""
    folder = journal_folder(store, ref.uri, ref.uuid)
    where = store.uri(manifest_file(folder))
    fix = "rewrite it from the index"
    try:
        record, files = read_manifest_file(store, folder)
    except FileNotFoundError:
        report.findings.append(Finding("journal-missing", PROBLEM, store.name, ref.label,
                                       f"its manifest file is missing: {where}", version=ref, repair=fix))
        return
    except JournalError as exc:
        report.findings.append(Finding("journal-unreadable", PROBLEM, store.name, ref.label,
                                       f"its manifest file cannot be trusted ({exc}): {where}", version=ref,
                                       repair=fix))
        return
    ahead = ahead_of_index(record, gathered)
    if ahead is not None:  # never "rewrite it from the index": that would drop what protects it
        report.findings.append(Finding("index-behind", PROBLEM, store.name, ref.label,
                                       behind_message(store.name, ref.label, ahead), version=ref))
        return
    expected = gathered.record(store)
    keys = [k for k in expected if k not in ("producers", "consumers") or not in_progress]
    differ = [k for k in keys if record.get(k) != _as_read(expected[k])]
    if files != gathered.files:
        differ.append("files")
    if differ:
        report.findings.append(Finding("journal-differs", PROBLEM, store.name, ref.label,
                                       f"its manifest file disagrees with the index on {', '.join(differ)}: {where}",
                                       version=ref, repair=fix))


def _as_read(value):
    """A value as a manifest file reads back (JSON: tuples become lists, times text)."""
    return json.loads(json.dumps(value, default=str))


def _payload_files(store: ArtifactStore, native: str, kind: str) -> dict[str, int] | None:
    """``{relative path: size}`` of a payload, None when it does not exist."""
    if kind == PayloadKind.FILE.value:
        try:
            info = store.fs.info(native)
        except FileNotFoundError:
            return None
        except LinkFound as exc:
            raise EntryProblem(f"{exc.path} is a symbolic link, never followed") from None
        if info.get("type") != "file":
            return None
        return {posixpath.basename(native): int(info.get("size") or 0)}
    if store.is_local:  # beneath the root's descriptor: a link is an entry of its own, never followed
        root, top = store.beneath, store.local_relative(native)
        try:
            if root.kind(top) != "folder":
                return None
            found = {}
            errors: list[OSError] = []
            for folder, entries in root.walk(top, on_error=errors.append):
                inner = folder[len(top):].lstrip("/")
                for entry in entries:
                    if entry.kind != "folder":
                        found[f"{inner}/{entry.name}" if inner else entry.name] = entry.stat.st_size
        except LinkFound as exc:
            raise EntryProblem(f"{exc.path} is a symbolic link, never followed") from None
        if errors:  # a listing that skipped a folder would report its files missing
            raise EntryProblem(f"part of it cannot be read ({errors[0].strerror or errors[0]})")
        return found
    prefix = native.rstrip("/") + "/"
    infos = store.fs.find(native, detail=True, withdirs=False)
    found = {
        path[len(prefix):]: int(info.get("size") or 0)
        for path, info in infos.items()
        if path.startswith(prefix) and info.get("type") != "directory"
    }
    return found or None


def _check_orphans(report: FsckReport, index: Index, stores: StoreCache, store_id: int,
                   orphan_age: dt.timedelta) -> None:
    store = stores.get(store_id)
    found = find_orphans(index, store, store_id, report.index_uuid, report.orphan_cutoff, orphan_age, None)
    if found.ownership.state == BEHIND:
        report.findings.append(Finding("index-behind", PROBLEM, store.name, store.path, found.ownership.reason))
    elif found.ownership.reason:
        report.findings.append(Finding("store-not-owned", INFO, store.name, store.path, found.ownership.reason))
    for orphan in found.orphans:
        report.findings.append(Finding(
            "orphan", PROBLEM, store.name, orphan.uri,
            f"no version names it; {orphan.files} file(s), {orphan.bytes} bytes, "
            f"last written {orphan.newest:%Y-%m-%d %H:%M:%S} UTC",
            orphan=orphan, repair="delete"))
    for uri in found.young:
        report.findings.append(Finding(
            "young-orphan", INFO, store.name, uri,
            "no version names it yet: a save in progress, or younger than the orphan age; left alone"))
    for odd in found.odd:
        report.findings.append(Finding("odd-entry", PROBLEM, store.name, odd.where, odd.problem))
    for intent in found.gone_intents:
        report.findings.append(Finding("stale-intent", INFO, store.name, intent.folder,
                                       "a save that died left its write intent; its folder is gone",
                                       intent=intent, repair="clear"))


def repair(index: Index, report: FsckReport, lease: Lease, grace: dt.timedelta = DEFAULT_GRACE) -> FsckReport:
    """Apply the safe repairs of ``report`` under ``lease``; returns the report
    with ``repaired`` set on what was fixed."""
    fixable = [f for f in report.findings if f.repair and not f.repaired]
    by_kind: dict[str, list[Finding]] = defaultdict(list)
    for finding in fixable:
        by_kind[finding.kind].append(finding)
    with index.read() as session:
        now = database_now(session)
    lease.check()
    with index.write() as session:
        revived = set(gc_rows.revive(session, [f.version.id for f in by_kind["referenced-condemned"]]))
    missing = by_kind["missing-payload"]
    lease.check()
    with index.write() as session:
        live_missing = [f.version.id for f in missing if f.version.state == gc_rows.LIVE]
        hidden = set(gc_rows.condemn_missing(session, live_missing, now))
        gone = [f.version.id for f in missing if f.version.state != gc_rows.LIVE]
        gc_rows.mark_swept(session, gone, now)
        hidden.update(gone)
    stuck = [f.version for f in by_kind["stuck-condemned"]]
    forget_refs = [f.version for f in missing if f.version.id in hidden] + stuck
    orphans = tuple(f.orphan for f in by_kind["orphan"])
    intents = tuple(f.intent for f in by_kind["stale-intent"])
    plan = PrunePlan(
        policy=PrunePolicy(grace=grace, sweep_delay=dt.timedelta(0), keep_latest=0),
        now=now, runs=(), condemn=(), sweep=tuple(stuck), forget=tuple(sorted(forget_refs, key=lambda v: v.id)),
        orphans=orphans, waiting=(), stores=(), errors=(),
        stats=PruneStats(0, 0, len(stuck), len(forget_refs), len(orphans), 0, 0, 0, 0, ()),
        orphan_cutoff=report.orphan_cutoff, clear_intents=intents, index_uuid=report.index_uuid,
    )
    result = execute(index, plan, lease)
    journals = [f for f in fixable if f.kind in JOURNAL_KINDS]
    stores = StoreCache(index)
    problems = rewrite_journals(index, [f.version.id for f in journals], stores.get) if journals else []
    forgotten = set(result.forgotten)
    swept = set(result.swept)
    deleted = set(result.orphans_deleted)
    findings = []
    for finding in report.findings:
        done = False
        if finding in fixable:
            if finding.kind == "referenced-condemned":
                done = finding.version.id in revived
            elif finding.kind == "missing-payload":
                done = finding.version.id in forgotten
            elif finding.kind == "stuck-condemned":
                done = finding.version.id in swept or finding.version.id in forgotten
            elif finding.kind == "orphan":
                done = finding.orphan.uri in deleted
            elif finding.kind == "stale-intent":
                done = result.intents_cleared > 0
            elif finding.kind in JOURNAL_KINDS:
                done = not any(f"of {finding.version.label} " in problem for problem in problems)
        findings.append(replace(finding, repaired=True) if done else finding)
    report.findings = findings
    report.repair_result = result
    report.errors.extend(result.errors)
    return report
