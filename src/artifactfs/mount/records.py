"""The mount's memory of what the index said: records of versions, outputs,
pipelines, runs, steps and artifacts, manifests as folders, and the small
LRU maps that hold them, each fetched by one read-only query when missing.

Immutable facts (a version's manifest, which version a payload file belongs
to, a version's producer) are kept until the version stops being live;
anything that can move (version records, which a migration may re-point;
records of folders that grow; ``latest``) is kept until the index
generation moves (:meth:`Records.moved`). Every method is thread-safe;
inside :meth:`Records.memory_only` a miss raises :class:`NeedsIndex`
instead of querying, so the FUSE adapter can answer hits on its own thread.

What the tree shows from these records is the business of the other parts
(``lookup``, ``listing``, ``documents``, ``xattrs``, ``fs``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from artifactfs.index import get_generation, names
from artifactfs.index.generation import Generation
from artifactfs.index import tree as q
from artifactfs.index.db import Index
from artifactfs.mount import inodes
from artifactfs.mount.inodes import Kind
from artifactfs.mount.nodes import NeedsIndex, NotFound, Overflow, View

MISSING = object()


def index_generation(connection) -> Generation:
    """The index's change clock, as the mount polls it (the one place it is
    read); compare readings with ``Generation.moved_since``."""
    return get_generation(connection)


# -- small LRU ---------------------------------------------------------------------------


class Lru:
    """A bounded map, least recently used out first; ``weigh`` gives each
    value's share of ``capacity`` (1 by default)."""

    def __init__(self, capacity: int, weigh: Callable[[Any], int] | None = None) -> None:
        self.capacity, self.weigh, self.weight = capacity, weigh, 0
        self.data: OrderedDict = OrderedDict()

    def get(self, key, default=None):
        """The value of ``key`` (now the most recently used), or ``default``."""
        try:
            value = self.data[key]
        except KeyError:
            return default
        self.data.move_to_end(key)
        return value

    def __contains__(self, key) -> bool:
        return key in self.data

    def __len__(self) -> int:
        return len(self.data)

    def put(self, key, value) -> None:
        """Keep ``value`` under ``key``, evicting the least recently used while over capacity."""
        self.pop(key)
        self.data[key] = value
        self.weight += self.weigh(value) if self.weigh else 1
        while self.weight > self.capacity and len(self.data) > 1:
            _, old = self.data.popitem(last=False)
            self.weight -= self.weigh(old) if self.weigh else 1

    def pop(self, key) -> None:
        """Forget ``key`` if it is kept."""
        old = self.data.pop(key, MISSING)
        if old is not MISSING:
            self.weight -= self.weigh(old) if self.weigh else 1

    def clear(self) -> None:
        """Forget everything."""
        self.data.clear()
        self.weight = 0


# -- manifests as folders --------------------------------------------------------------

Child = tuple[bool, int]  # (is a folder, its folder number | the file's id)


class Folder:
    __slots__ = ("children", "subfolders")

    def __init__(self) -> None:
        self.children: dict[bytes, Child] = {}  # shown name -> child
        self.subfolders = 0


