"""The write protocol of DESIGN.md, steps 1-4, in one place: a
:class:`WriteBatch` is the only code path by which ``save_artifact``,
``register_artifact``, the pipeline runner's outputs and ``migrate`` put a
payload in a store and commit it. It owns:

1. the write intents, recorded in one transaction of their own before a
   byte of any payload is written, each numbering its version (so the
   manifest file beside the payload is written once, with its number);
2. the fresh payload folders ``<root>/<name>/<uuid>/`` (``stores.layout``),
   made beneath the store root's descriptor on a local store, no link
   followed, and held open while they are written;
3. the manifest file beside each folder, then every payload file, folder
   and manifest file made durable as one batch of fsyncs, started before the
   commit's transaction is prepared and waited for inside it;
4. the commit: one transaction runs the caller's changes (insert the
   versions and their links, or re-point a migrated row), clears the
   intents and, last, checks that every payload is durable and still
   there; the fault point before it keeps its name.

A batch that fails removes its folders and then their intents at once
(:meth:`WriteBatch.abandon`); after a failed commit a folder goes only once
the index says no row names it. A crash leaves both to the pruner, which
never touches a folder whose intent is younger than its floor; the intent
names the version's uuid (its folder) and number, so a numbered manifest
file with an intent is a crashed save, and one with neither row nor
intent is not.

What goes into a payload is decided below the batch: a materialized value
(:func:`write_value`), a copy of existing files (:func:`copy_into`), or a
user's own file or folder adopted in place (:func:`manifest_in_place`, no
intent, never removed).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import os
import posixpath
import stat
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any, TypeVar, cast

from artifactfs.errors import ArtifactfsError
from artifactfs.faults import fault_point
from artifactfs.index import find_store_row, get_index
from artifactfs.index.db import Index
from artifactfs.index.artifacts import (
    NewVersion,
    check_metadata,
    check_name,
    insert_versions,
    metadata_value,
    reserve_versions,
    version_at,
)
from artifactfs.index.intents import PlannedWrite, clear_intents, record_intents
from artifactfs.index.models import ArtifactType, PayloadKind, SaveType
from artifactfs.index.sweep import remove_quietly, rmtree_quietly
from artifactfs.materializers import (
    BaseMaterializer,
    BuiltInMaterializer,
    ContainerMaterializer,
    MaterializerError,
    import_by_name,
    materializer_for_value,
    qualified_name,
)
from artifactfs.materializers.builtin import is_jsonable
from artifactfs.stores import layout
from artifactfs.stores.base import COPY_CHUNK, ArtifactStore
from artifactfs.stores.beneath import LinkFound, lstat_below, open_below, open_folder, still_there, within
from artifactfs.stores.durable import entry_durable, folder_identity, fsync_beneath, fsync_fd, fsync_root, start_sync
from artifactfs.stores.localfiles import open_beneath, resolve_named
from artifactfs.stores.manifest import (
    DEFAULT_FILE_MODE,
    ManifestEntry,
    RecordingStore,
    content_hash,
    journal_folder,
    journal_record,
    manifest_bytes,
    manifest_entry,
    write_manifest_file,
)

T = TypeVar("T")
#: The manifest file's permission bits (before the umask), as ``open`` gives.
MANIFEST_FILE_MODE = 0o666


class PayloadMissingError(ArtifactfsError):
    """A payload vanished between being written and being committed."""




def store_row_id(session, store: ArtifactStore) -> int:
    """The index id of a store (opened stores know it already)."""
    return getattr(store, "index_id", None) or find_store_row(session, store.name).id


@dataclass(eq=False)
class Payload:
    """One fresh payload folder of a batch, under its write intent."""

    uuid: str
    name: str
    folder: str  # relative to the store root: layout.payload_folder(name, uuid)
    native: str  # in the store's filesystem
    uri: str
    version: str | None  # numbered with the intent; None: not a new version (migrate's copies)
    artifact_id: int | None
    intent_id: str = ""
    label: str = ""  # how errors name it
    folder_fd: int = -1  # local stores: the folder and its name folder, held open
    name_fd: int = -1
    files: list[ManifestEntry] = field(default_factory=list)  # what the check and the fsyncs cover
    new: NewVersion | None = None  # the version it holds: its manifest file says what the row will
    record: dict[str, Any] | None = None  # or this record (migrate); neither: no manifest file


class WriteBatch:
    """Steps 1-4 of the write protocol for the payloads of one commit, in
    one store. Use as a context manager: leaving it by an exception abandons
    every payload not committed (see the module docstring)::

        with WriteBatch(store) as batch:
            payload, = batch.begin([("model", None)])          # step 1
            new, _ = write_value(batch, payload, value, cls)     # steps 2-3
            row, = batch.commit_versions()                       # steps 3-4
    """

    def __init__(self, store: ArtifactStore, fault: str = "before_commit", index: Index | None = None) -> None:
        """``fault``: the name of the fault point just before the commit's
        transaction; ``index``: the process's index (``get_index()``), when
        the caller holds it already."""
        self.store = store
        self.fault = fault
        self.index = index or get_index()
        self.payloads: list[Payload] = []
        self.adopted: list[NewVersion] = []  # registered in place: checked, never removed
        self._store_id: int | None = None
        self._created: dt.datetime | None = None
        self._root_fd = -1
        self._syncs: list = []  # fsyncs started (durable.SyncJob), waited for before the commit
        self._done = False

    def __enter__(self) -> WriteBatch:
        return self

    def __exit__(self, kind, exc, tb) -> None:
        try:
            if kind is not None and not self._done:
                self.abandon()
        finally:
            self.close()

    # -- step 1 ------------------------------------------------------------------------

    def begin(self, wanted: list[tuple[str, str | None]], numbered: bool = True,
              uuids: list[str] | None = None) -> list[Payload]:
        """Record the write intents of fresh payload folders for ``(artifact
        name, version or None)``, numbering each version (``numbered``; a
        version taken already is refused here, before any byte is written),
        in one transaction committed before returning; then make the
        folders. ``uuids``: the folders' uuids (a migrated version keeps its
        own). On SQLite the intents' commit is not fsynced: a power cut that
        loses it also stops the writer, and the orphan grace covers what it
        leaves."""
        if not wanted:
            return []
        for name, _ in wanted:  # a folder name: one component, no link walked through a '/'
            check_name(name)
        uuids = uuids or [str(uuid.uuid4()) for _ in wanted]
        folders = [layout.payload_folder(name, version_uuid) for (name, _), version_uuid in zip(wanted, uuids)]
        if self._store_id is None:
            self._store_id = getattr(self.store, "index_id", None) or self._looked_up_store_id()
        reserved, intent_ids = self.index.run_write(self._record, wanted, folders, numbered, durable=False, core=True)
        fresh = []
        for (name, _), version_uuid, folder, (artifact_id, version), intent_id in zip(
                wanted, uuids, folders, reserved, intent_ids):
            native = self._native(folder)
            payload = Payload(version_uuid, name, folder, native, self.store.flavor.to_uri(native), version,
                              artifact_id, intent_id, repr(name))
            self.payloads.append(payload)
            fresh.append(payload)
        fault_point("after_write_intent")
        if self.store.is_local:
            for payload in fresh:
                self._make_folder(payload)
        return fresh

    def _record(self, session, wanted: list[tuple[str, str | None]], folders: list[str], numbered: bool):
        """The intents' transaction, on a Core connection (``Index.write_core``;
        run again after a deadlock: database work only)."""
        assert self._store_id is not None, "begin() looked it up"
        reserved = reserve_versions(session, wanted) if numbered else [(None, None)] * len(wanted)
        writes = [PlannedWrite(folder, artifact_id, version) for folder, (artifact_id, version) in zip(folders, reserved)]
        intent_ids, started = record_intents(session, self._store_id, writes)
        # The versions' created_at: when their intents started, on the index's
        # clock (``index.clock``); the manifest files and the rows say the same.
        self._created = started
        return reserved, intent_ids

    def _looked_up_store_id(self) -> int:
        with self.index.read() as session:
            return store_row_id(session, self.store)

    def _native(self, folder: str) -> str:
        """A layout folder in the store's filesystem. Built, not resolved:
        its name and uuid are single checked components, and a local store's
        folders are made beneath the root's descriptor without following a link."""
        if self.store.is_local:
            return self.store.root.rstrip("/") + "/" + folder
        return self.store.resolve(folder)

    def _make_folder(self, payload: Payload) -> None:
        if self._root_fd < 0:
            self._root_fd = self.store.beneath.held_fd()
        payload.name_fd = open_folder(self._root_fd, payload.name, create=True)
        payload.folder_fd = open_folder(payload.name_fd, payload.uuid, create=True)

    # -- steps 2 and 3: what goes into a payload ---------------------------------------------

    def recorder(self, payload: Payload) -> RecordingStore:
        """The store as a materializer or a copy writes ``payload`` through it:
        every file hashed as written, created beneath the folder's descriptor."""
        return RecordingStore(self.store, payload.folder, durable=True, native=payload.native,
                              dir_fd=payload.folder_fd if payload.folder_fd >= 0 else None)

    def written(self, payload: Payload, files: list[ManifestEntry], new: NewVersion | None = None,
                record: dict[str, Any] | None = None) -> None:
        """``payload`` holds ``files``: the version ``new`` (its manifest file
        is written from it at commit), or, for a payload that is not a new
        version, ``record`` (None: no manifest file). Its files and folders
        are made durable at :meth:`commit`, with the manifest files: fsyncs
        issued together share the filesystem's journal commits (a large file
        streams to the disk as it is written: ``stores.durable.start_writeback``)."""
        payload.files, payload.new, payload.record = list(files), new, record

    def adopt(self, new: NewVersion) -> None:
        """A user's own file or folder registered in place: committed with the
        batch, checked like any payload, never written to or removed."""
        self.adopted.append(new)

    # -- steps 3 and 4 -----------------------------------------------------------------------

    def commit(self, transaction: Callable[..., T], core: bool = False) -> T:
        """Write each manifest file beside its folder, then start making every
        payload and manifest file durable, all at once; then, at the fault point, one transaction runs
        ``transaction(session)`` (it may run again after a deadlock: only
        database work), clears the intents and checks the payloads, last.
        ``core``: ``transaction`` runs Core statements only, and gets a Core
        ``Connection`` instead of an ORM session (``Index.write_core``).
        On failure everything fresh is abandoned (see :meth:`abandon`)."""
        created = self._created  # set by begin(), which every payload passed
        for payload in self.payloads:
            assert created is not None, "begin() dated every payload"
            self._write_manifest(payload, created)
        if self.store.is_local:
            self._syncs.append(start_sync([task for p in self.payloads if p.folder_fd >= 0 for task in _payload_syncs(p)]
                                          + self._beside_syncs()))
        fault_point(self.fault)
        result = self.index.run_write(self._transaction, transaction, core=core)
        self._done = True
        return result

    def commit_versions(self, link: Callable | None = None) -> list:
        """:meth:`commit` of every version the batch holds (fresh payloads in
        the order begun, then those adopted): inserted, then
        ``link(session, rows)`` (step-run links). Returns the rows, detached.
        Without links or tags (ORM work) the transaction runs on a Core
        connection: the inserts are Core statements (``index.statements``)."""
        news = [p.new for p in self.payloads if p.new is not None] + self.adopted
        core = link is None and self._store_id is not None and not any(new.tags for new in news)

        def insert(session) -> list:
            store_id = self.store_id(session)
            for new in news:
                new.store_id = store_id
            rows = insert_versions(session, news)
            if link is not None:
                link(session, rows)
            return rows

        rows = self.commit(insert, core=core)
        for new, row in zip(news[len(news) - len(self.adopted):], rows[len(news) - len(self.adopted):]):
            journal_in_place(self.store, new, row)
        return rows

    def store_id(self, session) -> int:
        """The store's index id (known since :meth:`begin`, else looked up)."""
        if self._store_id is None:
            self._store_id = store_row_id(session, self.store)
        return self._store_id

    def _write_manifest(self, payload: Payload, created: dt.datetime) -> None:
        """The manifest file beside the folder: what ``fsck --adopt`` reads
        after losing the index. Written once, with the version's number."""
        if payload.new is not None:
            payload.new.version, payload.new.artifact_id = payload.version, payload.artifact_id
            payload.new.created_at = created
            record = manifest_record(payload.new, payload.new.name, payload.version, created,
                                     payload.new.visualizations)
        elif payload.record is not None:
            record = payload.record
        else:
            return
        if payload.name_fd < 0:
            write_manifest_file(self.store, payload.folder, payload.files, record)
            return
        fd = open_below(payload.name_fd, payload.uuid + layout.MANIFEST_SUFFIX,
                        os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode=MANIFEST_FILE_MODE)
        with open(fd, "wb") as f:
            f.write(manifest_bytes(payload.files, record))

    def _beside_syncs(self) -> list[Callable[[], None]]:
        """The fsyncs that make what lies beside the payload folders durable,
        once the manifest files are written (the folders' own are
        ``_payload_syncs``): each manifest file, each name folder (once) and
        the root."""
        tasks: list[Callable[[], None]] = []
        names: dict[str, int] = {}
        for p in self.payloads:
            if p.folder_fd < 0:
                continue
            if p.new is not None or p.record is not None:
                tasks.append(functools.partial(fsync_beneath, p.name_fd, p.uuid + layout.MANIFEST_SUFFIX))
            names.setdefault(p.name, p.name_fd)
        tasks.extend(functools.partial(fsync_fd, fd) for fd in names.values())
        # The root only when a name folder's entry in it may not be on disk yet
        # (made by this save, or by one still in flight): ``stores.durable``.
        identities = [folder_identity(fd) for fd in names.values()]
        if not all(entry_durable(identity) for identity in identities):
            tasks.append(functools.partial(fsync_root, self._root_fd, identities))
        return tasks

    def _wait_durable(self) -> None:
        for job in self._syncs:
            job.wait()

    def _transaction(self, session, transaction: Callable[..., T]) -> T:
        result = transaction(session)
        clear_intents(session, [p.intent_id for p in self.payloads])
        self._wait_durable()  # the payloads are durable before the commit
        for payload in self.payloads:
            self._check(payload)
        for new in self.adopted:
            require_payload(self.store, repr(new.name), new.uri, new.payload_kind, [f.path for f in new.files])
        return result

    def _check(self, payload: Payload) -> None:
        """Refuse to commit a payload that is no longer there (deleted while
        the save ran): on a local store, the folders at its names are still
        the ones made (same inodes) and hold every file."""
        relatives = [f.path for f in payload.files]
        if payload.folder_fd < 0:
            require_payload(self.store, payload.label, payload.uri, PayloadKind.FOLDER.value, relatives)
            return
        missing = None
        if not (still_there(self._root_fd, payload.name, payload.name_fd)
                and still_there(payload.name_fd, payload.uuid, payload.folder_fd)):
            missing = payload.uri
        else:
            for relative in relatives:
                try:
                    lstat_below(payload.folder_fd, relative)  # a link swapped in on the way is refused
                except (FileNotFoundError, NotADirectoryError):
                    missing = posixpath.join(payload.uri, relative)
                    break
        if missing is not None:
            raise _missing(payload.label, missing)

    # -- failure -----------------------------------------------------------------------------

    def abandon(self) -> None:
        """Remove every fresh payload that will never be committed (folder,
        ``.viz`` folder, manifest file), then their intents; an intent whose
        payload could not be removed whole stays, for the pruner. A folder
        goes only once the index says no row names it (a commit can fail
        after it happened). Never raises: cleanup must not hide the real
        error."""
        try:
            with contextlib.suppress(Exception):
                self._wait_durable()  # nothing may still use the descriptors
            if not self.payloads:
                return
            with self.index.read() as session:  # a commit can fail after it happened; a migrated
                # version's folder is named by its uuid, and another run may have moved it there
                named = {p.uri for p in self.payloads if version_at(session, p.uri) is not None}
            cleared = [p.intent_id for p in self.payloads
                       if p.uri in named or not self._made(p) or _remove_leftovers(self.store, p.uri)]
            if cleared:
                with self.index.write(durable=False) as session:
                    clear_intents(session, cleared)
        except Exception:  # noqa: BLE001 - cleanup must not hide the real error
            pass

    def _made(self, payload: Payload) -> bool:
        """Whether anything of ``payload`` may exist: a local folder this
        batch never made (a link where its name folder belongs) has nothing."""
        return not self.store.is_local or payload.folder_fd >= 0

    def close(self) -> None:
        """Let go of the folders' descriptors (after any fsync using them)."""
        with contextlib.suppress(Exception):
            self._wait_durable()
        self._syncs = []
        for payload in self.payloads:
            for fd in (payload.folder_fd, payload.name_fd):
                if fd >= 0:
                    os.close(fd)
            payload.folder_fd = payload.name_fd = -1


