"""Payload bytes for the mount. A local store is read from the payload file
with ``pread``; a remote store through the block cache (``cache.py``),
filled by ranged GETs (``remote.py``) of the store's one public ranged read
(``ArtifactStore.read_range``).

Reads follow the reader's pattern and nothing else:

* local: no ``madvise``, no read-ahead of ours. Each open has its own file
  descriptor, so the kernel's own read-ahead sees each reader's pattern: a
  sequential stream gets large read-ahead, a random reader gets what it
  asked for. While one reader alone reads, ``pread`` runs on the trio
  thread (a hand-off to a worker costs more than the read itself); while
  several read at once, bytes the page cache holds are read on the trio
  thread (``preadv`` with ``RWF_NOWAIT`` never waits on the disk) and the
  rest in the disk reader threads (``diskpool``), so their disk reads are
  in flight together.
* remote: a random read fetches only the blocks it needs; a reader that
  keeps reading sequentially gets a window of ranged GETs running ahead of
  it, which grows while it stays sequential, in pieces sized by what a GET
  of the object costs (``readahead.py``).

Everything that waits on a store is bounded by ``timeout``: a read that has
no bytes after ``timeout`` seconds fails with EIO. Each object that fails is
logged once per outage of its store, and the store's return in one line
(``outages.py``).

It owns open files, per-handle patterns, per-store limits on GETs in flight
and the fetch tasks (started in the daemon's nursery). What a name or inode
is, is ``fs.py``'s business; FUSE is ``fuse.py``'s.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from dataclasses import dataclass, field

import trio

from artifactfs.errors import ArtifactfsError
from artifactfs.index import list_store_rows
from artifactfs.index.stores import OpenStores
from artifactfs.index.db import Index
from artifactfs.mount.cache import BlockCache, CachedFile, CacheKey
from artifactfs.mount.diskpool import DiskPool
from artifactfs.mount.nodes import Document, Payload
from artifactfs.mount.outages import Outages
from artifactfs.mount.readahead import Pattern, ReadAhead
from artifactfs.mount.remote import Fetch, RemoteFile, StoreFailure, StoreLanes
from artifactfs.stores import ArtifactStore

log = logging.getLogger(__name__)

_NOWAIT = getattr(os, "RWF_NOWAIT", 0)
_TOGETHER = 0.05  # seconds: files read from the disk this close in time are read together
_SKIP_AFTER_MISS = 8  # reads of a file sent straight to a thread after its page cache missed


@dataclass(frozen=True)
class ReaderConfig:
    timeout: float = 30.0  # seconds a read may wait on a store
    local_reads: str = "auto"  # "auto" (cached bytes inline, the rest in a thread), "inline" or "thread"
    local_threads: int = 16  # local reads waiting on the disk at once
    chunk_blocks: int = 8  # at most this many blocks per ranged GET of a random read
    connections: int = 8  # ranged GETs at once per store for waiting readers, as many again for read-ahead
    readahead_budget: int = 256 << 20  # bytes of read-ahead GETs in memory at once, per store
    readahead: ReadAhead = field(default_factory=ReadAhead)
    retry_after: float = 0.5  # a block whose GET failed gives EIO at once for this long while its store is down


# -- open files ------------------------------------------------------------------------------


class LocalFile:
    """A payload file of a local store, opened for one handle."""

    def __init__(self, target: Payload, store: ArtifactStore, fd: int) -> None:
        self.target, self.store, self.fd = target, store, fd
        self.nowait = bool(_NOWAIT)  # the file system can say "not cached" instead of waiting
        self.skip_nowait = 0  # reads left that go straight to a thread after "not cached"

    def close(self) -> None:
        """Close the payload file's descriptor."""
        os.close(self.fd)


def _pread_cached(file: LocalFile, buffer: bytearray, offset: int) -> int:
    """Bytes read into ``buffer`` from what the page cache holds, never waiting on the disk."""
    try:
        return os.preadv(file.fd, [buffer], offset, _NOWAIT)
    except BlockingIOError:
        return 0
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
            raise
        file.nowait = False  # this file system cannot: every read waits from now on
        return 0


@dataclass
class Handle:
    """One open of a file: what it reads, and (remote) this reader's pattern."""

    file: LocalFile | RemoteFile | Document
    pattern: Pattern | None = None
    ahead: list[Fetch] = field(default_factory=list)  # (remote) read-ahead GETs of this reader's run


# -- the reader --------------------------------------------------------------------------------


class Stores(OpenStores):
    """The mount's opened stores: ``index.stores.OpenStores`` (thread-safe,
    opened again after a ``store update``), checked for row changes at most
    every ``recheck`` seconds (the mount's refresh interval)."""

    def warm_up(self) -> None:
        """In a worker thread: open every store and build its client now, so
        the first read does not pay for imports and client set-up."""
        with self.index.read() as session:
            ids = [row.id for row in list_store_rows(session)]
        for store_id in ids:
            try:
                self.get(store_id).prepare_client()
            except Exception as exc:  # a broken store fails its own reads later, loudly
                log.debug("store %d could not be prepared: %s", store_id, exc)