class Manifest:
    """A version's files as folders. Folders are numbered by their sorted
    component tuples (0 = the version folder), which never changes for a
    version, so folder inodes are stable."""

    __slots__ = ("files", "folders")

    def __init__(self, files: list[q.FileRecord]) -> None:
        self.files = {f.id: f for f in files}
        paths = {f.id: f.path.split("/") for f in files}
        keys = {()}
        for parts in paths.values():
            keys.update(tuple(parts[:depth]) for depth in range(1, len(parts)))
        numbers = {key: n for n, key in enumerate(sorted(keys))}
        self.folders = [Folder() for _ in numbers]
        for key, n in numbers.items():
            if key:
                parent = self.folders[numbers[key[:-1]]]
                parent.children[names.escape(key[-1]).encode()] = (True, n)
                parent.subfolders += 1
        for fid, parts in sorted(paths.items(), key=lambda item: item[1]):
            folder = self.folders[numbers[tuple(parts[:-1])]]
            shown = names.escape(parts[-1]).encode()
            if shown in folder.children:  # a key that is also a prefix of others (object stores)
                shown = names.escape(parts[-1] + "\0file").encode()
            folder.children[shown] = (False, fid)

    def __len__(self) -> int:
        return len(self.files) + len(self.folders)

    @property
    def folder_count(self) -> int:
        """How many folders the payload's tree has (its top included)."""
        return len(self.folders)

    def _folder(self, number: int, inode: int) -> Folder:
        if number >= len(self.folders):
            raise NotFound(f"inode {inode}")
        return self.folders[number]

    def children(self, number: int, inode: int) -> Iterable[tuple[bytes, Child]]:
        """The entries of folder ``number`` of the payload, as ``(name, child)``."""
        return self._folder(number, inode).children.items()

    def child(self, number: int, inode: int, name: bytes) -> Child | None:
        """The entry ``name`` of folder ``number``, or None."""
        return self._folder(number, inode).children.get(name)

    def subfolders(self, number: int, inode: int) -> int:
        """How many folders folder ``number`` holds (for its link count)."""
        return self._folder(number, inode).subfolders

    def file(self, file_id: int) -> q.FileRecord | None:
        """The manifest record of file ``file_id``, or None."""
        return self.files.get(file_id)


class FlatManifest:
    """The usual manifest, a few files and no sub-folder, kept in a fifth of
    the memory: ``(shown name, file)`` pairs in name order, searched in turn."""

    __slots__ = ("entries",)
    MAX_FILES = 16
    folder_count = 1

    def __init__(self, files: list[q.FileRecord]) -> None:
        self.entries = tuple(sorted((names.escape(f.path).encode(), f) for f in files))

    @classmethod
    def fits(cls, files: list[q.FileRecord]) -> bool:
        """Whether ``files`` are few and all at the top (then this lighter form holds them)."""
        return len(files) <= cls.MAX_FILES and not any("/" in f.path for f in files)

    def __len__(self) -> int:
        return len(self.entries) + 1

    def _top(self, number: int, inode: int) -> None:
        if number:
            raise NotFound(f"inode {inode}")

    def children(self, number: int, inode: int) -> Iterable[tuple[bytes, Child]]:
        """The files of the payload's only folder, as ``(name, child)``."""
        self._top(number, inode)
        return [(shown, (False, f.id)) for shown, f in self.entries]

    def child(self, number: int, inode: int, name: bytes) -> Child | None:
        """The file ``name`` of the payload's only folder, or None."""
        self._top(number, inode)
        return next(((False, f.id) for shown, f in self.entries if shown == name), None)

    def subfolders(self, number: int, inode: int) -> int:
        """0: a flat payload has no folder inside it."""
        self._top(number, inode)
        return 0

    def file(self, file_id: int) -> q.FileRecord | None:
        """The manifest record of file ``file_id``, or None."""
        return next((f for _, f in self.entries if f.id == file_id), None)


def make_manifest(files: list[q.FileRecord]) -> Manifest | FlatManifest:
    """The in-memory form of a version's manifest that fits it (flat or a tree)."""
    return FlatManifest(files) if FlatManifest.fits(files) else Manifest(files)


# -- the records ------------------------------------------------------------------------------