def _payload_syncs(p: Payload) -> list[Callable[[], None]]:
    """The fsyncs that make a local payload folder durable: its files, the
    folders inside it, and the folder itself."""
    tasks: list[Callable[[], None]] = []
    inside: set[str] = set()
    for entry in p.files:
        tasks.append(functools.partial(fsync_beneath, p.folder_fd, entry.path))
        parent = posixpath.dirname(entry.path)
        while parent and parent not in inside:
            inside.add(parent)
            parent = posixpath.dirname(parent)
    tasks.extend(functools.partial(fsync_beneath, p.folder_fd, sub) for sub in sorted(inside))
    tasks.append(functools.partial(fsync_fd, p.folder_fd))
    return tasks


def _missing(label: str, what: str) -> PayloadMissingError:
    return PayloadMissingError(
        f"the payload of {label} vanished before it was committed ({what} is gone); nothing was saved",
        "something deleted it while the save ran (a pruner with a grace shorter than the save?); save it again",
    )


def require_payload(store: ArtifactStore, label: str, uri: str, payload_kind: str, relatives: list[str]) -> None:
    """Refuse a payload (of a remote store, or registered in place) that is
    no longer there."""
    missing = first_missing(store, uri, payload_kind, relatives)
    if missing is not None:
        raise _missing(label, missing)


