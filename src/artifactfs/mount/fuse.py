"""The pyfuse3 ``Operations`` of the mount: a thin adapter. Each handler
decodes the request, asks ``fs.Tree`` (names, inodes, attributes) or the
``reader.Reader`` (bytes), and turns the answer into pyfuse3 objects.
Errors become errnos in one place (:func:`_errors`); writes are EROFS.

Kernel caching is decided here from what the tree says: immutable things
(version folders, payload files, misses inside version folders) get long
entry/attribute timeouts (a day); moving ones (``latest``, pipeline, run,
step and artifact folders, misses elsewhere) get the refresh interval; a
JSON document keeps its name long but its attributes briefly, and is read
with direct I/O (it is made afresh on each open). The refresh task
invalidates kernel entries of versions that stop being live and of
``latest`` links that move. Every open of a payload file keeps the page
cache (``keep_cache``).

Tree calls are first tried from memory on the trio thread; a miss runs the
call in a worker thread (``to_thread.run_sync``, under a limiter) so the
loop never waits on the database.

Every request is counted by operation (:attr:`Operations.requests`; the
daemon writes the counts out on SIGUSR1), so a benchmark or a test can see
how many requests a workload costs. ``flush`` answers ENOSYS: the kernel
then stops sending one on every close (there is nothing to flush on a
read-only mount).
"""

from __future__ import annotations

import errno
import functools
import itertools
import logging
import os
from collections import Counter
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import pyfuse3
import trio

from artifactfs.mount.fs import Document, FsError, IndexWentBack, NeedsIndex, Node, NotFound, Tree
from artifactfs.mount.reader import Handle, Reader, StoreFailure

log = logging.getLogger(__name__)

_STATFS_BLOCK = 4096  # the unit of the block counts `df` shows


@dataclass(frozen=True)
class Timeouts:
    stable: float = 24 * 3600.0  # immutable content: an hour or more
    moving: float = 1.0  # names and attributes that can change (= refresh interval)


@contextmanager
def _errors(what: str):
    """The one mapping from exceptions to errnos."""
    try:
        yield
    except pyfuse3.FUSEError:
        raise
    except FsError as exc:
        raise pyfuse3.FUSEError(exc.errno) from None
    except OSError as exc:
        log.warning("%s: %s", what, exc)
        raise pyfuse3.FUSEError(exc.errno or errno.EIO) from None
    except Exception:
        log.exception("%s failed", what)
        raise pyfuse3.FUSEError(errno.EIO) from None


def _counted(handler: Callable) -> Callable:
    """Count each call of a request handler in ``Operations.requests``, by name."""
    name = handler.__name__

    @functools.wraps(handler)
    async def counted(self: Operations, *args):
        self.requests[name] += 1
        return await handler(self, *args)

    return counted


def _writes(flags: int) -> bool:
    """Whether an open asks to change the file (a read-only open with
    O_APPEND does not: a read-only ext4 allows it too)."""
    return flags & os.O_ACCMODE != os.O_RDONLY or bool(flags & (os.O_TRUNC | os.O_CREAT))


@dataclass
class _Dir:
    """An open folder: the listing it reads from, made again on a seek to 0."""

    inode: int
    entries: list[tuple[bytes, Node]]
    read: bool = False  # served from offset 0 already: a new offset 0 is a rewinddir