class Records:
    """What the index said, for one mount."""

    def __init__(self, index: Index, manifest_capacity: int = 2_000_000, record_capacity: int = 500_000,
                 prefetch_files: int = 50_000) -> None:
        self.index = index
        self.prefetch_files = prefetch_files
        self.manifest_with_record = 1000  # fetch a version's manifest with its record up to this many files
        self.lock = threading.RLock()
        self._local = threading.local()
        self.epoch = 0  # moves with the generation: a value read before must not be kept after
        self.files = Lru(record_capacity)  # payload file id -> its version id (never changes)
        self.producers = Lru(record_capacity)  # version id -> q.Producer | None (never changes)
        self.versions = Lru(record_capacity)  # version id -> q.VersionRecord (re-pointable: per generation)
        self.manifests = Lru(manifest_capacity, weigh=len)  # version id -> Manifest (never changes)
        self.moving = Lru(record_capacity)  # anything else: cleared whenever the generation moves
        self.shown_latest: dict[int, int] = {}  # artifact id -> version id last shown as ``latest``

    # -- plumbing -----------------------------------------------------------------------

    @contextmanager
    def memory_only(self) -> Iterator[None]:
        """Within: answer from memory or raise :class:`NeedsIndex`."""
        self._local.memory_only = True
        try:
            yield
        finally:
            self._local.memory_only = False

    def check_query(self) -> None:
        """Refuse to query the index where only what is in memory may be used (``NeedsIndex``)."""
        if getattr(self._local, "memory_only", False):
            raise NeedsIndex

    def query(self, fn: Callable, *args):
        """``fn(connection, *args)`` in one read transaction. The statements
        are Core, so a plain connection of the index's engine runs them: the
        ORM session would cost as much again on the lookup path."""
        self.check_query()
        with self.index.engine.connect() as connection:
            return fn(connection, *args)  # closing ends the (read) transaction

    def memo(self, cache: Lru, key, load: Callable, *args):
        """``load(*args)`` from the index, kept in ``cache`` unless the generation moved meanwhile."""
        with self.lock:
            value = cache.get(key, MISSING)
            epoch = self.epoch
        if value is not MISSING:
            return value
        value = self.query(load, *args)
        self.remember(cache, key, value, epoch)
        return value

    def moving_memo(self, key, load: Callable, *args):
        """:meth:`memo` in the cache of records that can change (dropped when the generation moves)."""
        return self.memo(self.moving, key, load, *args)

    def remember(self, cache: Lru, key, value, epoch: int) -> None:
        """Keep ``value`` in ``cache``, unless the generation moved since ``epoch``."""
        with self.lock:
            if self.epoch == epoch:
                cache.put(key, value)

    def cached(self, cache: Lru, key):
        """The cached value (``MISSING`` sentinel as ``None`` is a value) and the epoch."""
        with self.lock:
            return cache.get(key, MISSING), self.epoch

    # -- versions and manifests ---------------------------------------------------------

    def version(self, version_id: int) -> q.VersionRecord:
        """The record of a version (``NotFound`` when the index has none),
        read once, with its manifest when that is small."""
        with self.lock:
            record = self.versions.get(version_id)
            epoch = self.epoch
        if record is None:
            record, files = self.query(q.get_version_with_files, version_id, self.manifest_with_record)
            if record is None:
                raise NotFound(f"version {version_id}")
            self.learn(record, files, epoch)
        return record

    def learn(self, record: q.VersionRecord, files: list[q.FileRecord] | None, epoch: int) -> None:
        """Keep a version's record (and manifest) fetched together."""
        manifest = make_manifest(files) if files is not None else None
        with self.lock:
            if self.epoch == epoch:
                self.versions.put(record.id, record)
                if manifest is not None and manifest.folder_count <= inodes.MAX_FOLDERS + 1:
                    self.manifests.put(record.id, manifest)

    def manifest(self, version: q.VersionRecord) -> Manifest | FlatManifest:
        """The manifest of ``version``, read once and kept."""
        with self.lock:
            manifest = self.manifests.get(version.id)
            epoch = self.epoch
        if manifest is not None:
            return manifest
        manifest = make_manifest(self.query(q.manifests, [version.id])[version.id])
        if manifest.folder_count > inodes.MAX_FOLDERS + 1:
            raise Overflow(f"version {version.id} has {manifest.folder_count} folders")
        self.remember(self.manifests, version.id, manifest, epoch)
        return manifest

    def prefetch_manifests(self, connection, versions: list[q.VersionRecord], epoch: int) -> None:
        """Load the manifests of a listed folder's versions in one go, when small."""
        with self.lock:
            wanted = [v for v in versions if v.id not in self.manifests]
        if not wanted or sum(v.file_count for v in wanted) > self.prefetch_files:
            return
        found = q.manifests(connection, [v.id for v in wanted])
        with self.lock:
            if self.epoch != epoch:
                return
            for version in wanted:
                self.manifests.put(version.id, make_manifest(found[version.id]))

    def file(self, file_id: int) -> tuple[q.VersionRecord, q.FileRecord]:
        """The version holding file ``file_id`` and the file's manifest record."""
        version_id = self.memo(self.files, file_id, q.file_owner, file_id)
        if version_id is None:
            raise NotFound(f"file {file_id}")
        version = self.version(version_id)
        record = self.manifest(version).file(file_id)
        if record is None:
            raise NotFound(f"file {file_id}")
        return version, record

    def shown_files(self, version_id: int, file_ids: list[int]) -> None:
        """The kernel now knows these payload files: their ``getattr`` must not need a query."""
        with self.lock:
            for file_id in file_ids:
                self.files.put(file_id, version_id)

    def producer(self, version_id: int) -> q.Producer | None:
        """The step run that produced the version, or None."""
        return self.memo(self.producers, version_id, q.producer, version_id)

    # -- folders of the tree ------------------------------------------------------------------

    def output(self, step_io_id: int) -> q.OutputRecord:
        """A step's output record (``NotFound`` when it is gone)."""
        record = self.moving_memo(("output", step_io_id), q.get_output, step_io_id)
        if record is None:
            raise NotFound(f"output {step_io_id}")
        return record

    def outputs(self, step_id: int) -> list[q.OutputRecord]:
        """A step's outputs (few), listed whole and kept until the index moves."""
        outputs = self.moving_memo(("outputs", step_id), q.list_outputs, step_id)
        with self.lock:
            for output in outputs:
                self.moving.put(("output", output.id), output)
        return outputs

    def view(self, kind: Kind, payload: int) -> tuple[View, int]:
        """The version view and folder number of a version-folder inode."""
        if kind == Kind.VERSION:
            return View(Kind.VERSION_DIR, payload, self.version(payload)), 0
        if kind == Kind.OUTPUT:
            return View(Kind.OUTPUT_DIR, payload, self.output(payload).version), 0
        owner, number = inodes.split_folder(payload)
        if kind == Kind.VERSION_DIR:
            return View(kind, owner, self.version(owner)), number
        return View(kind, owner, self.output(owner).version), number

    def named(self, kind: Kind, record_id: int) -> q.Named:
        """The record of a pipeline, run, step or artifact folder (``NotFound`` when it is gone)."""
        load = {Kind.PIPELINE: q.get_pipeline, Kind.RUN: q.get_run, Kind.STEP: q.get_step,
                Kind.ARTIFACT: q.get_artifact}[kind]
        record = self.moving_memo((kind, record_id), load, record_id)
        if record is None:
            raise NotFound(f"{kind.name.lower()} {record_id}")
        return record

    def latest_target(self, artifact_id: int) -> bytes:
        """The name of the artifact's newest live version, as its ``latest`` link points at it."""
        version = self.moving_memo(("newest", artifact_id), q.newest_version, artifact_id)
        if version is None:
            raise NotFound(f"artifact {artifact_id} has no live version")
        with self.lock:
            self.shown_latest[artifact_id] = version.id
        return names.escape(version.version, reserved=True).encode()

    # -- the index moved ----------------------------------------------------------------------

    def moved(self, gone: set[int]) -> None:
        """Forget whatever could have moved, and everything of ``gone`` versions.
        Call with ``lock`` held."""
        self.epoch += 1
        self.moving.clear()
        self.versions.clear()  # a migration may have re-pointed any of them
        for version_id in gone:
            self.producers.pop(version_id)
            self.manifests.pop(version_id)
