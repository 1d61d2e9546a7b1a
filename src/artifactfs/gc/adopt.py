"""Taking ownership of a store: ``artifactfs fsck --adopt`` re-indexes the
payloads a store holds from the manifest files beside them (after losing
``index.db``, or to move a store to a new index) and then marks the store
as this index's; ``artifactfs store claim`` marks it without re-indexing.

Adoption recreates each version's row (name, version string, uuid,
materializer, data type, hash algorithm, content hash, manifest); lineage,
tags and metadata lived only in the lost index. It is idempotent: a payload
whose uuid the index already has is left as it is. A store is claimed only
when every payload folder in it ends up known to this index, so a folder
that could not be adopted is never swept as an orphan afterwards; the one
exception is a folder without a manifest file in a store that carries a
marker: every save since markers exist writes its manifest file before it
commits, so such a folder is a save that never committed, which the pruner
removes after the orphan grace.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from artifactfs.errors import ArtifactfsError
from artifactfs.gc.orphans import unnamed_entries
from artifactfs.gc.ownership import FOREIGN, OWNED, UNMARKED, claim, read_ownership
from artifactfs.gc.scan import FOLDER, LayoutEntry, scan_layout
from artifactfs.index.artifacts import NewVersion, check_name, insert_version
from artifactfs.index.db import Index
from artifactfs.index.intents import live_intent_folders
from artifactfs.index.stores import index_identity
from artifactfs.stores.base import ArtifactStore
from artifactfs.stores.manifest import read_manifest_file


NO_MANIFEST = "no manifest file beside it (saved before manifest files existed, or by another tool)"


@dataclass
class AdoptReport:
    store: str
    adopted: list[str] = field(default_factory=list)  # "name:version" of the versions recreated
    known: int = 0  # payload folders the index already had
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (folder or entry, why): blocks the claim
    uncommitted: list[str] = field(default_factory=list)  # folders of saves that never committed
    claimed: bool = False
    reason: str | None = None  # why the store was not claimed


def adopt_store(index: Index, store: ArtifactStore, store_id: int) -> AdoptReport:
    """Re-index every payload folder of ``store`` that has a manifest file and
    no row; claim the store when nothing unknown is left. Run under the
    pruner lease (no pass may sweep while rows are being recreated)."""
    report = AdoptReport(store.name)
    with index.read() as session:
        index_uuid = index_identity(session)
        in_flight = live_intent_folders(session, store_id, dt.timedelta(days=36500))
    marked = read_ownership(store, index_uuid).state != UNMARKED
    scan = scan_layout(store, None)
    report.skipped.extend((odd.where, odd.problem) for odd in scan.odd)
    folders = [e for e in scan.entries if e.kind == FOLDER and e.uri.rstrip("/").endswith(e.uuid)]
    unknown = unnamed_entries(index, folders)
    report.known = len(folders) - len(unknown)
    for entry in unknown:
        if entry.folder in in_flight:
            continue  # a save of this index in flight: its commit names it
        why = _adopt_one(index, store, store_id, entry, report)
        if why is NO_MANIFEST and marked:
            report.uncommitted.append(entry.uri)
        elif why is not None:
            report.skipped.append((entry.uri, why))
    if report.skipped:
        report.reason = (f"{len(report.skipped)} entr{'y' if len(report.skipped) == 1 else 'ies'} could not be "
                         "adopted: the store stays unclaimed, so gc never removes them")
        return report
    ownership = read_ownership(store, index_uuid)
    report.claimed = ownership.state == OWNED or claim(store, index_uuid, force=True)
    return report


def _adopt_one(index: Index, store: ArtifactStore, store_id: int, entry: LayoutEntry, report: AdoptReport) -> str | None:
    """Recreate one version from its manifest file; the reason when it cannot be."""
    try:
        record, files = read_manifest_file(store, entry.folder)
    except FileNotFoundError:
        return NO_MANIFEST
    except (ValueError, KeyError, TypeError) as exc:
        return f"its manifest file cannot be read ({type(exc).__name__}: {exc})"
    name = record.get("name")
    if record.get("uuid") != entry.uuid or name != entry.folder.rpartition("/")[0]:
        return f"its manifest file names {name!r}/{record.get('uuid')!r}, not this folder"
    present = _sizes(store, entry)
    missing = [f.path for f in files if present.get(f.path) != f.size]
    if missing:
        return f"{len(missing)} file(s) of its manifest are missing or changed (e.g. {missing[0]!r})"
    new = NewVersion(
        uuid=entry.uuid, name=check_name(name), version=record.get("version"), store_id=store_id,
        uri=entry.uri.rstrip("/"), payload_kind=record.get("payload_kind", "folder"),
        materializer=record.get("materializer"), data_type=record.get("data_type"),
        content_hash=record.get("content_hash"), save_type=record.get("save_type", "manual"), files=files,
        hash_algorithm=record.get("hash_algorithm", "sha256"),
        artifact_type=record.get("artifact_type", "DataArtifact"), visualizations=record.get("visualizations") or [],
    )
    try:
        with index.write() as session:
            row = insert_version(session, new)
            created = record.get("created_at")
            if created:
                row.created_at = dt.datetime.fromisoformat(created)
            report.adopted.append(f"{name}:{row.version}")
    except ArtifactfsError as exc:  # e.g. that version string is taken by another version now
        return exc.message
    return None


def _sizes(store: ArtifactStore, entry: LayoutEntry) -> dict[str, int]:
    prefix = entry.native.rstrip("/") + "/"
    infos = store.fs.find(entry.native, detail=True, withdirs=False)
    return {path[len(prefix):]: int(info.get("size") or 0) for path, info in infos.items()
            if path.startswith(prefix) and info.get("type") != "directory"}


@dataclass(frozen=True)
class ClaimResult:
    store: str
    already: bool  # the marker named this index before
    unknown: int  # payload folders this index does not know: gc removes them once they are old


def claim_store(index: Index, store: ArtifactStore, store_id: int, force: bool = False) -> ClaimResult:
    """Mark ``store`` as this index's (``artifactfs store claim``). A store
    another index owns needs ``force``; the caller says how many payload
    folders this index does not know (gc will remove them as orphans)."""
    with index.read() as session:
        index_uuid = index_identity(session)
    ownership = read_ownership(store, index_uuid)
    if ownership.state == OWNED:
        return ClaimResult(store.name, True, 0)
    if ownership.state == FOREIGN and not force:
        raise ArtifactfsError(
            ownership.reason or f"store {store.name!r} is owned by another index",
            f"if that index is gone for good: `artifactfs fsck --adopt --store {store.name}` re-indexes the "
            f"payloads first; `artifactfs store claim {store.name} --force` takes the store as it is",
        )
    scan = scan_layout(store, None)
    folders = [e for e in scan.entries if e.kind == FOLDER]
    unknown = len(unnamed_entries(index, folders))
    if not claim(store, index_uuid, force=True):
        raise ArtifactfsError(f"store {store.name!r}: its marker could not be written", "check the store's permissions")
    return ClaimResult(store.name, False, unknown)


__all__ = ["AdoptReport", "ClaimResult", "adopt_store", "claim_store"]