class Reader:
    """Opens, reads and closes payload files for the FUSE adapter."""

    def __init__(self, index: Index, cache: BlockCache, nursery: trio.Nursery,
                 config: ReaderConfig | None = None, stores: Stores | None = None) -> None:
        self.index, self.cache, self.nursery = index, cache, nursery
        self.config = config or ReaderConfig()
        self.threads = trio.CapacityLimiter(128)  # network threads (stores limit themselves)
        self.db_threads = trio.CapacityLimiter(4)
        self.disk_threads = trio.CapacityLimiter(self.config.local_threads)
        self._stores = stores or Stores(index)
        self.outages = Outages(self.config.retry_after)
        self._lanes: dict[str, StoreLanes] = {}
        # Open remote files by (inode, store, uri): after a migration re-points
        # a version, new opens read the new place while old handles finish.
        self._files: dict[tuple, RemoteFile] = {}
        self._opening: dict[tuple, trio.Event] = {}
        self._recent_readers: dict[int, float] = {}  # local files read from the disk lately, by id
        self.disk_pool = DiskPool(self.config.local_threads)  # local reads that may wait on the disk

    def lanes(self, store: ArtifactStore) -> StoreLanes:
        """The store's limits on GETs in flight."""
        lanes = self._lanes.get(store.name)
        if lanes is None:
            lanes = self._lanes[store.name] = StoreLanes(self.config.connections, self.config.readahead_budget)
        return lanes

    def report(self, file: RemoteFile | LocalFile, start: int, end: int, exc: BaseException) -> None:
        """A read of ``file`` failed: logged once per object per outage of its store."""
        self.outages.failed(file.store, file.target.uri, start, end, exc)

    # -- open ----------------------------------------------------------------------------------

    async def open(self, target: Payload | Document, quiet: bool = False) -> Handle:
        """A handle on ``target``; StoreFailure (logged unless ``quiet``) if
        its store cannot give it."""
        if isinstance(target, Document):
            return Handle(target)
        store = await self._store(target, quiet)
        if store.is_local:
            return Handle(await self._open_local(store, target, quiet))
        key = _file_key(target)
        while True:
            file = self._files.get(key)
            if file is not None:
                file.refs += 1
                return self._remote_handle(file)
            opening = self._opening.get(key)
            if opening is None:
                break
            await opening.wait()
        self._opening[key] = event = trio.Event()
        try:
            file = await self._open_remote(store, target, quiet)
            file.refs = 1
            self._files[key] = file
            return self._remote_handle(file)
        finally:
            del self._opening[key]
            event.set()

    def _remote_handle(self, file: RemoteFile) -> Handle:
        return Handle(file, Pattern())

    async def _store(self, target: Payload, quiet: bool) -> ArtifactStore:
        store = self._stores.get_if_fresh(target.store_id)  # the usual case: no thread
        if store is not None:
            return store
        try:
            return await trio.to_thread.run_sync(self._stores.get, target.store_id, limiter=self.db_threads)
        except Exception as exc:
            if not quiet:
                log.error("store %s: cannot be opened for %s: %s", target.store, target.uri, exc)
            raise StoreFailure(str(exc)) from exc

    async def _open_local(self, store: ArtifactStore, target: Payload, quiet: bool) -> LocalFile:
        """Opened on the loop when the kernel's lookup cache holds the whole
        path (``openat2(RESOLVE_CACHED)``: it never waits on the disk), else
        in a worker thread: a thread hand-off costs more than such an open."""
        def open_file(cached_only: bool = False) -> LocalFile:
            # One open beneath the store's root descriptor, no link followed
            # (stores.beneath); size and mode come from that descriptor, never
            # from a second lookup of the name.
            fd = store.beneath.open_read_fd(store.local_relative(target.uri), cached_only=cached_only)
            try:
                info = os.fstat(fd)
                if info.st_size != target.size:
                    raise OSError(errno.EIO, f"payload is {info.st_size} bytes, its manifest says {target.size}")
                hidden = (target.mode or 0) & ~stat.S_IMODE(info.st_mode)
                if hidden:  # the mount would show (and let others read) more than the file allows
                    raise OSError(errno.EACCES, f"payload file has mode {stat.S_IMODE(info.st_mode):o}, "
                                                f"the mount shows {target.mode:o}; not served")
            except BaseException:
                os.close(fd)
                raise
            return LocalFile(target, store, fd)

        try:
            try:
                return open_file(cached_only=True)
            except BlockingIOError:
                return await trio.to_thread.run_sync(open_file, limiter=self.disk_threads)
        except (OSError, ArtifactfsError) as exc:  # a link or a special file where the payload was, too
            if not quiet:
                log.error("store %s: cannot open %s: %s", store.name, target.uri, exc)
            raise StoreFailure(str(exc)) from exc

    async def _open_remote(self, store: ArtifactStore, target: Payload, quiet: bool) -> RemoteFile:
        def prepare() -> CachedFile | None:  # checks the URI lies in the store; touches the cache's disk
            store.resolve(target.uri)
            return self.cache.open(CacheKey(target.version_uuid, target.path), target.size) if target.size else None

        try:
            cached = await trio.to_thread.run_sync(prepare, limiter=self.db_threads)
        except Exception as exc:
            if not quiet:
                log.error("store %s: cannot open %s: %s", store.name, store.redact(target.uri), exc)
            raise StoreFailure(str(exc)) from exc
        return RemoteFile(self, target, store, cached)

    # -- read ----------------------------------------------------------------------------------

    async def read(self, handle: Handle, offset: int, size: int) -> bytes:
        """``size`` bytes at ``offset`` of an open file: a document, a local
        payload file, or a remote one through the cache."""
        file = handle.file
        if isinstance(file, Document):
            return file.data[offset : offset + size]
        if isinstance(file, LocalFile):
            data = await self._read_local(file, offset, size)
            if self.outages.down:  # a read of a store that failed lately worked: it is back
                self.outages.succeeded(file.store)
            return data
        return await self._read_remote(handle, file, offset, size)

    async def _read_local(self, file: LocalFile, offset: int, size: int) -> bytes:
        """Read on the loop while one reader alone reads (a hand-off to a
        thread costs more than the read); with several reading at once, what
        the page cache holds is read on the loop and the rest in worker
        threads, so their disk reads happen together."""
        mode = self.config.local_reads
        try:
            if mode == "inline" or (mode == "auto" and self._alone(file)):
                return os.pread(file.fd, size, offset)
            if mode == "auto" and file.nowait and file.skip_nowait:
                file.skip_nowait -= 1
            elif mode == "auto" and file.nowait:
                buffer = bytearray(size)
                got = _pread_cached(file, buffer, offset)
                if not got:  # a cold reader: asking the page cache first costs a system call (and starts
                    file.skip_nowait = _SKIP_AFTER_MISS  # the disk read on the loop): ask less often
                if got == size or offset + got >= file.target.size:
                    return buffer if got == size else memoryview(buffer)[:got]
                if got:
                    return bytes(memoryview(buffer)[:got]) + await self._pread_thread(file, size - got, offset + got)
            return await self._pread_thread(file, size, offset)
        except OSError as exc:
            self.report(file, offset, offset + size, exc)
            raise StoreFailure(str(exc)) from exc

    def _alone(self, file: LocalFile) -> bool:
        """Whether ``file`` is the only local file read lately, none waiting in a thread."""
        now = trio.current_time()
        recent = self._recent_readers
        recent[id(file)] = now
        if len(recent) > 1:
            for key in [k for k, seen in recent.items() if now - seen > _TOGETHER]:
                del recent[key]
        return len(recent) == 1 and not self.disk_pool.waiting

    async def _pread_thread(self, file: LocalFile, size: int, offset: int) -> bytes:
        return await self.disk_pool.run(os.pread, file.fd, size, offset)

    async def _read_remote(self, handle: Handle, file: RemoteFile, offset: int, size: int) -> bytes:
        end = min(offset + size, file.size)
        if offset >= end:
            return b""
        cached = file.cached
        if not cached.complete:
            config = self.config
            bs = cached.block_size
            first, last = offset // bs, (end - 1) // bs
            pattern = handle.pattern
            if not pattern.observe(offset, end, bs, config.readahead) and handle.ahead:
                for fetch in handle.ahead:  # a seek ends the run: its read-ahead is not wanted any more
                    fetch.stop()
                handle.ahead.clear()
            upto, piece = pattern.plan(offset, end, file.size, bs, file.cost, config.readahead,
                                       file.store.streams_ranges)
            if piece:
                handle.ahead = [fetch for fetch in handle.ahead if not fetch.done.is_set()]
                handle.ahead += file.schedule(first, (upto - 1) // bs, -(-piece // bs), ahead=True)
            else:
                file.schedule(first, last, config.chunk_blocks)
            with trio.move_on_after(config.timeout) as scope:
                await file.wait(first, last)
            if scope.cancelled_caught:
                error = TimeoutError(f"no bytes within {config.timeout:g} s")
                self.report(file, offset, end, error)
                raise StoreFailure(f"{file.store.name}: {error}")
        return cached.view()[offset:end]

    # -- release ---------------------------------------------------------------------------------

    async def release(self, handle: Handle) -> None:
        """The end of one open: close a local file, or drop one reference to a remote one."""
        file = handle.file
        if isinstance(file, Document):
            return
        if isinstance(file, LocalFile):
            file.close()  # closing a read-only descriptor does not wait on the disk
            return
        file.refs -= 1
        if file.refs == 0:
            del self._files[_file_key(file.target)]
            await trio.to_thread.run_sync(file.close, limiter=self.db_threads)

    def close(self) -> None:
        """Stop the disk reader threads (at unmount)."""
        self.disk_pool.close()

    def statistics(self) -> dict:
        """Open files and the cache's figures."""
        return {"open_files": len(self._files), "cache": self.cache.statistics()}


def _file_key(target: Payload) -> tuple:
    return target.inode, target.store_id, target.uri
