"""Taking ownership of a store: ``artifactfs fsck --adopt`` rebuilds the
index from the store's journal, the manifest files beside its payloads
(after losing ``index.db``, restoring an older copy of it, or to move a
store to a new index) and then marks the store as this index's;
``artifactfs store claim`` marks it without re-indexing.

Adoption recreates what each manifest file records: the version (its
number, time, files), its tags and metadata, and the pipelines, runs,
step runs and links (inputs and outputs) that wrote and read it, in the
order they were first made; versions registered in place come back from
``.artifactfs-registered/``. It is idempotent: a payload whose uuid the
index already has is left as it is.

A payload it cannot account for (no manifest file, one that is unreadable,
changed since artifactfs wrote it (its seal), naming another folder, or
whose files are not there) is never garbage: it is kept and reported, and
the store stays unclaimed so gc never sweeps it; ``quarantine=True``
adopts each as a version of ``quarantine::<uuid>`` tagged ``keep`` and
``quarantine``, built from the files as they are.
"""

from __future__ import annotations

import datetime as dt
import posixpath
import uuid as uuid_module
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from artifactfs.errors import ArtifactfsError
from artifactfs.gc.orphans import unnamed_entries
from artifactfs.gc.ownership import FOREIGN, OWNED, claim, read_ownership
from artifactfs.gc.scan import FILE, FOLDER, LayoutEntry, scan_layout
from artifactfs.index.artifacts import NewVersion, check_name, insert_version
from artifactfs.index.db import Index
from artifactfs.index.intents import live_intent_folders
from artifactfs.index.generation import bump_generation
from artifactfs.index.journal import gather, journals_ahead, restore_lineage, restore_metadata
from artifactfs.index.models import VersionRow
from artifactfs.index.tags import attach
from artifactfs.index.models import PayloadKind, SaveType
from artifactfs.index.stores import index_identity
from artifactfs.stores.base import ArtifactStore
from artifactfs.stores.manifest import (
    REGISTERED_JOURNAL,
    JournalError,
    ManifestEntry,
    content_hash,
    manifest_entry,
    read_manifest_file,
)

NO_MANIFEST = "no manifest file beside it (saved before manifest files existed, by another tool, or it was deleted)"
QUARANTINE_PREFIX = "quarantine::"
QUARANTINE_TAGS = ("keep", "quarantine")
#: Versions recreated per transaction.
ADOPT_BATCH = 200


@dataclass
class AdoptReport:
    store: str
    adopted: list[str] = field(default_factory=list)  # "name:version" of the versions recreated
    #: "name:version" of versions the index had, given back the tags and links
    #: their manifest file records and the index lacked (an index restored from a backup).
    merged: list[str] = field(default_factory=list)
    known: int = 0  # payload folders the index already had
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (folder or entry, why): kept, blocks the claim
    quarantined: list[str] = field(default_factory=list)  # "quarantine::<uuid>:1" adopted from their files
    lineage: list[str] = field(default_factory=list)  # what could not be rebuilt of runs, steps and links
    runs: int = 0  # pipeline runs recreated
    steps: int = 0  # step runs recreated
    links: int = 0  # step-run links recreated
    claimed: bool = False
    reason: str | None = None  # why the store was not claimed


@dataclass
class _Found:
    """A payload with a manifest file that accounts for it."""

    entry: LayoutEntry | None
    uri: str
    record: dict[str, Any]
    files: list[ManifestEntry]