def first_missing(store: ArtifactStore, uri: str, payload_kind: str, relatives: list[str]) -> str | None:
    """The first payload path that does not exist, or None. A local payload
    is stat'ed file by file; a remote one costs one fresh ``info`` call."""
    native = uri if store.is_local else store.resolve(uri)  # a local URI is the path it was resolved to
    if payload_kind == PayloadKind.FILE.value:
        paths = [native]
    elif store.is_local:
        paths = [native] + [posixpath.join(native, relative) for relative in relatives]
    else:
        paths = [posixpath.join(native, min(relatives))] if relatives else []
    for path in paths:
        try:
            if store.is_local:  # beneath the root: a payload swapped for a link raises LinkFound
                if store.beneath.kind(store.local_relative(path)) is None:
                    raise FileNotFoundError(path)
            else:
                store.fs.invalidate_cache(path)  # a listing cached before the delete would still show it
                store.fs.info(path)
        except FileNotFoundError:
            return store.flavor.to_uri(path)
    return None


def manifest_record(version: Any, name: str, number: str | None, created_at: dt.datetime,
                    visualizations: list | None = None, in_place: str | None = None) -> dict[str, Any]:
    """What the manifest file says of a ``NewVersion`` as it is committed:
    ``stores.manifest.journal_record`` with its tags, metadata and producing
    step run (``visualizations``: taken from ``version`` itself)."""
    metadata = [(key, *metadata_value(key, value)) for key, value in (getattr(version, "metadata", None) or {}).items()]
    return journal_record(version, name, number, created_at, in_place=in_place,
                          tags=getattr(version, "tags", None) or (), metadata=metadata,
                          producers=getattr(version, "producers", None) or ())


