"""The mount's file tree, served from the index (DESIGN.md, "The mount"):
one :class:`Tree` per mount, the interface ``fuse.py`` talks to.

It answers ``getattr``, ``readlink``, ``open``, ``statfs`` and what to
invalidate when the index moves, and hands the other jobs to one module
each: ``records`` (what the index said, cached), ``lookup`` (names),
``listing`` (folders), ``documents`` (the JSON documents) and ``xattrs``
(extended attributes); ``nodes`` holds what they hand out. It knows nothing
of FUSE, trio or stores. Every method is synchronous and thread-safe;
``memory_only()`` makes a call raise :class:`NeedsIndex` instead of
querying, so the adapter can answer cache hits without a thread.
"""

from __future__ import annotations

import os
import time

from artifactfs.index import hosts, names
from artifactfs.index import tree as q
from artifactfs.index.db import Index
from artifactfs.mount import inodes
from artifactfs.mount.documents import Documents
from artifactfs.mount.inodes import Kind
from artifactfs.mount.listing import Listing
from artifactfs.mount.lookup import Lookup
from artifactfs.mount.nodes import (
    Changes,
    Document,
    FsError,
    InvalidArgument,
    IsADir,
    NeedsIndex,
    NoAttr,
    Node,
    NotADir,
    NotFound,
    Overflow,
    Payload,
    Unsupported,
    Usage,
    dir_node,
    doc_node,
    file_node,
    folder_node,
    latest_node,
    shown_mode,
    named_node,
    split,
)
from artifactfs.mount.records import Records, index_generation
from artifactfs.mount.xattrs import Xattrs

PAYLOAD_FILE = "file"  # payload_kind: the uri is the one file

# The tree's interface: what fuse.py and reader.py take from here.
__all__ = ["Changes", "Document", "FsError", "InvalidArgument", "IsADir", "NeedsIndex", "NoAttr", "Node", "NotADir",
           "NotFound", "Overflow", "Payload", "Tree", "Unsupported", "Usage"]


