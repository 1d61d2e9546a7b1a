"""Finding the orphan payloads of one store: entries of the payload layout
that no row names, that no live write intent covers, and that were last
written before the cutoff; only in a store this index owns (its marker).

Shared by the planner (``gc.plan``) and ``fsck``. Only reads: the marker
is written, stale intents cleared and orphans deleted by ``gc.execute``.

Write intents (``index.intents``) decide what is in flight: a folder whose
intent is younger than the orphan age, or whose writer still runs on this
machine, is never an orphan. An older intent whose writer is dead (or on
another machine: presumed dead once older than the orphan age) is stale:
its folder is an orphan like any other once it is old, and the intent is
cleared with it; a stale intent whose folder is gone is simply cleared.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from artifactfs.gc.ownership import (
    BEHIND,
    FOREIGN,
    UNMARKED,
    Ownership,
    behind_reason,
    decide_unmarked,
    read_ownership,
)
from artifactfs.gc.payloads import entry_age
from artifactfs.gc.scan import FILE, FOLDER, EntryProblem, LayoutEntry, OddEntry, printable, scan_layout
from artifactfs.index.db import Index
from artifactfs.index.gc import chunks, named_uuids, scan_marks, uri_named
from artifactfs.index.holders import alive_here
from artifactfs.index.intents import live_intent_folders, stale_intents
from artifactfs.stores import layout
from artifactfs.stores.base import ArtifactStore
from artifactfs.stores.manifest import read_manifest_file


@dataclass(frozen=True, slots=True)
class OrphanRef:
    """A layout entry that no row names, older than the orphan cutoff."""

    store_id: int
    store: str
    uri: str
    uuid: str
    files: int
    bytes: int
    newest: dt.datetime
    kind: str = FOLDER  # FOLDER, or FILE for a manifest file
    intent: str | None = None  # the stale write intent cleared with it


@dataclass(frozen=True)
class StaleIntent:
    store_id: int
    uuid: str
    folder: str


@dataclass
class StoreOrphans:
    store_id: int
    ownership: Ownership
    orphans: list[OrphanRef] = field(default_factory=list)
    young: list[str] = field(default_factory=list)  # URIs of unnamed entries still too young or in flight
    odd: list[OddEntry] = field(default_factory=list)
    listed: list[str] = field(default_factory=list)  # name folders listed
    total: int = 0  # name folders in the store
    gone_intents: list[StaleIntent] = field(default_factory=list)  # stale, their folder is gone


def find_orphans(index: Index, store: ArtifactStore, store_id: int, index_uuid: str, cutoff: dt.datetime,
                 orphan_age: dt.timedelta, limit: int | None) -> StoreOrphans:
    """The orphans of one store. ``cutoff``: entries written since are young;
    ``orphan_age``: intents younger than this are live. Raises what the
    flavor raised when the store cannot be read at all."""
    ownership = read_ownership(store, index_uuid)
    found = StoreOrphans(store_id, ownership)
    if ownership.state == FOREIGN:
        return found
    marks = {}
    if limit is not None and not store.is_local:
        with index.read() as session:
            marks = scan_marks(session, store_id)
    scan = scan_layout(store, limit, marks)
    # The write intents are read after the listing, never before: a save
    # records its intent before it makes its folder, so every folder listed
    # that is in flight has its intent in this read. (Read before, a save
    # begun in between, its files carrying old times, was an orphan.)
    with index.read() as session:
        in_flight = live_intent_folders(session, store_id, orphan_age)
        stale = stale_intents(session, store_id, orphan_age)
    in_flight |= {i.folder for i in stale if alive_here(i.holder)}
    dead = {i.folder: StaleIntent(store_id, i.uuid, i.folder) for i in stale if not alive_here(i.holder)}
    found.odd, found.listed, found.total = scan.odd, scan.listed, scan.total
    entries = scan.entries + _intent_entries(store, dead, scan, found)
    # An unmarked store is only counted (never swept): the uuid alone tells, one query per batch.
    unknown = unnamed_entries(index, entries, exact=ownership.state != UNMARKED)
    mine = [e for e in unknown if e.folder not in in_flight]
    found.young = [e.uri for e in unknown if e.folder in in_flight]
    if ownership.state == UNMARKED:
        found.ownership = decide_unmarked(store, len(mine), scan.complete)
        if not found.ownership.sweeps:
            return found
    proof = known_to_store(store, [e for e in mine if e.folder not in dead], scan.entries)
    if proof is not None:  # the index is behind the store: nothing it does not know is an orphan
        found.ownership = Ownership(BEHIND, behind_reason(store, proof), ownership.marker)
        found.young.extend(e.uri for e in mine)
        return found
    for entry in mine:
        try:
            age = entry_age(store, entry)
        except EntryProblem as exc:
            found.odd.append(OddEntry(store.name, printable(entry.native), str(exc)))
            continue
        if age.newest is None or age.newest >= cutoff:
            found.young.append(entry.uri)
            continue
        intent = dead.get(entry.folder)
        found.orphans.append(OrphanRef(store_id, store.name, entry.uri, entry.uuid, age.files, age.bytes,
                                       age.newest, entry.kind, intent.uuid if intent else None))
    return found


def known_to_store(store: ArtifactStore, unknown: list[LayoutEntry], listed: list[LayoutEntry]) -> str | None:
    """The URI of a payload folder that proves the store knows more than
    the index: no row names it and no write intent covers it (``unknown``),
    yet a manifest file beside it names it. A save writes its manifest file
    under its write intent, so a crashed save (its intent still there) is no
    proof; a committed version is. One read per candidate, up to the first
    proof; None when there is none."""
    with_manifest = {e.folder for e in listed if e.kind == FILE}
    for entry in unknown:
        if entry.kind != FOLDER or entry.uri.endswith(layout.VIZ_SUFFIX) or entry.folder not in with_manifest:
            continue
        try:
            record, _ = read_manifest_file(store, entry.folder)
        except Exception:  # noqa: BLE001 - unreadable: no proof (fsck reports the file)
            continue
        if record.get("uuid") == entry.uuid and record.get("name") == entry.folder.rpartition("/")[0]:
            return entry.uri
    return None


def _intent_entries(store: ArtifactStore, dead: dict[str, StaleIntent], scan, found: StoreOrphans) -> list[LayoutEntry]:
    """The entries of stale intents' folders in name folders this pass did
    not list (a bounded scan skips some); stale intents whose folder is gone
    are noted for clearing."""
    listed = set(scan.listed)
    seen = {e.folder for e in scan.entries}
    extra: list[LayoutEntry] = []
    for folder, intent in sorted(dead.items()):
        if folder in seen:
            continue
        name, _, uuid = folder.rpartition("/")  # layout.payload_folder(name, uuid)
        entries = [] if name in listed else _entries_of(store, folder, uuid)
        if entries is None:
            continue  # cannot tell now: the intent stays for a later pass
        if entries:
            extra.extend(entries)
        else:
            found.gone_intents.append(intent)
    return extra


def _entries_of(store: ArtifactStore, folder: str, uuid: str) -> list[LayoutEntry] | None:
    """The layout entries of one payload folder that exist, looked up
    directly; None when the store cannot tell."""
    entries = []
    try:
        folder_uri = store.uri(folder)
        for path, what in layout.payload_entries(folder):
            kind = FILE if what == layout.MANIFEST else FOLDER
            native = store.confine(path)
            if store.fs.isdir(native) if kind == FOLDER else store.fs.isfile(native):
                entries.append(LayoutEntry(store.flavor.to_uri(native), native, uuid, kind, folder, folder_uri))
    except Exception:  # noqa: BLE001 - any flavor error, or a folder name the store refuses
        return None
    return entries


def unnamed_entries(index: Index, entries: list[LayoutEntry], exact: bool = True) -> list[LayoutEntry]:
    """The entries no version row names (by uuid, or, when ``exact``, by a
    payload overlapping the folder: one more query per unnamed entry)."""
    unnamed: list[LayoutEntry] = []
    for batch in chunks(entries):
        with index.read() as session:
            named = named_uuids(session, sorted({e.uuid for e in batch}))
            overlap: dict[str, bool] = {}
            for entry in batch:
                if entry.uuid in named:
                    continue
                if not exact:
                    unnamed.append(entry)
                    continue
                if entry.folder_uri not in overlap:
                    overlap[entry.folder_uri] = uri_named(session, entry.folder_uri) is not None
                if not overlap[entry.folder_uri]:
                    unnamed.append(entry)
    return unnamed


__all__ = ["OrphanRef", "StaleIntent", "StoreOrphans", "find_orphans", "unnamed_entries"]
