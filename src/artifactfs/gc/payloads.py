"""The pruner's side of the stores: how old a payload folder is, whether a
live row still owns a path, and idempotent deletion of orphans (a version's
payload is deleted by ``index.sweep``, shared with the API's explicit
deletes). Which entries follow the payload layout is ``gc.scan``'s job.
Nothing here writes to the index.
"""

from __future__ import annotations

import bisect
import datetime as dt
import posixpath
from dataclasses import dataclass
from typing import Any

from artifactfs.errors import ArtifactfsError
from artifactfs.gc.scan import FILE, EntryProblem, LayoutEntry
from artifactfs.index.db import Index
from artifactfs.index.gc import live_owner_uris, live_owner_uris_since, store_rows
from artifactfs.index.hosts import ForeignStoreError, check_usable
from artifactfs.index.models import Store
from artifactfs.index.sql import utc
from artifactfs.index.stores import OpenStores
from artifactfs.index.sweep import delete_payload, remove_quietly, rmtree_quietly  # noqa: F401 - the pruner's names
from artifactfs.stores.base import ArtifactStore
from artifactfs.stores.beneath import LinkFound


class StoreFailure(ArtifactfsError):
    """A store could not be listed or could not delete something."""

    def __init__(self, store: str, message: str, hint: str | None = None) -> None:
        self.store = store
        self.problem = message
        super().__init__(f"store {store!r}: {message}", hint)


@dataclass(frozen=True)
class StoreProblem:
    store: str
    message: str

    def __str__(self) -> str:
        return f"{self.store}: {self.message}"


def describe_error(store: ArtifactStore | None, exc: BaseException) -> str:
    if isinstance(exc, LinkFound):  # the one line a report needs: which path, and that it was not followed
        return f"{exc.path} is a symbolic link, never followed"
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    text = text.splitlines()[0][:300]
    return store.redact(text) if store is not None else text


class StoreCache:
    """The stores of one pass, opened once each (``index.stores.OpenStores``,
    with the rows as they were when the pass started); a store that failed
    to open keeps failing with the same message. ``elsewhere``: stores this machine
    leaves alone (another machine's local store, or one with no recorded
    owner: see ``index.hosts``), with the reason; they are not failures."""

    def __init__(self, index: Index) -> None:
        with index.read() as session:
            self.rows: dict[int, Store] = {row.id: row for row in store_rows(session)}
        self._open = OpenStores(index, pruning=True, recheck=None)
        self._broken: dict[int, str] = {}
        self.elsewhere: dict[int, str] = {}
        for store_id, row in self.rows.items():
            try:
                check_usable(row, pruning=True)
            except ForeignStoreError as exc:
                self.elsewhere[store_id] = exc.message

    def here(self, store_id: int) -> bool:
        return store_id not in self.elsewhere

    def name(self, store_id: int) -> str:
        row = self.rows.get(store_id)
        return row.name if row is not None else f"#{store_id}"

    def get_if_open(self, store_id: int) -> ArtifactStore | None:
        """The store if it was opened (for redacting its secrets from a message)."""
        return self._open.get_if_open(store_id)

    def get(self, store_id: int) -> ArtifactStore:
        if store_id in self._broken:
            raise StoreFailure(self.name(store_id), self._broken[store_id])
        try:
            # pruning=True: never another machine's local store, nor one with no recorded owner.
            store = self._open.open_row(self.rows[store_id])
            store.fs  # noqa: B018 - build the filesystem now: a missing library fails here
        except Exception as exc:  # noqa: BLE001 - any flavor library error
            self._broken[store_id] = describe_error(None, exc)
            raise StoreFailure(self.name(store_id), self._broken[store_id]) from exc
        return store


# -- how old a payload is -------------------------------------------------------------------


@dataclass(frozen=True)
class FolderAge:
    newest: dt.datetime | None  # None: nothing with a time inside (treated as young)
    files: int
    bytes: int


def _timestamp(info: dict[str, Any]) -> dt.datetime | None:
    for key in ("LastModified", "last_modified", "updated", "mtime", "timeCreated", "creation_time"):
        value = info.get(key)
        if value is None:
            continue
        if isinstance(value, (int, float)):
            return dt.datetime.fromtimestamp(value, dt.timezone.utc)
        if isinstance(value, str):
            try:
                value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                continue
        if isinstance(value, dt.datetime):
            return utc(value)
    return None


