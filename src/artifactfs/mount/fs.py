"""The mount's file tree, served from the index: resolves names and inodes,
lists folders, gives attributes, symlink targets, extended attributes and
the JSON documents, and says what to invalidate when the index moves.

It owns the tree's shape (DESIGN.md, "The mount"), naming (``names``) and
inode numbers (``inodes``), plus in-memory caches of what the index said.
It knows nothing of FUSE, trio or stores: ``fuse.py`` adapts it to pyfuse3,
``reader.py`` reads payload bytes. Every method is synchronous and
thread-safe; ``memory_only()`` makes a call raise :class:`NeedsIndex`
instead of querying, so the adapter can answer cache hits without a thread.

Caches: immutable facts (a version's manifest, a file's version, its
producer) are kept in LRU maps until the version stops being live; anything
that can move (version records, which a migration may re-point to another
store; listings of growable folders; pipeline/run/step/artifact records;
``latest``; the JSON documents) is kept until the index generation moves
(:meth:`refresh`).
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import stat
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from artifactfs.index import get_generation
from artifactfs.index import tree as q
from artifactfs.index.db import Index
from artifactfs.index import names
from artifactfs.mount import inodes
from artifactfs.mount.inodes import Kind

DIR_MODE = stat.S_IFDIR | 0o555
FILE_MODE = stat.S_IFREG | 0o444
LINK_MODE = stat.S_IFLNK | 0o777
XATTR_PREFIX = "user.artifactfs."
PAYLOAD_FILE = "file"  # payload_kind: the uri is the one file


# -- errors: each carries its errno (fuse.py maps them in one place) ---------------------


class FsError(Exception):
    errno = errno.EIO


class NotFound(FsError):
    """No such name or inode. ``stable``: the folder never changes, so the
    kernel may remember the miss for long."""

    errno = errno.ENOENT

    def __init__(self, message: str = "", stable: bool = False) -> None:
        super().__init__(message)
        self.stable = stable


class NotADir(FsError):
    errno = errno.ENOTDIR


class NoAttr(FsError):
    errno = errno.ENODATA


class Overflow(FsError):
    errno = errno.EOVERFLOW


class IsADir(FsError):
    errno = errno.EISDIR


class InvalidArgument(FsError):
    errno = errno.EINVAL


class NeedsIndex(Exception):
    """Raised in ``memory_only`` mode when the answer needs a query."""


# -- what the tree hands out ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Node:
    inode: int
    mode: int
    size: int
    mtime_ns: int
    nlink: int = 1
    moving: bool = False  # its attributes (or content) can change: short attribute timeout
    moving_name: bool | None = None  # the name can vanish or change target; None: same as ``moving``

    @property
    def name_moves(self) -> bool:
        return self.moving if self.moving_name is None else self.moving_name

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.mode)


@dataclass(frozen=True, slots=True)
class Payload:
    """An open target: one payload file of a version."""

    inode: int
    version_id: int
    version_uuid: str
    store_id: int
    store: str
    uri: str  # the file's full URI in its store
    path: str  # its manifest path
    size: int


@dataclass(frozen=True, slots=True)
class Document:
    """An open target: bytes made by the mount (a version's JSON document)."""

    inode: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Changes:
    """What the kernel must forget after the index moved."""

    generation: int
    entries: list[tuple[int, bytes]] = field(default_factory=list)  # (parent inode, name)
    inodes: list[int] = field(default_factory=list)


# -- manifests as folders --------------------------------------------------------------


@dataclass(slots=True)
class _Folder:
    number: int
    parent: int
    children: dict[bytes, tuple[bool, int]]  # name -> (is folder, folder number or file id)
    subfolders: int = 0


class Manifest:
    """A version's files as folders. Folders are numbered by their sorted
    component tuples (0 = the version folder), which never changes for a
    version, so folder inodes are stable."""

    def __init__(self, version_id: int, files: list[q.FileRecord]) -> None:
        self.version_id = version_id
        self.files = {f.id: f for f in files}
        paths = {f.id: [p for p in f.path.split("/")] for f in files}
        folder_keys = {()}
        for parts in paths.values():
            for depth in range(1, len(parts)):
                folder_keys.add(tuple(parts[:depth]))
        ordered = sorted(folder_keys)
        self.numbers = {key: n for n, key in enumerate(ordered)}
        self.folders = [_Folder(n, self.numbers[key[:-1]] if key else 0, {}) for n, key in enumerate(ordered)]
        for key, n in self.numbers.items():
            if key:
                parent = self.folders[self.numbers[key[:-1]]]
                parent.children[names.escape(key[-1]).encode()] = (True, n)
                parent.subfolders += 1
        self.file_folder: dict[int, int] = {}
        for fid, parts in sorted(paths.items(), key=lambda item: item[1]):
            folder = self.folders[self.numbers[tuple(parts[:-1])]]
            shown = names.escape(parts[-1]).encode()
            if shown in folder.children:  # a key that is also a prefix of others (object stores)
                shown = names.escape(parts[-1] + "\0file").encode()
            folder.children[shown] = (False, fid)
            self.file_folder[fid] = folder.number

    def __len__(self) -> int:
        return len(self.files) + len(self.folders)


# -- small LRU ---------------------------------------------------------------------------


class _Lru:
    def __init__(self, capacity: int, weigh: Callable[[Any], int] = lambda v: 1) -> None:
        self.capacity, self.weigh, self.weight = capacity, weigh, 0
        self.data: OrderedDict = OrderedDict()

    def get(self, key, default=None):
        try:
            value = self.data[key]
        except KeyError:
            return default
        self.data.move_to_end(key)
        return value

    def __contains__(self, key) -> bool:
        return key in self.data

    def put(self, key, value) -> None:
        self.pop(key)
        self.data[key] = value
        self.weight += self.weigh(value)
        while self.weight > self.capacity and len(self.data) > 1:
            _, old = self.data.popitem(last=False)
            self.weight -= self.weigh(old)

    def pop(self, key) -> None:
        old = self.data.pop(key, _MISSING)
        if old is not _MISSING:
            self.weight -= self.weigh(old)

    def clear(self) -> None:
        self.data.clear()
        self.weight = 0


_MISSING = object()


# -- the tree ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _View:
    """A version shown as a folder: under /artifacts (owner = version id) or
    as a step output (owner = step_io id)."""

    folder_kind: Kind  # VERSION_DIR or OUTPUT_DIR
    owner: int
    version: q.VersionRecord


class Tree:
    """The tree of one mount over one index."""

    def __init__(
        self,
        index: Index,
        uid: int = 0,
        gid: int = 0,
        prefetch_files: int = 50_000,
        manifest_capacity: int = 2_000_000,
        record_capacity: int = 500_000,
    ) -> None:
        self.index = index
        self.uid, self.gid = uid, gid
        self.prefetch_files = prefetch_files
        self.manifest_with_record = 1000  # fetch a version's manifest with its record up to this many files
        self.started_ns = time.time_ns()
        self._lock = threading.RLock()
        self._local = threading.local()
        self._epoch = 0
        self._fixed = _Lru(record_capacity)  # ("file", id) -> version id, ("producer", id)
        # Version records (store, uri...) can be re-pointed by a migration, so
        # they are dropped whenever the generation moves; manifests never change.
        self._versions = _Lru(record_capacity)
        self._manifests = _Lru(manifest_capacity, weigh=len)
        self._moving = _Lru(record_capacity)  # cleared whenever the generation moves
        self._generation: int | None = None
        self._not_live: set[int] | None = None
        self._max_version = 0
        self._shown_latest: dict[int, int] = {}  # artifact id -> version id last shown

    # -- cache plumbing -------------------------------------------------------------

    @contextmanager
    def memory_only(self) -> Iterator[None]:
        """Within: answer from memory or raise :class:`NeedsIndex`."""
        self._local.memory_only = True
        try:
            yield
        finally:
            self._local.memory_only = False

    def _query(self, fn: Callable, *args):
        """``fn(connection, *args)`` in one read transaction. The statements
        are Core, so a plain connection of the index's engine runs them: the
        ORM session would cost as much again on the lookup path."""
        if getattr(self._local, "memory_only", False):
            raise NeedsIndex
        with self.index.engine.connect() as connection:
            return fn(connection, *args)  # closing ends the (read) transaction

    def _memo(self, cache: _Lru, key, load: Callable, *args):
        with self._lock:
            value = cache.get(key, _MISSING)
            epoch = self._epoch
        if value is not _MISSING:
            return value
        value = self._query(load, *args)
        with self._lock:
            if self._epoch == epoch:
                cache.put(key, value)
        return value

    def _moving_memo(self, key, load: Callable, *args):
        return self._memo(self._moving, key, load, *args)

    def _remember(self, cache: _Lru, key, value, epoch: int) -> None:
        with self._lock:
            if self._epoch == epoch:
                cache.put(key, value)

    # -- records -----------------------------------------------------------------------

    def _version(self, version_id: int) -> q.VersionRecord:
        with self._lock:
            record = self._versions.get(version_id)
            epoch = self._epoch
        if record is None:
            record, files = self._query(q.get_version_with_files, version_id, self.manifest_with_record)
            if record is None:
                raise NotFound(f"version {version_id}")
            self._learn(record, files, epoch)
        return record

    def _learn(self, record: q.VersionRecord, files: list[q.FileRecord] | None, epoch: int) -> None:
        """Keep a version's record (and manifest) fetched together."""
        manifest = Manifest(record.id, files) if files is not None else None
        with self._lock:
            if self._epoch == epoch:
                self._versions.put(record.id, record)
                if manifest is not None and len(manifest.folders) <= inodes.MAX_FOLDERS + 1:
                    self._manifests.put(record.id, manifest)

    def _manifest(self, version: q.VersionRecord) -> Manifest:
        with self._lock:
            manifest = self._manifests.get(version.id)
            epoch = self._epoch
        if manifest is not None:
            return manifest
        files = self._query(q.manifests, [version.id])[version.id]
        manifest = Manifest(version.id, files)
        if len(manifest.folders) > inodes.MAX_FOLDERS + 1:
            raise Overflow(f"version {version.id} has {len(manifest.folders)} folders")
        self._remember(self._manifests, version.id, manifest, epoch)
        return manifest

    def _prefetch_manifests(self, session, versions: list[q.VersionRecord], epoch: int) -> None:
        """Load the manifests of a listed folder's versions in one go, when small."""
        with self._lock:
            wanted = [v for v in versions if v.id not in self._manifests]
        if not wanted or sum(v.file_count for v in wanted) > self.prefetch_files:
            return
        found = q.manifests(session, [v.id for v in wanted])
        with self._lock:
            if self._epoch != epoch:
                return
            for version in wanted:
                self._versions.put(version.id, version)
                self._manifests.put(version.id, Manifest(version.id, found[version.id]))

    def _output(self, step_io_id: int) -> q.OutputRecord:
        record = self._moving_memo(("output", step_io_id), q.get_output, step_io_id)
        if record is None:
            raise NotFound(f"output {step_io_id}")
        return record

    def _view(self, kind: Kind, payload: int) -> tuple[_View, int]:
        """The version view and folder number of a version-folder inode."""
        if kind == Kind.VERSION:
            return _View(Kind.VERSION_DIR, payload, self._version(payload)), 0
        if kind == Kind.OUTPUT:
            return _View(Kind.OUTPUT_DIR, payload, self._output(payload).version), 0
        owner, number = inodes.split_folder(payload)
        if kind == Kind.VERSION_DIR:
            return _View(kind, owner, self._version(owner)), number
        return _View(kind, owner, self._output(owner).version), number

    # -- nodes ---------------------------------------------------------------------------

    def _dir(self, inode: int, mtime_ns: int, moving: bool, nlink: int = 1) -> Node:
        return Node(inode, DIR_MODE, 0, mtime_ns, nlink, moving)  # size 0: `du -b` of a folder is its payload

    def _folder_node(self, view: _View, manifest: Manifest | None, number: int) -> Node:
        """A folder of a version; the top one (number 0) needs no manifest
        and reports nlink 1 ("not counted"), sub-folders 2 + sub-folders."""
        inode = inodes.folder(view.folder_kind, view.owner, number)
        nlink = 2 + manifest.folders[number].subfolders if number else 1
        return Node(inode, DIR_MODE, 0, view.version.created_ns, nlink, False)

    def _file_node(self, version: q.VersionRecord, record: q.FileRecord) -> Node:
        mode = FILE_MODE | (record.mode & 0o111 if record.mode else 0)
        return Node(inodes.make(Kind.FILE, record.id), mode, record.size, version.created_ns, version.links, False)

    def _doc_node(self, inode: int, version: q.VersionRecord) -> Node:
        """A JSON document: its name lives as long as its version (and is
        invalidated with it); its content (tags, consumers) can change."""
        return Node(inode, FILE_MODE, len(self._document(version)), version.created_ns, 1, True, False)

    def _latest_node(self, artifact: q.Named) -> Node:
        target = self._latest_target(artifact.id)
        return Node(inodes.make(Kind.LATEST, artifact.id), LINK_MODE, len(target), artifact.time_ns, 1, True)

    def _named_node(self, kind: Kind, record: q.Named) -> Node:
        return self._dir(inodes.make(kind, record.id), record.time_ns, True)

    # -- getattr ---------------------------------------------------------------------------

    def getattr(self, inode: int) -> Node:
        try:
            kind, payload = inodes.split(inode)
        except ValueError:
            raise NotFound(f"inode {inode}") from None
        if kind == Kind.SPECIAL:
            if payload in (inodes.ROOT, inodes.PIPELINES, inodes.ARTIFACTS):
                return self._dir(inode, self.started_ns, True, 1)
            raise NotFound(f"inode {inode}")
        if kind in (Kind.PIPELINE, Kind.RUN, Kind.STEP, Kind.ARTIFACT):
            return self._named_node(kind, self._named(kind, payload))
        if kind in (Kind.VERSION, Kind.OUTPUT, Kind.VERSION_DIR, Kind.OUTPUT_DIR):
            view, number = self._view(kind, payload)
            if number == 0:
                return self._folder_node(view, None, 0)
            manifest = self._manifest(view.version)
            if number >= len(manifest.folders):
                raise NotFound(f"inode {inode}")
            return self._folder_node(view, manifest, number)
        if kind == Kind.FILE:
            version, record = self._file(payload)
            return self._file_node(version, record)
        if kind == Kind.VERSION_DOC:
            return self._doc_node(inode, self._version(payload))
        if kind == Kind.OUTPUT_DOC:
            return self._doc_node(inode, self._output(payload).version)
        if kind == Kind.LATEST:
            return self._latest_node(self._named(Kind.ARTIFACT, payload))
        raise NotFound(f"inode {inode}")

    def _named(self, kind: Kind, record_id: int) -> q.Named:
        load = {Kind.PIPELINE: q.get_pipeline, Kind.RUN: q.get_run, Kind.STEP: q.get_step,
                Kind.ARTIFACT: q.get_artifact}[kind]
        record = self._moving_memo((kind, record_id), load, record_id)
        if record is None:
            raise NotFound(f"{kind.name.lower()} {record_id}")
        return record

    def _file(self, file_id: int) -> tuple[q.VersionRecord, q.FileRecord]:
        version_id = self._memo(self._fixed, ("file", file_id), q.file_owner, file_id)
        if version_id is None:
            raise NotFound(f"file {file_id}")
        version = self._version(version_id)
        record = self._manifest(version).files.get(file_id)
        if record is None:
            raise NotFound(f"file {file_id}")
        return version, record

    # -- lookup ------------------------------------------------------------------------------

    def lookup(self, parent: int, name: bytes) -> Node:
        """The child ``name`` of folder ``parent``; :class:`NotFound` if none."""
        try:
            kind, payload = inodes.split(parent)
        except ValueError:
            raise NotFound(f"inode {parent}") from None
        if kind == Kind.SPECIAL:
            return self._lookup_special(payload, name)
        if kind == Kind.PIPELINE:
            self._named(Kind.PIPELINE, payload)
            run = self._find(Kind.RUN, ("run", payload, name), name, lambda s, n: q.find_run(s, payload, n),
                             lambda s, _prefix: q.list_runs(s, payload))
            return self._named_node(Kind.RUN, run)
        if kind == Kind.RUN:
            self._named(Kind.RUN, payload)
            step = self._find(Kind.STEP, ("step", payload, name), name, lambda s, n: q.find_step(s, payload, n),
                              lambda s, _prefix: q.list_steps(s, payload))
            return self._named_node(Kind.STEP, step)
        if kind == Kind.STEP:
            return self._lookup_output(payload, name)
        if kind == Kind.ARTIFACT:
            return self._lookup_version(payload, name)
        if kind in (Kind.VERSION, Kind.OUTPUT, Kind.VERSION_DIR, Kind.OUTPUT_DIR):
            view, number = self._view(kind, payload)
            manifest = self._manifest(view.version)
            if number >= len(manifest.folders):
                raise NotFound(f"inode {parent}")
            child = manifest.folders[number].children.get(name)
            if child is None:
                raise NotFound(name.decode(errors="replace"), stable=True)
            is_folder, ref = child
            if is_folder:
                return self._folder_node(view, manifest, ref)
            with self._lock:
                self._fixed.put(("file", ref), view.version.id)
            return self._file_node(view.version, manifest.files[ref])
        raise NotADir(f"inode {parent}")

    def _lookup_special(self, which: int, name: bytes) -> Node:
        if which == inodes.ROOT:
            child = {b"pipelines": inodes.PIPELINES, b"artifacts": inodes.ARTIFACTS}.get(name)
            if child is None:
                raise NotFound(name.decode(errors="replace"), stable=True)
            return self._dir(child, self.started_ns, True)
        if which == inodes.PIPELINES:
            pipeline = self._find(Kind.PIPELINE, ("pipeline", name), name, q.find_pipeline,
                                  lambda s, _prefix: q.list_pipelines(s))
            return self._named_node(Kind.PIPELINE, pipeline)
        if which == inodes.ARTIFACTS:
            artifact = self._find(Kind.ARTIFACT, ("artifact", name), name, q.find_artifact, q.find_artifacts_like)
            return self._named_node(Kind.ARTIFACT, artifact)
        raise NotADir(f"inode {which}")

    def _find(self, kind: Kind, key, shown: bytes, find: Callable, find_like: Callable):
        """A record by its shown name, through the moving cache (misses too),
        kept under its id as well. ``find_like(session, prefix)`` gives the
        candidates for a shortened name."""
        with self._lock:
            cached = self._moving.get(key, _MISSING)
            epoch = self._epoch
        if cached is None:
            raise NotFound(shown.decode(errors="replace"))
        if cached is not _MISSING:
            return cached
        decoded = names.unescape(shown)
        if decoded is None:
            raise NotFound(shown.decode(errors="replace"))
        if decoded.hashed is None:
            record = self._query(find, decoded.name)
        else:
            record = next((r for r in self._query(find_like, decoded.name) if decoded.matches(r.name)), None)
        self._remember(self._moving, key, record, epoch)
        if record is not None:
            self._remember(self._moving, (kind, record.id), record, epoch)
        if record is None:
            raise NotFound(shown.decode(errors="replace"))
        return record

    def _lookup_output(self, step_id: int, name: bytes) -> Node:
        self._named(Kind.STEP, step_id)
        for output in self._outputs(step_id):
            if names.escape(output.name, reserved=True).encode() == name:
                return self._folder_node(_View(Kind.OUTPUT_DIR, output.id, output.version), None, 0)
            if names.doc_name(output.name).encode() == name:
                return self._doc_node(inodes.make(Kind.OUTPUT_DOC, output.id), output.version)
        raise NotFound(name.decode(errors="replace"))

    def _outputs(self, step_id: int) -> list[q.OutputRecord]:
        """A step's outputs (few), listed whole and kept until the index moves."""
        outputs = self._moving_memo(("outputs", step_id), q.list_outputs, step_id)
        with self._lock:
            for output in outputs:
                self._moving.put(("output", output.id), output)
        return outputs

    def _lookup_version(self, artifact_id: int, name: bytes) -> Node:
        artifact = self._named(Kind.ARTIFACT, artifact_id)
        if name == names.LATEST.encode():
            return self._latest_node(artifact)
        doc = names.undoc(name)
        decoded = doc if doc is not None else names.unescape(name, reserved=True)
        if decoded is None:
            raise NotFound(name.decode(errors="replace"))
        version = self._find_version(artifact_id, decoded)
        if doc is not None:
            return self._doc_node(inodes.make(Kind.VERSION_DOC, version.id), version)
        return self._folder_node(_View(Kind.VERSION_DIR, version.id, version), None, 0)

    def _find_version(self, artifact_id: int, decoded: names.Decoded) -> q.VersionRecord:
        key = ("version-name", artifact_id, decoded.name, decoded.hashed)
        with self._lock:
            version_id = self._moving.get(key, _MISSING)
            epoch = self._epoch
        if version_id is _MISSING:
            if decoded.hashed is None:
                record, files = self._query(q.find_version_with_files, artifact_id, decoded.name,
                                            self.manifest_with_record)
            else:
                candidates = self._query(q.find_versions_like, artifact_id, decoded.name)
                record, files = next((r for r in candidates if decoded.matches(r.version)), None), None
            version_id = record.id if record else None
            with self._lock:
                if self._epoch == epoch:
                    self._moving.put(key, version_id)
            if record is not None:
                self._learn(record, files, epoch)
        if version_id is None:
            raise NotFound(decoded.shown)
        return self._version(version_id)

    # -- readdir ---------------------------------------------------------------------------

    def listdir(self, inode: int) -> list[tuple[bytes, Node]]:
        """The entries of folder ``inode``, in a stable order."""
        try:
            kind, payload = inodes.split(inode)
        except ValueError:
            raise NotFound(f"inode {inode}") from None
        if kind == Kind.SPECIAL:
            if payload == inodes.ROOT:
                return [(b"artifacts", self.getattr(inodes.ARTIFACTS)), (b"pipelines", self.getattr(inodes.PIPELINES))]
            if payload == inodes.PIPELINES:
                return self._list_named(Kind.PIPELINE, ("pipelines",), q.list_pipelines)
            if payload == inodes.ARTIFACTS:
                return self._list_named(Kind.ARTIFACT, ("artifacts",), q.list_artifacts)
            raise NotFound(f"inode {inode}")
        if kind == Kind.PIPELINE:
            self._named(kind, payload)
            return self._list_named(Kind.RUN, ("runs", payload), lambda s: q.list_runs(s, payload))
        if kind == Kind.RUN:
            self._named(kind, payload)
            return self._list_named(Kind.STEP, ("steps", payload), lambda s: q.list_steps(s, payload))
        if kind == Kind.STEP:
            self._named(kind, payload)
            return self._list_step(payload)
        if kind == Kind.ARTIFACT:
            return self._list_artifact(self._named(kind, payload))
        if kind in (Kind.VERSION, Kind.OUTPUT, Kind.VERSION_DIR, Kind.OUTPUT_DIR):
            view, number = self._view(kind, payload)
            manifest = self._manifest(view.version)
            if number >= len(manifest.folders):
                raise NotFound(f"inode {inode}")
            entries = []
            files = []
            for name, (is_folder, ref) in manifest.folders[number].children.items():
                if is_folder:
                    entries.append((name, self._folder_node(view, manifest, ref)))
                else:
                    entries.append((name, self._file_node(view.version, manifest.files[ref])))
                    files.append(ref)
            with self._lock:  # the kernel now knows these inodes: getattr must not need a query
                for ref in files:
                    self._fixed.put(("file", ref), view.version.id)
            return entries
        raise NotADir(f"inode {inode}")

    def _list_named(self, kind: Kind, key, load: Callable) -> list[tuple[bytes, Node]]:
        records = self._moving_memo(key, load)
        with self._lock:
            for record in records:
                self._moving.put((kind, record.id), record)
        return [(names.escape(r.name).encode(), self._named_node(kind, r)) for r in records]

    def _list_step(self, step_id: int) -> list[tuple[bytes, Node]]:
        outputs = self._outputs(step_id)
        self._documents([o.version for o in outputs])
        entries = []
        for output in outputs:
            view = _View(Kind.OUTPUT_DIR, output.id, output.version)
            entries.append((names.escape(output.name, reserved=True).encode(), self._folder_node(view, None, 0)))
            entries.append((names.doc_name(output.name).encode(),
                            self._doc_node(inodes.make(Kind.OUTPUT_DOC, output.id), output.version)))
        return entries

    def _list_artifact(self, artifact: q.Named) -> list[tuple[bytes, Node]]:
        key = ("versions", artifact.id)
        with self._lock:
            versions = self._moving.get(key)
            epoch = self._epoch
        if versions is None:
            if getattr(self._local, "memory_only", False):
                raise NeedsIndex
            with self.index.engine.connect() as connection:
                versions = q.list_versions(connection, artifact.id)
                self._prefetch_manifests(connection, versions, epoch)
            with self._lock:
                if self._epoch == epoch:
                    self._moving.put(key, versions)
                    for version in versions:  # later lookups of these names need no query
                        self._moving.put(("version-name", artifact.id, version.version, None), version.id)
                        self._versions.put(version.id, version)
        self._documents(versions)
        entries = []
        for version in versions:
            view = _View(Kind.VERSION_DIR, version.id, version)
            entries.append((names.escape(version.version, reserved=True).encode(), self._folder_node(view, None, 0)))
            entries.append((names.doc_name(version.version).encode(),
                            self._doc_node(inodes.make(Kind.VERSION_DOC, version.id), version)))
        if versions:
            entries.append((names.LATEST.encode(), self._latest_node(artifact)))
        return entries

    # -- symlinks ----------------------------------------------------------------------------

    def readlink(self, inode: int) -> bytes:
        kind, payload = inodes.split(inode)
        if kind != Kind.LATEST:
            raise InvalidArgument(f"inode {inode} is not a symlink")
        return self._latest_target(payload)

    def _latest_target(self, artifact_id: int) -> bytes:
        version = self._moving_memo(("newest", artifact_id), q.newest_version, artifact_id)
        if version is None:
            raise NotFound(f"artifact {artifact_id} has no live version")
        with self._lock:
            self._shown_latest[artifact_id] = version.id
        return names.escape(version.version, reserved=True).encode()

    # -- documents and extended attributes -----------------------------------------------

    def _documents(self, versions: list[q.VersionRecord]) -> None:
        """Make the JSON documents of many versions at once (few queries)."""
        with self._lock:
            wanted = [v for v in versions if ("doc", v.id) not in self._moving]
            epoch = self._epoch
        if not wanted:
            return
        extras = self._query(q.documents, [v.id for v in wanted])
        with self._lock:
            if self._epoch != epoch:
                return
            for version in wanted:
                self._moving.put(("doc", version.id), _render(version, extras[version.id]))

    def _document(self, version: q.VersionRecord) -> bytes:
        with self._lock:
            data = self._moving.get(("doc", version.id))
        if data is None:
            self._documents([version])
            with self._lock:
                data = self._moving.get(("doc", version.id))
            if data is None:  # the generation moved meanwhile
                data = _render(version, self._query(q.documents, [version.id])[version.id])
        return data

    def xattrs(self, inode: int) -> dict[str, bytes]:
        """``user.artifactfs.*`` of version folders (and their sub-folders)
        and payload files; nothing elsewhere."""
        kind, payload = inodes.split(inode)
        if kind in (Kind.VERSION, Kind.OUTPUT, Kind.VERSION_DIR, Kind.OUTPUT_DIR):
            version, record = self._view(kind, payload)[0].version, None
        elif kind == Kind.FILE:
            version, record = self._file(payload)
        else:
            self.getattr(inode)
            return {}
        producer = self._memo(self._fixed, ("producer", version.id), q.producer, version.id)
        values = {
            "id": version.uuid,
            "name": version.artifact,
            "version": version.version,
            "store": version.store,
            "uri": version.uri,
            "data_type": version.data_type or "",
            "materializer": version.materializer or "",
            "content_hash": version.content_hash or "",
            "save_type": version.save_type,
            "size": str(version.size),
            "file_count": str(version.file_count),
            "created": _iso(version.created_ns),
        }
        if producer is not None:
            values |= {"producer.pipeline": producer.pipeline, "producer.run": producer.run,
                       "producer.step": producer.step, "producer.output": producer.output}
        if record is not None:
            values |= {"path": record.path, "digest": record.digest or "", "file_size": str(record.size)}
        return {XATTR_PREFIX + k: v.encode() for k, v in values.items()}

    # -- open ----------------------------------------------------------------------------------

    def open(self, inode: int) -> Payload | Document:
        kind, payload = inodes.split(inode)
        if kind == Kind.FILE:
            version, record = self._file(payload)
            uri = version.uri if version.payload_kind == PAYLOAD_FILE else version.uri.rstrip("/") + "/" + record.path
            return Payload(inode, version.id, version.uuid, version.store_id, version.store, uri, record.path,
                           record.size)
        if kind == Kind.VERSION_DOC:
            return Document(inode, self._document(self._version(payload)))
        if kind == Kind.OUTPUT_DOC:
            return Document(inode, self._document(self._output(payload).version))
        node = self.getattr(inode)
        raise (IsADir if node.is_dir else FsError)(f"inode {inode}")

    def reopen(self, inode: int) -> Payload | Document:
        """``open`` with the version's record read afresh (after opening
        failed: a migration may have re-pointed the version meanwhile)."""
        kind, payload = inodes.split(inode)
        if kind == Kind.FILE:
            version_id = self._memo(self._fixed, ("file", payload), q.file_owner, payload)
            with self._lock:
                self._versions.pop(version_id)
        return self.open(inode)

    # -- refresh ---------------------------------------------------------------------------------

    def generation(self) -> int:
        return self._query(get_generation)

    def refresh(self) -> Changes | None:
        """Catch up with the index. ``None`` when nothing moved; otherwise
        forget what could have moved and return what the kernel must forget:
        versions no longer live (under /artifacts and every step output that
        showed them) and ``latest`` links that moved."""
        with self.index.engine.connect() as session:
            generation = get_generation(session)
            if generation == self._generation:
                return None
            not_live = q.not_live_ids(session)
            max_id = q.max_version_id(session)
            if self._not_live is None:  # first poll: a baseline
                self._generation, self._not_live, self._max_version = generation, not_live, max_id
                return None
            gone = not_live - self._not_live
            moved = q.newest_ids_since(session, self._max_version)
            names_of = q.version_names(session, gone) if gone else {}
            outputs = q.outputs_showing(session, gone) if gone else []
        changes = Changes(generation)
        for vid in gone:
            artifact_id, version = names_of.get(vid, (None, None))
            if artifact_id is not None:
                parent = inodes.make(Kind.ARTIFACT, artifact_id)
                changes.entries.append((parent, names.escape(version, reserved=True).encode()))
                changes.entries.append((parent, names.doc_name(version).encode()))
                moved.setdefault(artifact_id, 0)
            changes.inodes.append(inodes.make(Kind.VERSION, vid))
        for step_io_id, step_run_id, name, _vid in outputs:
            parent = inodes.make(Kind.STEP, step_run_id)
            changes.entries.append((parent, names.escape(name, reserved=True).encode()))
            changes.entries.append((parent, names.doc_name(name).encode()))
        with self._lock:
            for artifact_id in moved:
                if artifact_id in self._shown_latest:
                    changes.inodes.append(inodes.make(Kind.LATEST, artifact_id))
                    changes.inodes.append(inodes.make(Kind.ARTIFACT, artifact_id))
            self._epoch += 1
            self._moving.clear()
            self._versions.clear()  # a migration may have re-pointed any of them
            for vid in gone:
                self._fixed.pop(("producer", vid))
                self._manifests.pop(vid)
            self._generation, self._not_live = generation, not_live
            self._max_version = max(self._max_version, max_id)
        return changes


def _iso(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / 1e9, dt.timezone.utc).isoformat()


def _render(version: q.VersionRecord, extra: dict) -> bytes:
    outputs = extra.get("outputs", [])
    producer = dict(outputs[0], inputs=extra.get("producer_inputs", [])) if outputs else None
    document = {
        "id": version.uuid,
        "name": version.artifact,
        "version": version.version,
        "store": version.store,
        "uri": version.uri,
        "payload_kind": version.payload_kind,
        "data_type": version.data_type,
        "materializer": version.materializer,
        "content_hash": version.content_hash,
        "size": version.size,
        "file_count": version.file_count,
        "save_type": version.save_type,
        "created": _iso(version.created_ns),
        "tags": extra.get("tags", []),
        "metadata": extra.get("metadata", {}),
        "producer": producer,
        "outputs": outputs,
        "consumers": extra.get("consumers", []),
    }
    return (json.dumps(document, indent=2, sort_keys=False, default=str) + "\n").encode()