def journal_in_place(store: ArtifactStore, new: NewVersion, row: Any) -> None:
    """The manifest file of a version registered in place, under
    ``.artifactfs-registered/`` (never in the user's folder), written once
    the commit numbered and dated it. The version is committed either way,
    so a failure only warns (``fsck`` reports it, ``--repair`` rewrites it)."""
    try:
        record = manifest_record(new, new.name, row.version, row.created_at, in_place=store.relpath(new.uri))
        write_manifest_file(store, journal_folder(store, new.uri, new.uuid), new.files, record)
    except Exception as exc:  # noqa: BLE001 - the save itself succeeded
        warnings.warn(f"{new.name}: the manifest file of a path registered in place could not be written "
                      f"({type(exc).__name__}); `fsck --adopt` will not know it", stacklevel=3)


def _remove_leftovers(store: ArtifactStore, uri: str) -> bool:
    """Best effort, each on its own (the pruner's orphan sweep is the safety
    net): the payload folder, its visualizations, its manifest file. Whether
    all of them are gone."""
    gone = True
    for path, what in layout.payload_entries(uri):
        delete = remove_quietly if what == layout.MANIFEST else rmtree_quietly
        try:
            delete(store, path)
        except Exception:  # noqa: BLE001 - cleanup must not hide the real error
            gone = False
    return gone