class Operations(pyfuse3.Operations):
    supports_dot_lookup = False
    enable_writeback_cache = False

    def __init__(self, tree: Tree, timeouts: Timeouts | None = None, db_threads: int = 4) -> None:
        super().__init__()
        self.tree = tree
        self.timeouts = timeouts or Timeouts()
        self.reader: Reader | None = None
        self.initialized = trio.Event()
        self._db = trio.CapacityLimiter(db_threads)
        self._fh = itertools.count(1)
        self._dirs: dict[int, _Dir] = {}
        self._files: dict[int, Handle] = {}
        self.requests: Counter[str] = Counter()  # FUSE requests served, by operation

    def init(self) -> None:
        """pyfuse3 started the session: the mount is up."""
        self.initialized.set()

    # -- plumbing -------------------------------------------------------------------------

    async def _tree(self, method: Callable, *args):
        """Answer from memory on the loop, else in a worker thread."""
        try:
            with self.tree.memory_only():
                return method(*args)
        except NeedsIndex:
            pass
        return await trio.to_thread.run_sync(method, *args, limiter=self._db)

    def _attrs(self, node: Node) -> pyfuse3.EntryAttributes:
        attrs = pyfuse3.EntryAttributes()
        attrs.st_ino = node.inode
        attrs.generation = 0
        attrs.entry_timeout = self.timeouts.moving if node.name_moves else self.timeouts.stable
        attrs.attr_timeout = self.timeouts.moving if node.moving else self.timeouts.stable
        attrs.st_mode = node.mode
        attrs.st_nlink = node.nlink
        attrs.st_uid = self.tree.uid
        attrs.st_gid = self.tree.gid
        attrs.st_size = node.size
        attrs.st_blksize = 1 << 20  # tools like cp read in chunks of this size
        attrs.st_blocks = (node.size + 511) // 512
        attrs.st_atime_ns = attrs.st_mtime_ns = attrs.st_ctime_ns = node.mtime_ns
        return attrs

    def _negative(self, stable: bool) -> pyfuse3.EntryAttributes:
        attrs = pyfuse3.EntryAttributes()
        attrs.st_ino = 0  # a negative entry, cached by the kernel for entry_timeout
        attrs.entry_timeout = self.timeouts.stable if stable else self.timeouts.moving
        return attrs

    # -- names ------------------------------------------------------------------------------

    @_counted
    async def lookup(self, parent_inode, name, ctx=None):
        """FUSE lookup: the entry's attributes, or a negative entry the kernel may cache."""
        with _errors("lookup"):
            try:
                node = await self._tree(self.tree.lookup, parent_inode, bytes(name))
            except NotFound as miss:
                return self._negative(miss.stable)
            return self._attrs(node)

    @_counted
    async def getattr(self, inode, ctx=None):
        """FUSE getattr: the inode's attributes."""
        with _errors("getattr"):
            return self._attrs(await self._tree(self.tree.getattr, inode))

    @_counted
    async def readlink(self, inode, ctx):
        """FUSE readlink: the target of a ``latest`` link."""
        with _errors("readlink"):
            return await self._tree(self.tree.readlink, inode)

    @_counted
    async def forget(self, inode_list):
        """Inodes are derived from index ids, so there is nothing to drop."""

    # -- folders ------------------------------------------------------------------------------

    @_counted
    async def opendir(self, inode, ctx):
        """FUSE opendir: list the folder once; ``readdir`` pages through that listing."""
        with _errors("opendir"):
            entries = await self._tree(self.tree.listdir, inode)
        fh = next(self._fh)
        self._dirs[fh] = _Dir(inode, entries)
        return fh

    @_counted
    async def readdir(self, fh, start_id, token):
        """FUSE readdir: entries from ``start_id`` on, until the kernel's buffer
        is full (0 after a first pass: a rewind, listed afresh)."""
        folder = self._dirs.get(fh)
        if folder is None:
            raise pyfuse3.FUSEError(errno.EBADF)
        if start_id == 0:
            if folder.read:  # rewinddir: list afresh
                with _errors("readdir"):
                    folder.entries = await self._tree(self.tree.listdir, folder.inode)
            folder.read = True
        entries = folder.entries
        for position in range(start_id, len(entries)):
            name, node = entries[position]
            if not pyfuse3.readdir_reply(token, name, self._attrs(node), position + 1):
                break

    @_counted
    async def releasedir(self, fh):
        """FUSE releasedir: forget the folder's listing."""
        self._dirs.pop(fh, None)

    # -- files ------------------------------------------------------------------------------------

    @_counted
    async def open(self, inode, flags, ctx):
        """FUSE open: a handle for reading (EROFS for any write)."""
        if _writes(flags):
            raise pyfuse3.FUSEError(errno.EROFS)
        with _errors("open"):
            target = await self._tree(self.tree.open, inode)
            try:
                handle = await self.reader.open(target, quiet=True)
            except StoreFailure:  # maybe re-pointed by a migration since we read its record
                target = await trio.to_thread.run_sync(self.tree.reopen, inode, limiter=self._db)
                handle = await self.reader.open(target)
        fh = next(self._fh)
        self._files[fh] = handle
        if isinstance(target, Document):  # made afresh on each open, may change
            return pyfuse3.FileInfo(fh=fh, direct_io=True, keep_cache=False)
        return pyfuse3.FileInfo(fh=fh, keep_cache=True)

    @_counted
    async def read(self, fh, off, size):
        """FUSE read: ``size`` bytes at ``off`` of an open file."""
        handle = self._files.get(fh)
        if handle is None:
            raise pyfuse3.FUSEError(errno.EBADF)
        with _errors("read"):
            return await self.reader.read(handle, off, size)

    @_counted
    async def flush(self, fh):
        """FUSE flush: not implemented (ENOSYS), so the kernel stops sending it on close."""
        raise pyfuse3.FUSEError(errno.ENOSYS)  # the kernel stops sending flush on close

    @_counted
    async def release(self, fh):
        """FUSE release: close the handle (the file's data may then be evicted from the cache)."""
        handle = self._files.pop(fh, None)
        if handle is not None:
            with _errors("release"):
                await self.reader.release(handle)

    # -- extended attributes -------------------------------------------------------------------

    @_counted
    async def getxattr(self, inode, name, ctx):
        """FUSE getxattr: one extended attribute."""
        with _errors("getxattr"):
            return await self._tree(self.tree.getxattr, inode, bytes(name))

    @_counted
    async def listxattr(self, inode, ctx):
        """FUSE listxattr: the names of the inode's extended attributes."""
        with _errors("listxattr"):
            values = await self._tree(self.tree.xattrs, inode)
        return [name.encode() for name in values]

    @_counted
    async def statfs(self, ctx):
        """FUSE statfs: the live payload as used space, the local stores' free space as available."""
        with _errors("statfs"):
            usage = await self._tree(self.tree.usage)
        stats = pyfuse3.StatvfsData()
        stats.f_bsize = 1 << 20  # the preferred read size
        stats.f_frsize = _STATFS_BLOCK
        # Used: the live payload; available: the free space of this machine's local stores
        # (the mount itself is read-only, but a full disk under the store is worth seeing).
        free = usage.free // _STATFS_BLOCK
        stats.f_blocks = -(-usage.bytes // _STATFS_BLOCK) + free
        stats.f_bfree = stats.f_bavail = free
        stats.f_files = usage.files
        stats.f_ffree = stats.f_favail = 0
        stats.f_namemax = 255
        return stats

    # -- everything that would write: EROFS ---------------------------------------------------

    async def _read_only(self, *args, **kwargs):
        self.requests["write"] += 1
        raise pyfuse3.FUSEError(errno.EROFS)

    setattr = mknod = mkdir = unlink = rmdir = symlink = rename = link = _read_only
    write = create = setxattr = removexattr = _read_only

    @_counted
    async def fsync(self, fh, datasync):
        """FUSE fsync: nothing to make durable on a read-only mount."""
        pass

    # -- live refresh ------------------------------------------------------------------------------

    async def refresh_loop(self, interval: float) -> None:
        """Poll the index generation; when it moves, forget what moved (here
        and in the kernel). Runs until cancelled."""
        await trio.to_thread.run_sync(self.tree.refresh, limiter=self._db)  # the baseline
        while True:
            await trio.sleep(interval)
            try:
                changes = await trio.to_thread.run_sync(self.tree.refresh, limiter=self._db)
            except IndexWentBack as exc:  # what the kernel cached may name other versions now
                log.error("%s: unmounting", exc)
                pyfuse3.terminate()
                return
            except Exception:
                log.exception("refresh: cannot read the index (will retry)")
                continue
            if changes is None:
                continue
            for parent, name in changes.entries:
                pyfuse3.invalidate_entry_async(parent, name, ignore_enoent=True)
            if changes.inodes:
                await trio.to_thread.run_sync(_invalidate_inodes, changes.inodes, limiter=self._db)
            log.debug("index generation %d: %d entries and %d inodes invalidated",
                      changes.generation, len(changes.entries), len(changes.inodes))


def _invalidate_inodes(numbers: list[int]) -> None:
    for inode in numbers:
        try:
            pyfuse3.invalidate_inode(inode, attr_only=True)
        except OSError as exc:
            if exc.errno not in (errno.ENOENT, errno.ENOSYS):
                log.warning("cannot invalidate inode %d: %s", inode, exc)
