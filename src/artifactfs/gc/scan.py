"""Listing a store's payload layout (``stores.layout``) for the orphan
sweep: which entries of ``<root>/<name>/`` are payload folders, their
``.viz`` folders or manifest files, and which entries are odd.

A remote store is listed concurrently, one name folder per request, and at
most ``limit`` name folders per pass (those listed longest ago first, as
the caller remembers them), so a pass over a store of a million versions
stays bounded; a local store is always listed whole (scandir is cheap).
An entry that cannot be read or is not what the layout expects (an
undecodable name, a file where a payload folder belongs, a permission
error) is reported as an :class:`OddEntry` and left alone: one odd entry
never stops a pass.
"""

from __future__ import annotations

import datetime as dt
import os
import posixpath
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from artifactfs.stores import layout
from artifactfs.stores.base import ArtifactStore
from artifactfs.stores.beneath import LinkFound

#: Name folders listed at once on a remote store.
LIST_WORKERS = 16
_NEVER = dt.datetime.min.replace(tzinfo=dt.timezone.utc)

FOLDER, FILE = "folder", "file"


class EntryProblem(Exception):
    """One entry of a store cannot be read or used: report it, go on."""


@dataclass(frozen=True)
class OddEntry:
    """Something the pass left alone and reports: where, and why."""

    store: str
    where: str  # printable (undecodable bytes escaped)
    problem: str

    def __str__(self) -> str:
        return f"{self.store}: {self.where}: {self.problem}"


@dataclass(frozen=True)
class LayoutEntry:
    """A payload folder, its ``.viz`` folder (both ``FOLDER``) or its
    manifest file (``FILE``) under ``<root>/<name>/`` (``stores.layout``)."""

    uri: str
    native: str
    uuid: str
    kind: str  # FOLDER or FILE
    folder: str  # the payload folder it belongs to, relative to the root: "<name>/<uuid>"
    folder_uri: str  # and its URI


@dataclass
class StoreScan:
    entries: list[LayoutEntry] = field(default_factory=list)
    odd: list[OddEntry] = field(default_factory=list)
    listed: list[str] = field(default_factory=list)  # name folders listed this pass
    total: int = 0  # name folders in the store

    @property
    def complete(self) -> bool:
        return len(self.listed) == self.total


def printable(text: str) -> str:
    """A name as it can be printed and logged: undecodable bytes escaped."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return os.fsencode(text).decode("utf-8", "backslashreplace")


def decodable(text: str) -> bool:
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def layout_kind(entry: str, is_dir: bool) -> tuple[str, str] | None:
    """``(uuid, FOLDER or FILE)`` when an entry of ``<root>/<name>/`` belongs
    to the layout (a folder where a manifest file belongs does not)."""
    found = layout.classify(entry)
    if found is None:
        return None
    uuid, what = found
    if what == layout.MANIFEST:
        return None if is_dir else (uuid, FILE)
    return uuid, FOLDER


def scan_layout(store: ArtifactStore, limit: int | None,
                marks: dict[str, dt.datetime] | None = None) -> StoreScan:
    """List the layout of ``store``. Listing the root failing means the store
    failed (the caller reports it); anything below the root that fails is an
    odd entry."""
    scan = StoreScan()
    names = _name_folders(store, scan)
    scan.total = len(names)
    chosen = names
    if limit is not None and not store.is_local and len(names) > limit:
        marks = marks or {}
        chosen = sorted(names, key=lambda n: (marks.get(n, _NEVER), n))[:limit]
    if store.is_local or len(chosen) <= 1:
        results = [_list_name(store, name) for name in chosen]
    else:
        with ThreadPoolExecutor(max_workers=min(LIST_WORKERS, len(chosen)),
                                thread_name_prefix="artifactfs-scan") as pool:
            results = list(pool.map(lambda n: _list_name(store, n), chosen))
    for name, (entries, odd) in zip(chosen, results):
        scan.entries.extend(entries)
        scan.odd.extend(odd)
        if not odd:  # a name folder that could not be read whole is listed again next pass
            scan.listed.append(name)
    return scan


def _name_folders(store: ArtifactStore, scan: StoreScan) -> list[str]:
    names = []
    for name, is_dir in _entries(store, store.root):
        if not is_dir:
            continue
        if not decodable(name):
            scan.odd.append(OddEntry(store.name, printable(posixpath.join(store.root, name)),
                                     "the folder name is not valid UTF-8; rename it (nothing in it is swept)"))
            continue
        names.append(name)
    return sorted(names)


def _list_name(store: ArtifactStore, name: str) -> tuple[list[LayoutEntry], list[OddEntry]]:
    parent = posixpath.join(store.root, name)
    entries: list[LayoutEntry] = []
    odd: list[OddEntry] = []
    try:
        listing = _entries(store, parent)
    except EntryProblem as exc:
        return [], [OddEntry(store.name, printable(parent), str(exc))]
    for entry, is_dir in listing:
        kind = layout_kind(entry, is_dir)
        native = posixpath.join(parent, entry)
        if kind is None:
            continue
        uuid, what = kind
        if what == FOLDER and not is_dir:
            odd.append(OddEntry(store.name, printable(native),
                                "a file (or link) where a payload folder belongs; left alone"))
            continue
        if not decodable(native):
            odd.append(OddEntry(store.name, printable(native), "the name is not valid UTF-8; left alone"))
            continue
        entries.append(LayoutEntry(store.flavor.to_uri(native), native, uuid, what, layout.payload_folder(name, uuid),
                                   store.flavor.to_uri(posixpath.join(parent, uuid))))
    return entries, odd


def _entries(store: ArtifactStore, native: str) -> list[tuple[str, bool]]:
    """``(name, is a real folder)`` of the entries of a folder; symlinks are
    never folders. A missing folder has none. Raises :class:`EntryProblem`
    for a folder that cannot be read (root failures propagate to the caller
    as they are: the store failed)."""
    if store.is_local:
        try:  # beneath the root's descriptor: a name folder swapped for a link is never listed
            return [(e.name, e.kind == "folder") for e in store.beneath.scandir(store.local_relative(native))]
        except LinkFound as exc:
            raise EntryProblem(f"is a symbolic link ({exc.path}); never followed, left alone") from None
        except (FileNotFoundError, NotADirectoryError):
            return []
        except PermissionError as exc:
            if native == store.root:
                raise
            raise EntryProblem(f"cannot be read ({exc.strerror}); left alone") from exc
    try:
        store.fs.invalidate_cache(native)
        infos = store.fs.ls(native, detail=True)
    except FileNotFoundError:
        return []
    except PermissionError as exc:
        if native == store.root:
            raise
        raise EntryProblem(f"cannot be listed ({type(exc).__name__}); left alone") from exc
    found: dict[str, bool] = {}
    for info in infos:
        name = posixpath.basename(info["name"].rstrip("/"))
        if name and posixpath.join(native, name) != native:
            # An object store may show a key and a prefix of one name: the prefix wins.
            found[name] = found.get(name, False) or info.get("type") == "directory"
    return sorted(found.items())


__all__ = [
    "EntryProblem",
    "FILE",
    "FOLDER",
    "LayoutEntry",
    "OddEntry",
    "StoreScan",
    "decodable",
    "printable",
    "scan_layout",
]