def pick_materializer(data: Any, materializer: type[BaseMaterializer] | str | None) -> type[BaseMaterializer]:
    """The registered choice for ``data``, or the one asked for (a class or
    its import path, as ZenML accepts), checked to handle ``data``'s type."""
    if materializer is None:
        return materializer_for_value(data)
    if isinstance(materializer, str):
        materializer = import_by_name(materializer, "materializer=")
    if not (isinstance(materializer, type) and issubclass(materializer, BaseMaterializer)):
        raise MaterializerError(f"materializer must be a BaseMaterializer subclass, got {materializer!r}")
    if materializer.ASSOCIATED_TYPES and not materializer.can_save_type(type(data)):
        raise MaterializerError(
            f"{materializer.__name__} cannot save a {qualified_name(type(data))}; it saves "
            f"{', '.join(qualified_name(t) for t in materializer.ASSOCIATED_TYPES)}",
            "pick a materializer for this type, or leave materializer= out",
        )
    if materializer is BuiltInMaterializer and not is_jsonable(data):
        return ContainerMaterializer  # what it would write; recorded so, the load verifies its pickles
    return materializer


def write_value(
    batch: WriteBatch,
    payload: Payload,
    data: Any,
    cls: type[BaseMaterializer],
    save_type: SaveType = SaveType.MANUAL,
    extract_metadata: bool = True,
    include_visualizations: bool = True,
) -> tuple[NewVersion, dict[str, Any]]:
    """Steps 2-3 for a value: materialize ``data`` with ``cls`` (see
    :func:`pick_materializer`) into ``payload``'s fresh folder. Returns the
    version to commit (the batch holds it) and the metadata the materializer
    extracted (ZenML's ``extract_metadata``/``include_visualizations``
    switches turn the two extras off)."""
    recorder = batch.recorder(payload)
    # The recorder stands in for the store: the same file methods, each file hashed as written.
    instance = cls(payload.uri, cast(ArtifactStore, recorder), layout.viz_folder(payload.uri))
    try:
        instance.save(data)
    except ArtifactfsError:
        raise
    except (TypeError, ValueError) as exc:
        raise MaterializerError(
            f"{cls.__name__} could not save {payload.name!r} ({type(data).__name__}): {exc}",
            "pass materializer=... or convert the value to a supported type",
        ) from exc
    files = recorder.finish()
    batch.written(payload, files)  # its fsyncs start now, beside what follows
    metadata = {"storage_size": sum(f.size for f in files)}
    if extract_metadata:
        metadata.update(_safe(instance.extract_metadata, data, payload.name))
    new = NewVersion(
        uuid=payload.uuid,
        name=payload.name,
        version=payload.version,
        store_id=0,  # filled by the commit, which knows the store row
        uri=payload.uri,
        payload_kind=PayloadKind.FOLDER.value,
        materializer=qualified_name(cls),
        data_type=qualified_name(type(data)),
        content_hash=instance.compute_content_hash(data) or content_hash(files),
        save_type=save_type.value,
        files=files,
        visualizations=_visualizations(instance, data, payload.name) if include_visualizations else [],
        artifact_type=ArtifactType(cls.ASSOCIATED_ARTIFACT_TYPE).value,
        artifact_id=payload.artifact_id,
    )
    payload.new = new  # its manifest file is written from it at the commit
    return new, metadata