def adopt_store(index: Index, store: ArtifactStore, store_id: int, quarantine: bool = False) -> AdoptReport:
    """Rebuild, from their manifest files, every version of ``store`` the
    index does not have, with its tags, metadata and lineage; claim the
    store when nothing unaccounted for is left. Run under the pruner lease
    (no pass may sweep while rows are being recreated)."""
    report = AdoptReport(store.name)
    scan = scan_layout(store, None)
    with index.read() as session:  # after the listing: a save listed in flight has its intent in this read
        index_uuid = index_identity(session)
        in_flight = live_intent_folders(session, store_id, dt.timedelta(days=36500))
    report.skipped.extend((odd.where, odd.problem) for odd in scan.odd)
    folders = [e for e in scan.entries if e.kind == FOLDER and e.uri.rstrip("/").endswith(e.uuid)]
    registered = [e for e in scan.entries if e.kind == FILE and e.folder.startswith(REGISTERED_JOURNAL + "/")]
    unknown = unnamed_entries(index, folders, exact=False)  # by uuid: one query per 500
    report.known = len(folders) - len(unknown)
    unknown_registered = unnamed_entries(index, registered, exact=False)
    strangers = {e.uri for e in unknown + unknown_registered}
    _merge_ahead(index, store, [e for e in folders + registered if e.uri not in strangers], report)
    found: list[_Found] = []
    unaccounted: list[tuple[LayoutEntry, str]] = []
    for entry in unknown:
        if entry.folder in in_flight:
            continue  # a save of this index in flight: its commit names it
        result = _account_for(store, entry)
        if isinstance(result, str):
            unaccounted.append((entry, result))
        else:
            found.append(result)
    for entry in unknown_registered:
        in_place = _registered(store, entry)
        if isinstance(in_place, str):
            report.skipped.append((entry.uri, in_place))
        elif in_place is not None:
            found.append(in_place)
    found.sort(key=_creation_order)
    adopted = _insert_versions(index, store_id, found, report, unaccounted)
    _restore_lineage(index, adopted, report)
    for entry, why in unaccounted:
        if quarantine:
            _quarantine(index, store, store_id, entry, why, report)
        else:
            report.skipped.append((entry.uri, why))
    if report.skipped:
        report.reason = (f"{len(report.skipped)} entr{'y' if len(report.skipped) == 1 else 'ies'} could not be "
                         "accounted for: they are kept, and the store stays unclaimed so gc never removes them "
                         "(`fsck --adopt --quarantine` adopts them as quarantine::<uuid>)")
        return report
    ownership = read_ownership(store, index_uuid)
    report.claimed = ownership.state == OWNED or claim(store, index_uuid, force=True)
    return report


def _merge_ahead(index: Index, store: ArtifactStore, known: list[LayoutEntry], report: AdoptReport) -> None:
    """Versions the index has whose manifest file records tags or links the
    index lacks (``gc.journal_ahead``) get them back: the manifest file was
    written after the copy the index was restored from. Nothing the index
    has is removed."""
    records: dict[str, dict[str, Any]] = {}
    for entry in known:
        read = _read(store, entry, "its manifest file")
        if isinstance(read, tuple) and read[0].get("uuid") == entry.uuid:
            records[entry.uuid] = read[0]
    if not records:
        return
    with index.read() as session:
        ids = dict(session.execute(select(VersionRow.uuid, VersionRow.id).where(
            VersionRow.uuid.in_(sorted(records)))).all())
        ahead = journals_ahead(session, {ids[u]: record for u, record in records.items() if u in ids})
        gathered = gather(session, ahead)  # the few that are ahead: what they lack
    links: list[tuple[str, str, dict[str, Any]]] = []
    tags: dict[int, list[str]] = {}
    for version_uuid, record in records.items():
        found = gathered.get(ids.get(version_uuid, -1))
        if found is None:
            continue
        report.merged.append(f"{found.name}:{found.row.version}")
        missing = sorted({t for t in record.get("tags") or () if isinstance(t, str)} - set(found.tags))
        if missing:
            tags[found.row.id] = missing
        for direction, key in (("output", "producers"), ("input", "consumers")):
            links.extend((version_uuid, direction, link) for link in record.get(key) or [])
    if not report.merged:
        return
    with index.write() as session:
        for version_id, names in tags.items():
            attach(session, "version", [version_id], names)
        if links:
            result = restore_lineage(session, links)
            report.runs, report.steps, report.links = result.runs, result.steps, result.links
            report.lineage.extend(result.problems)
        else:
            bump_generation(session)