class Tree:
    """The tree of one mount over one index."""

    def __init__(self, index: Index, uid: int = 0, gid: int = 0, prefetch_files: int = 50_000,
                 manifest_capacity: int = 2_000_000, record_capacity: int = 500_000) -> None:
        self.index = index
        self.uid, self.gid = uid, gid
        self.started_ns = time.time_ns()
        self.records = Records(index, manifest_capacity, record_capacity, prefetch_files)
        self.documents = Documents(self.records)
        self._lookup = Lookup(self.records, self.documents, self.started_ns)
        self._listing = Listing(self.records, self.documents, self.started_ns)
        self._xattrs = Xattrs(self.records)
        self._generation: int | None = None
        self._not_live: set[int] | None = None
        self._max_version = 0
        self._anchor: tuple[int, str | None] = (0, None)  # the highest version id seen, and its uuid

    def memory_only(self):
        """Within: answer from memory or raise :class:`NeedsIndex`."""
        return self.records.memory_only()

    # -- the other parts' jobs --------------------------------------------------------------

    def lookup(self, parent: int, name: bytes) -> Node:
        """The node named ``name`` in folder ``parent`` (``NotFound`` when there is none)."""
        return self._lookup.lookup(parent, name)

    def listdir(self, inode: int) -> list[tuple[bytes, Node]]:
        """The entries of folder ``inode``, as ``(name, node)``."""
        return self._listing.listdir(inode)

    def getxattr(self, inode: int, name: bytes) -> bytes:
        """The extended attribute ``name`` of ``inode``."""
        return self._xattrs.get(inode, name)

    def xattrs(self, inode: int) -> dict[str, bytes]:
        """Every extended attribute of ``inode``."""
        return self._xattrs.all(inode)

    # -- getattr, readlink ------------------------------------------------------------------

    def getattr(self, inode: int) -> Node:
        """The node of ``inode``: its mode, size, times and how long the kernel may keep them."""
        kind, payload = split(inode)
        records = self.records
        if kind == Kind.SPECIAL:
            if payload in (inodes.ROOT, inodes.PIPELINES, inodes.ARTIFACTS):
                return dir_node(inode, self.started_ns, True, 1)
            raise NotFound(f"inode {inode}")
        if kind in (Kind.PIPELINE, Kind.RUN, Kind.STEP, Kind.ARTIFACT):
            return named_node(kind, records.named(kind, payload))
        if kind in (Kind.VERSION, Kind.OUTPUT, Kind.VERSION_DIR, Kind.OUTPUT_DIR):
            view, number = records.view(kind, payload)
            if number == 0:
                return folder_node(view, 0)
            manifest = records.manifest(view.version)
            return folder_node(view, number, manifest.subfolders(number, inode))
        if kind == Kind.FILE:
            return file_node(*records.file(payload))
        if kind in (Kind.VERSION_DOC, Kind.OUTPUT_DOC):
            version = self._doc_version(kind, payload)
            return doc_node(inode, version, self.documents.size(version))
        if kind == Kind.LATEST:
            artifact = records.named(Kind.ARTIFACT, payload)
            return latest_node(artifact, records.latest_target(artifact.id))
        raise NotFound(f"inode {inode}")

    def readlink(self, inode: int) -> bytes:
        """The target of a ``latest`` link (``InvalidArgument`` for any other inode)."""
        kind, payload = split(inode)
        if kind != Kind.LATEST:
            raise InvalidArgument(f"inode {inode} is not a symlink")
        return self.records.latest_target(payload)

    def _doc_version(self, kind: Kind, payload: int) -> q.VersionRecord:
        if kind == Kind.VERSION_DOC:
            return self.records.version(payload)
        return self.records.output(payload).version

    # -- open ---------------------------------------------------------------------------------

    def open(self, inode: int) -> Payload | Document:
        """What reading ``inode`` serves: a payload file of a store, or a generated document."""
        kind, payload = split(inode)
        if kind == Kind.FILE:
            version, record = self.records.file(payload)
            uri = version.uri if version.payload_kind == PAYLOAD_FILE else version.uri.rstrip("/") + "/" + record.path
            return Payload(inode, version.id, version.uuid, version.store_id, version.store, uri, record.path,
                           record.size, shown_mode(record))
        if kind in (Kind.VERSION_DOC, Kind.OUTPUT_DOC):
            return Document(inode, self.documents.data(self._doc_version(kind, payload)))
        node = self.getattr(inode)
        raise (IsADir if node.is_dir else FsError)(f"inode {inode}")

    def reopen(self, inode: int) -> Payload | Document:
        """``open`` with the version's record read afresh (after opening
        failed: a migration may have re-pointed the version meanwhile)."""
        kind, payload = split(inode)
        if kind == Kind.FILE:
            records = self.records
            version_id = records.memo(records.files, payload, q.file_owner, payload)
            with records.lock:
                records.versions.pop(version_id)
        return self.open(inode)

    # -- statfs --------------------------------------------------------------------------------

    def usage(self) -> Usage:
        """Bytes and files of the live versions (what ``df`` shows), per
        generation, and the free space where this machine's local stores live."""
        total = self.records.moving_memo(("usage",), q.live_usage)
        roots = self.records.moving_memo(("local roots",), hosts.local_roots_here)
        return Usage(*total, free=_free_bytes(roots))

    # -- refresh -------------------------------------------------------------------------------

    def generation(self) -> int:
        """The index's change counter (polled to refresh what may have moved)."""
        return self.records.query(index_generation)

    def _check_not_behind(self, connection, generation) -> None:
        """Inodes are index ids, never reused: an index restored from a
        backup breaks that (its sequences go back with it). Told by its
        generation counter going back, or by the highest version id this
        mount saw now naming another version (:class:`IndexWentBack`)."""
        if self._generation is not None and int(generation) < int(self._generation):
            raise _went_back(f"its generation is {int(generation)}, this mount saw {int(self._generation)}")
        seen_id, seen_uuid = self._anchor
        if seen_uuid is not None:
            now = q.version_uuid(connection, seen_id)
            if now is not None and now != seen_uuid:
                raise _went_back(f"version id {seen_id} named {seen_uuid} and names {now} now")

    def refresh(self) -> Changes | None:
        """Catch up with the index. ``None`` when nothing moved; otherwise
        forget what could have moved and return what the kernel must forget:
        versions no longer live (under /artifacts and every step output that
        showed them) and ``latest`` links that moved."""
        with self.index.engine.connect() as connection:
            generation = index_generation(connection)
            self._check_not_behind(connection, generation)  # every poll: a restore may bring the counter back
            if self._generation is not None and not generation.moved_since(self._generation):
                return None
            not_live = q.not_live_ids(connection)
            max_id = q.max_version_id(connection)
            if max_id > self._anchor[0]:
                self._anchor = (max_id, q.version_uuid(connection, max_id))
            if self._not_live is None:  # first poll: a baseline
                self._generation, self._not_live, self._max_version = generation, not_live, max_id
                return None
            gone = not_live - self._not_live
            moved = q.newest_ids_since(connection, self._max_version)
            names_of = q.version_names(connection, gone) if gone else {}
            outputs = q.outputs_showing(connection, gone) if gone else []
        changes = Changes(generation)
        for vid in gone:
            artifact_id, version = names_of.get(vid, (None, None))
            if artifact_id is not None:
                parent = inodes.make(Kind.ARTIFACT, artifact_id)
                changes.entries.append((parent, names.escape(version, reserved=True).encode()))
                changes.entries.append((parent, names.doc_name(version).encode()))
                moved.setdefault(artifact_id, 0)
            changes.inodes.append(inodes.make(Kind.VERSION, vid))
        for _step_io_id, step_run_id, name, _vid in outputs:
            parent = inodes.make(Kind.STEP, step_run_id)
            changes.entries.append((parent, names.escape(name, reserved=True).encode()))
            changes.entries.append((parent, names.doc_name(name).encode()))
        records = self.records
        with records.lock:
            for artifact_id in moved:
                if artifact_id in records.shown_latest:
                    changes.inodes.append(inodes.make(Kind.LATEST, artifact_id))
                    changes.inodes.append(inodes.make(Kind.ARTIFACT, artifact_id))
            records.moved(gone)
            self._generation, self._not_live = generation, not_live
            self._max_version = max(self._max_version, max_id)
        return changes


class IndexWentBack(RuntimeError):
    """The index under a running mount is older than what the mount showed."""


def _went_back(where: str) -> IndexWentBack:
    return IndexWentBack(
        f"the index under this mount went back ({where}): restored from a backup? Its ids may now name other "
        "versions than the ones the kernel has cached, so the mount stops rather than show their bytes; "
        "mount again (and run `artifactfs fsck` for what the store holds that the index does not)")


def _free_bytes(roots: list[str]) -> int:
    """Free bytes (for unprivileged writers) of the file systems holding
    ``roots``, each file system counted once; a root that is gone counts 0."""
    free: dict[int, int] = {}
    for root in roots:
        try:
            device, info = os.stat(root).st_dev, os.statvfs(root)
        except OSError:
            continue
        free[device] = info.f_bavail * info.f_frsize
    return sum(free.values())