def _safe(method: Callable, data: Any, name: str) -> dict[str, Any]:
    """Metadata is a bonus: a failure, or a value the index cannot record,
    warns and is dropped; it never loses the save."""
    try:
        extracted = dict(method(data) or {})
    except Exception as exc:  # noqa: BLE001 - any materializer bug
        warnings.warn(f"could not extract metadata of {name!r}: {exc}", stacklevel=4)
        return {}
    kept = {}
    for key, value in extracted.items():
        try:
            kept.update(check_metadata({key: value}))
        except ArtifactfsError as exc:
            warnings.warn(f"metadata of {name!r} dropped: {exc}", stacklevel=4)
    return kept


def _visualizations(instance: BaseMaterializer, data: Any, name: str) -> list[dict[str, str]]:
    try:
        produced = instance.save_visualizations(data) or {}
    except Exception as exc:  # noqa: BLE001
        warnings.warn(f"could not save visualizations of {name!r}: {exc}", stacklevel=4)
        return []
    return [{"uri": uri, "kind": str(getattr(kind, "value", kind))} for uri, kind in produced.items()]


# -- adopting and copying existing files -----------------------------------------------


def check_relative(path: str, source: str) -> str:
    """Refuse manifest paths that could escape a folder (tar-slip)."""
    parts = path.split("/")
    if path.startswith("/") or any(p in ("", ".", "..") or "\x00" in p for p in parts):
        raise ArtifactfsError(
            f"{source} contains an entry with an unsafe relative path {path!r}",
            "rename or remove that entry; paths may not contain '..', '.' or empty parts",
        )
    return path