def _account_for(store: ArtifactStore, entry: LayoutEntry) -> _Found | str:
    """The manifest file of a payload folder, checked against the folder;
    the reason when it does not account for it."""
    read = _read(store, entry, "its manifest file")
    if not isinstance(read, tuple):
        return read or NO_MANIFEST
    record, files = read
    name = record.get("name")
    if record.get("uuid") != entry.uuid or name != entry.folder.rpartition("/")[0]:
        return f"its manifest file names {name!r}/{record.get('uuid')!r}, not this folder"
    why = _files_differ(files, _sizes(store, entry.native))
    if why:
        return why
    return _Found(entry, entry.uri.rstrip("/"), record, files)


def _registered(store: ArtifactStore, entry: LayoutEntry) -> _Found | str | None:
    """A version registered in place, from its manifest file under
    ``.artifactfs-registered/``; None when its path is gone (nothing to keep)."""
    read = _read(store, entry, "this manifest file of a path registered in place")
    if not isinstance(read, tuple):
        return read
    record, files = read
    relative = record.get("in_place")
    if record.get("uuid") != entry.uuid or not isinstance(relative, str) or not relative:
        return "this manifest file names no path registered in place"
    native = posixpath.join(store.root.rstrip("/"), relative)
    if record.get("payload_kind") == PayloadKind.FILE.value:
        try:
            info = store.fs.info(native)
        except FileNotFoundError:
            return None
        present = {posixpath.basename(native): int(info.get("size") or 0)}
    else:
        present = _sizes(store, native)
        if not present and not store.fs.exists(native):
            return None
    why = _files_differ(files, present)
    if why:
        return f"{relative} (registered in place): {why}"
    return _Found(None, store.flavor.to_uri(native), record, files)


def _read(store: ArtifactStore, entry: LayoutEntry,
          what: str) -> tuple[dict[str, Any], list[ManifestEntry]] | str | None:
    """``(record, files)`` of an entry's manifest file; None when there is
    none; else why ``what`` cannot be trusted."""
    try:
        return read_manifest_file(store, entry.folder)
    except FileNotFoundError:
        return None
    except (JournalError, ValueError, KeyError, TypeError) as exc:
        return f"{what} cannot be trusted ({exc})"


def _files_differ(files: list[ManifestEntry], present: dict[str, int]) -> str | None:
    missing = [f.path for f in files if present.get(f.path) != f.size]
    if missing:
        return f"{len(missing)} file(s) of its manifest are missing or changed (e.g. {missing[0]!r})"
    return None


def _creation_order(found: _Found) -> tuple:
    """Versions go back in the order they were made: by time, then number."""
    record = found.record
    number = record.get("version_number")
    return (str(record.get("created_at") or ""), number if isinstance(number, int) else -1, record.get("uuid", ""))


def _insert_versions(index: Index, store_id: int, found: list[_Found], report: AdoptReport,
                     unaccounted: list[tuple[LayoutEntry, str]]) -> list[_Found]:
    """One version row per accounted payload, with its tags and metadata, a
    batch per transaction; a batch that fails goes again one by one, and a
    version that cannot go in (its version string is another's now) is
    unaccounted for."""
    adopted: list[_Found] = []
    for start in range(0, len(found), ADOPT_BATCH):
        batch = found[start:start + ADOPT_BATCH]
        labels: list[str | None]
        try:
            with index.write() as session:
                labels = [_insert_one(session, store_id, item) for item in batch]
        except (ArtifactfsError, ValueError, KeyError, TypeError):
            labels = []
            for item in batch:  # again one by one: only the bad ones stay out
                try:
                    with index.write() as session:
                        labels.append(_insert_one(session, store_id, item))
                except (ArtifactfsError, ValueError, KeyError, TypeError) as exc:
                    labels.append(None)
                    why = exc.message if isinstance(exc, ArtifactfsError) else f"{type(exc).__name__}: {exc}"
                    if item.entry is not None:
                        unaccounted.append((item.entry, f"its manifest file cannot be adopted ({why})"))
                    else:
                        report.skipped.append((item.uri, f"registered in place, cannot be adopted ({why})"))
        for item, label in zip(batch, labels):
            if label is not None:
                report.adopted.append(label)
                adopted.append(item)
    return adopted