def folder_age(store: ArtifactStore, native: str) -> FolderAge:
    """The newest modification time inside a folder (local: every file and
    folder, the folder itself included; object stores: every object under
    the prefix), with its file count and bytes. A part that cannot be read
    raises :class:`EntryProblem`: an age that skipped it could be wrong."""
    if store.is_local:
        try:
            return _local_age(store, native)
        except LinkFound as exc:  # swapped for a link: reported, never followed
            raise EntryProblem(f"is a symbolic link ({exc.path}); left alone") from None
    try:
        infos = store.fs.find(native, detail=True, withdirs=False)
    except FileNotFoundError:
        return FolderAge(None, 0, 0)
    except PermissionError as exc:
        raise EntryProblem(f"cannot be listed ({type(exc).__name__}); left alone") from exc
    newest: dt.datetime | None = None
    files = size = 0
    for info in infos.values():
        if info.get("type") == "directory":
            continue
        files += 1
        size += int(info.get("size") or 0)
        stamp = _timestamp(info)
        if stamp is None:
            return FolderAge(None, files, size)  # cannot tell: never old enough
        newest = stamp if newest is None else max(newest, stamp)
    return FolderAge(newest, files, size)


def _local_age(store: ArtifactStore, native: str) -> FolderAge:
    """Walked beneath the store's root descriptor: a link inside is an
    entry with its own time, never followed (``stores.beneath``)."""
    root, relative = store.beneath, store.local_relative(native)
    try:
        newest = root.lstat(relative).st_mtime
    except FileNotFoundError:
        return FolderAge(None, 0, 0)
    files = size = 0
    errors: list[OSError] = []
    for _folder, entries in root.walk(relative, on_link=lambda _path: None, on_error=errors.append):
        for entry in entries:
            newest = max(newest, entry.stat.st_mtime)
            if entry.kind != "folder":
                files += 1
                size += entry.stat.st_size if entry.kind == "file" else 0
    problems = [e for e in errors if not isinstance(e, FileNotFoundError)]
    if problems:
        raise EntryProblem(f"cannot be read whole ({problems[0].strerror or problems[0]}); left alone")
    return FolderAge(dt.datetime.fromtimestamp(newest, dt.timezone.utc), files, size)


def entry_age(store: ArtifactStore, entry: LayoutEntry) -> FolderAge:
    """The age of a layout entry: a payload folder, or a manifest file."""
    if entry.kind != FILE:
        return folder_age(store, entry.native)
    if store.is_local:
        try:
            st = store.beneath.lstat(store.local_relative(entry.native))
        except FileNotFoundError:
            return FolderAge(None, 0, 0)
        return FolderAge(dt.datetime.fromtimestamp(st.st_mtime, dt.timezone.utc), 1, st.st_size)
    try:
        info = store.fs.info(entry.native)
    except FileNotFoundError:
        return FolderAge(None, 0, 0)
    return FolderAge(_timestamp(info), 1, int(info.get("size") or 0))


# -- who owns a path ------------------------------------------------------------------------


class LiveOwners:
    """The uris of live registered versions (the only payloads that can
    overlap another's): a snapshot plus every row inserted since, re-read
    with :meth:`refresh` before each batch of deletions. Rows only leave the
    live state, and a row's uri changes only when ``migrate`` re-points it to
    a fresh ``<root>/<name>/<uuid>`` folder, which overlaps no other payload;
    so the snapshot errs only towards keeping data."""

    def __init__(self, index: Index) -> None:
        self.index = index
        with index.read() as session:
            self._watermark, uris = live_owner_uris(session)
        self._uris = sorted(set(uris))
        self._set = set(self._uris)

    def refresh(self) -> None:
        with self.index.read() as session:
            self._watermark, uris = live_owner_uris_since(session, self._watermark)
        for uri in uris:
            if uri not in self._set:
                self._set.add(uri)
                bisect.insort(self._uris, uri)

    def owner_of(self, uri: str) -> str | None:
        """A live uri equal to ``uri``, above it or below it; None if there is none."""
        base = uri.rstrip("/")
        if base in self._set:
            return base
        head = base
        while True:
            parent = posixpath.dirname(head)
            if not parent or parent == head:
                break
            if parent in self._set:
                return parent
            head = parent
        prefix = base + "/"
        i = bisect.bisect_left(self._uris, prefix)
        if i < len(self._uris) and self._uris[i].startswith(prefix):
            return self._uris[i]
        return None


# -- deleting -------------------------------------------------------------------------------


def delete_entry(store: ArtifactStore, entry_uri: str, kind: str) -> bool:
    """Delete an orphan: a payload folder, or a manifest file."""
    return remove_quietly(store, entry_uri) if kind == FILE else rmtree_quietly(store, entry_uri)