def check_local_links(folder: str) -> None:
    """A local folder's symlinks must stay inside it; special files are refused."""
    real_root = os.path.realpath(folder)
    for current, dirs, files in os.walk(folder):
        for entry in dirs + files:
            path = os.path.join(current, entry)
            if os.path.islink(path):
                target = os.path.realpath(path)
                if not within(target, real_root):
                    raise ArtifactfsError(
                        f"{path} is a symlink to {target}, outside {folder}",
                        "copy the target into the folder or remove the link",
                    )
                if os.path.isdir(path):
                    raise ArtifactfsError(f"{path} is a symlink to a folder", "replace it by the folder itself")
            elif entry in files and not os.path.isfile(path):
                raise ArtifactfsError(f"{path} is not a regular file", "remove it before registering")


def refuse_links(store: ArtifactStore, native: str) -> None:
    """A folder inside a local store holds no link: none is ever followed
    there, so one would be a file the version silently lacks (LinkFound names it)."""
    def refuse(relative: str) -> None:
        raise LinkFound(store.beneath.full(relative), f"{native} cannot be registered")

    for _ in store.beneath.walk(store.local_relative(native), on_link=refuse):
        pass


def manifest_in_place(store: ArtifactStore, native: str) -> tuple[str, list[ManifestEntry]]:
    """``(payload kind, manifest)`` of an existing file or folder inside a
    store, hashing each file once; a local one is read beneath the store's
    root without following any link (a link in it is refused)."""
    if store.fs.isfile(native):
        return PayloadKind.FILE.value, [manifest_entry(store, native, posixpath.basename(native))]
    if not store.fs.isdir(native):
        raise FileNotFoundError(f"nothing to register at {store.flavor.to_uri(native)}")
    if store.is_local:
        refuse_links(store, native)
    entries = []
    for relative in store.find(store.flavor.to_uri(native)):
        check_relative(relative, store.flavor.to_uri(native))
        entries.append(manifest_entry(store, posixpath.join(native, relative), relative))
    return PayloadKind.FOLDER.value, entries