def _insert_one(session, store_id: int, item: _Found) -> str:
    record = item.record
    new = NewVersion(
        uuid=record["uuid"], name=check_name(record.get("name")), version=record.get("version"),
        store_id=store_id, uri=item.uri, payload_kind=record.get("payload_kind", "folder"),
        materializer=record.get("materializer"), data_type=record.get("data_type"),
        content_hash=record.get("content_hash"), save_type=record.get("save_type", "manual"),
        files=item.files, hash_algorithm=record.get("hash_algorithm", "sha256"),
        artifact_type=record.get("artifact_type", "DataArtifact"),
        visualizations=record.get("visualizations") or [], tags=list(record.get("tags") or []),
        created_at=dt.datetime.fromisoformat(record["created_at"]) if record.get("created_at") else None,
    )
    row = insert_version(session, new)
    restore_metadata(session, record.get("metadata") or [], version_id=row.id)
    return f"{new.name}:{row.version}"


def _restore_lineage(index: Index, adopted: list[_Found], report: AdoptReport) -> None:
    links = []
    for item in adopted:
        for direction, key in (("output", "producers"), ("input", "consumers")):
            for link in item.record.get(key) or []:
                links.append((item.record["uuid"], direction, link))
    if not links:
        return
    with index.write() as session:
        result = restore_lineage(session, links)
    report.runs, report.steps, report.links = (report.runs + result.runs, report.steps + result.steps,
                                               report.links + result.links)
    report.lineage.extend(result.problems)


def _quarantine(index: Index, store: ArtifactStore, store_id: int, entry: LayoutEntry, why: str,
                report: AdoptReport) -> None:
    """Adopt a payload nothing accounts for as ``quarantine::<uuid>``, from
    its files as they are (hashed here), protected by the ``keep`` tag."""
    try:
        prefix = entry.native.rstrip("/") + "/"
        files = [manifest_entry(store, prefix + relative, relative) for relative in sorted(_sizes(store, entry.native))]
        name = check_name(QUARANTINE_PREFIX + entry.uuid)
        new = NewVersion(
            uuid=entry.uuid if _is_uuid(entry.uuid) else str(uuid_module.uuid4()), name=name, version=None,
            store_id=store_id, uri=entry.uri.rstrip("/"), payload_kind=PayloadKind.FOLDER.value, materializer=None,
            data_type="pathlib.Path", content_hash=content_hash(files), save_type=SaveType.REGISTERED.value,
            files=files, tags=list(QUARANTINE_TAGS), metadata={"quarantined_because": why},
        )
        with index.write() as session:
            row = insert_version(session, new)
        report.quarantined.append(f"{name}:{row.version}")
    except (ArtifactfsError, OSError, ValueError) as exc:
        detail = exc.message if isinstance(exc, ArtifactfsError) else type(exc).__name__
        report.skipped.append((entry.uri, f"{why}; and it could not be quarantined ({detail})"))


def _is_uuid(text: str) -> bool:
    try:
        uuid_module.UUID(text)
        return True
    except ValueError:
        return False


def _sizes(store: ArtifactStore, native: str) -> dict[str, int]:
    prefix = native.rstrip("/") + "/"
    try:
        infos = store.fs.find(native, detail=True, withdirs=False)
    except FileNotFoundError:
        return {}
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
