"""What the mount's tree hands out, and its errors: nodes (attributes of
one inode), open targets (a payload file or a made document), what the
kernel must forget after the index moved, and the error classes, each
carrying its errno (``fuse.py`` maps them in one place).

Also the node builders every part of the tree shares, so a version folder,
a payload file or a document looks the same whether it was found by a
lookup, a listing or a ``getattr``. No queries and no caches here.
"""

from __future__ import annotations

import errno
import stat
from dataclasses import dataclass, field

from artifactfs.index import tree as q
from artifactfs.mount import inodes
from artifactfs.mount.inodes import Kind

# Folders are 0755 like any folder a user makes, so a `cp -r` out of the mount can be
# deleted again; writes still get EROFS (a read-only mount), as rclone and mountpoint-s3 do.
DIR_MODE = stat.S_IFDIR | 0o755
LINK_MODE = stat.S_IFLNK | 0o777
UNKNOWN_FILE_MODE = 0o444  # a manifest row without a mode (read-only for all, as before modes were kept)
PERMISSION_BITS = 0o777  # set-id and sticky bits of a payload never reach the mount


# -- errors ------------------------------------------------------------------------------------------


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


class Unsupported(FsError):
    errno = errno.EOPNOTSUPP


class Overflow(FsError):
    errno = errno.EOVERFLOW


class IsADir(FsError):
    errno = errno.EISDIR


class InvalidArgument(FsError):
    errno = errno.EINVAL


class NeedsIndex(Exception):
    """Raised in ``memory_only`` mode when the answer needs a query."""


# -- what the tree hands out -----------------------------------------------------------------------


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
        """Whether the name may come to mean another node (its entry then gets the short timeout)."""
        return self.moving if self.moving_name is None else self.moving_name

    @property
    def is_dir(self) -> bool:
        """Whether the node is a folder."""
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
    mode: int | None = None  # the permission bits the mount shows (None: not checked)


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


@dataclass(frozen=True, slots=True)
class Usage:
    """What ``statfs`` reports: the live payload the index holds, and the
    free space of the file systems of this machine's local stores (0 when
    it has none: a remote store has no free space to show)."""

    bytes: int
    files: int
    free: int = 0


@dataclass(frozen=True, slots=True)
class View:
    """A version shown as a folder: under /artifacts (owner = version id) or
    as a step output (owner = step_io id)."""

    folder_kind: Kind  # VERSION_DIR or OUTPUT_DIR
    owner: int
    version: q.VersionRecord


def split(inode: int) -> tuple[Kind, int]:
    """``(kind, payload)`` of an inode; NotFound for a number no inode has."""
    try:
        return inodes.split(inode)
    except ValueError:
        raise NotFound(f"inode {inode}") from None


# -- node builders -----------------------------------------------------------------------------------


def dir_node(inode: int, mtime_ns: int, moving: bool, nlink: int = 1) -> Node:
    """A folder node (size 0: ``du -b`` of a folder counts its payload only)."""
    return Node(inode, DIR_MODE, 0, mtime_ns, nlink, moving)  # size 0: `du -b` of a folder is its payload


def folder_node(view: View, number: int, subfolders: int = 0) -> Node:
    """A folder of a version; the top one (number 0) reports nlink 1 ("not
    counted"), sub-folders 2 + their sub-folders."""
    inode = inodes.folder(view.folder_kind, view.owner, number)
    return Node(inode, DIR_MODE, 0, view.version.created_ns, 2 + subfolders if number else 1, False)


def shown_mode(record: q.FileRecord) -> int:
    """The permission bits the mount shows for a payload file: its manifest's."""
    return record.mode & PERMISSION_BITS if record.mode else UNKNOWN_FILE_MODE


def file_node(version: q.VersionRecord, record: q.FileRecord) -> Node:
    """A payload file with its recorded permission bits (the owner is the
    mounting user; ``default_permissions`` makes the kernel enforce them)."""
    bits = shown_mode(record)
    return Node(inodes.make(Kind.FILE, record.id), stat.S_IFREG | bits, record.size, version.created_ns,
                version.links, False)


def doc_node(inode: int, version: q.VersionRecord, size: int) -> Node:
    """A JSON document: its name lives as long as its version (and is
    invalidated with it); its content (tags, consumers) can change."""
    return Node(inode, stat.S_IFREG | 0o444, size, version.created_ns, 1, True, False)


def latest_node(artifact: q.Named, target: bytes) -> Node:
    """The ``latest`` link of an artifact, pointing at ``target`` (its newest version)."""
    return Node(inodes.make(Kind.LATEST, artifact.id), LINK_MODE, len(target), artifact.time_ns, 1, True)


def named_node(kind: Kind, record: q.Named) -> Node:
    """The folder of a pipeline, run, step or artifact record."""
    return dir_node(inodes.make(kind, record.id), record.time_ns, True)