def copy_plan(source: ArtifactStore, source_native: str) -> tuple[str, list[tuple[str, str]]]:
    """What :func:`copy_into` copies, checked before any intent is recorded:
    ``(tree, [(path in tree, path in the copy)])``. A single file keeps its
    name inside the folder; a local source may not lead out of itself by a
    link (a single file: out of its own folder)."""
    name_in_copy = posixpath.basename(source_native)
    in_store = source.is_local and source.holds_root
    if source.is_local and not in_store:
        source_native = resolve_named(source_native)
    if source.fs.isfile(source_native):
        return posixpath.dirname(source_native), [(posixpath.basename(source_native), name_in_copy)]
    if source.fs.isdir(source_native):
        if in_store:
            refuse_links(source, source_native)
        elif source.is_local:
            check_local_links(source_native)
        return source_native, [(rel, check_relative(rel, source.flavor.to_uri(source_native)))
                               for rel in source.find(source.flavor.to_uri(source_native))]
    if source.is_local and os.path.exists(source_native):
        raise ArtifactfsError(f"{source_native} is not a regular file (a FIFO, socket or device)",
                              "register regular files and folders only")
    raise FileNotFoundError(f"nothing to register at {source.flavor.to_uri(source_native)}")


def copy_into(source: ArtifactStore, plan: tuple[str, list[tuple[str, str]]], batch: WriteBatch, payload: Payload,
              progress: Callable[[int], None] | None = None) -> list[ManifestEntry]:
    """Steps 2-3 for existing files: copy what :func:`copy_plan` chose into
    ``payload``'s fresh folder; returns the manifest. A local source is read
    without following a symlink out of it, and each copy keeps its source's
    permission bits, in the copy and in the manifest."""
    tree, pairs = plan
    recorder = batch.recorder(payload)
    for src, relative in pairs:
        fault_point("copy_into_open")
        with _open_source(source, tree, src) as (fin, mode), \
                recorder.open(posixpath.join(payload.uri, relative), "wb", file_mode=mode) as fout:
            while chunk := fin.read(COPY_CHUNK):
                fout.write(chunk)
                if progress:
                    progress(len(chunk))
    return recorder.finish()


@contextlib.contextmanager
def _open_source(source: ArtifactStore, tree: str, relative: str) -> Iterator[tuple[IO[bytes], int]]:
    """A source file and its permission bits (an object store's files have the default)."""
    if not source.is_local:
        with source.fs.open(posixpath.join(tree, relative), "rb") as f:
            yield f, DEFAULT_FILE_MODE
        return
    if source.holds_root:  # a store's own files: beneath its root, no link followed at all
        with source.beneath.open_read(source.local_relative(posixpath.join(tree, relative))) as f:
            yield f, stat.S_IMODE(os.fstat(f.fileno()).st_mode)
        return
    with open_beneath(tree, relative) as f:
        yield f, stat.S_IMODE(os.fstat(f.fileno()).st_mode)
