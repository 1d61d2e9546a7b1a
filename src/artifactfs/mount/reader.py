"""Payload bytes for the mount. A local store is read from the payload file
with ``pread``; a remote store through the block cache (``cache.py``),
filled by ranged reads of the store's one public ranged read
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
* remote: a random read fetches only the blocks it needs (several ranged
  GETs at once); a reader that keeps reading sequentially gets a window of
  ranged GETs running ahead of it, which doubles each time the reader
  catches up with it (``initial_window`` to ``max_window``).

Everything that waits on a store is bounded by ``timeout``: a read that has
no bytes after ``timeout`` seconds fails with EIO, and one log line names
the store and the object.

It owns open files, per-handle sequential detection, per-store connection
limits and the fetch tasks (started in the daemon's nursery). What a name
or inode is, is ``fs.py``'s business; FUSE is ``fuse.py``'s.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import time
from dataclasses import dataclass

import trio

from artifactfs.errors import ArtifactfsError
from artifactfs.index import list_store_rows
from artifactfs.index.stores import OpenStores
from artifactfs.index.db import Index
from artifactfs.mount.cache import BlockCache, CachedFile, CacheKey
from artifactfs.mount.diskpool import DiskPool
from artifactfs.mount.nodes import Document, FsError, Payload
from artifactfs.stores import ArtifactStore

log = logging.getLogger(__name__)

_NOWAIT = getattr(os, "RWF_NOWAIT", 0)
_TOGETHER = 0.05  # seconds: files read from the disk this close in time are read together
_SKIP_AFTER_MISS = 8  # reads of a file sent straight to a thread after its page cache missed


class StoreFailure(FsError):
    """A store failed or did not answer in time: EIO."""

    errno = errno.EIO


@dataclass(frozen=True)
class ReaderConfig:
    timeout: float = 30.0  # seconds a read may wait on a store
    local_reads: str = "auto"  # "auto" (cached bytes inline, the rest in a thread), "inline" or "thread"
    local_threads: int = 16  # local reads waiting on the disk at once
    chunk_blocks: int = 8  # at most this many blocks per ranged GET of a random read
    initial_window: int = 4 << 20  # how far ranged GETs run ahead of a sequential reader...
    max_window: int = 128 << 20  # ...doubling each time the reader catches up, up to this
    max_piece: int = 32 << 20  # bytes per ranged GET of the window (a quarter of it)
    sequential_slack: int = 8 << 20  # a read this close to the previous one is sequential
    connections: int = 8  # ranged GETs at once, per store
    log_every: float = 30.0  # one line per failing object per this many seconds


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


class RemoteFile:
    """One remote payload file while open, shared by its handles: its cache
    file and the ranged GETs in flight (a GET per run of missing blocks)."""

    def __init__(self, reader: Reader, target: Payload, store: ArtifactStore, cached: CachedFile | None) -> None:
        self.reader, self.target, self.store, self.cached = reader, target, store, cached
        self.size = target.size
        self.refs = 0
        self.closed = False
        self.inflight: dict[int, trio.Event] = {}  # block -> its fetch's event
        self.errors: dict[int, tuple[BaseException, float]] = {}  # block -> why and when its fetch failed

    def close(self) -> None:
        """Mark the file closed (read-ahead stops) and let the cache know this open ended."""
        self.closed = True
        if self.cached is not None:
            self.reader.cache.release(self.cached)

    def schedule(self, first: int, last: int, piece: int) -> None:
        """Start GETs for the missing blocks of ``first..last`` that are not
        in flight, ``piece`` blocks at most per GET."""
        run: list[int] = []
        now = trio.current_time()
        for block in self.cached.missing(first, last):
            if block in self.inflight or self._failed(block, now) is not None:
                continue
            if run and (block != run[-1] + 1 or len(run) == piece):
                self._start(run[0], run[-1])
                run = []
            run.append(block)
        if run:
            self._start(run[0], run[-1])

    def _failed(self, block: int, now: float) -> BaseException | None:
        """Why the block's fetch failed, if it failed within ``timeout``: the
        kernel asks again at once (its read-ahead failed, then it reads the
        page itself), and that ask must not wait out the timeout again."""
        failure = self.errors.get(block)
        if failure is not None and now - failure[1] < self.reader.config.timeout:
            return failure[0]
        return None

    def _start(self, first: int, last: int) -> None:
        event = trio.Event()
        for block in range(first, last + 1):
            self.inflight[block] = event
            self.errors.pop(block, None)
        self.reader.nursery.start_soon(self._fetch, first, last, event)

    async def _fetch(self, first: int, last: int, event: trio.Event) -> None:
        bs = self.cached.block_size
        start, end = first * bs, min((last + 1) * bs, self.size)
        timeout = self.reader.config.timeout
        try:
            async with self.reader.limiter(self.store):
                if self.closed:
                    return
                with trio.move_on_after(timeout) as scope:
                    await trio.to_thread.run_sync(self._get, start, end, abandon_on_cancel=True,
                                                  limiter=self.reader.threads)
            if scope.cancelled_caught:
                raise TimeoutError(f"no answer within {timeout:g} s")
        except Exception as exc:  # any store error becomes EIO for the reads waiting on these blocks
            failed_at = trio.current_time()
            for block in range(first, last + 1):
                self.errors[block] = (exc, failed_at)
            self.reader.report(self, start, end, exc)
        finally:
            for block in range(first, last + 1):
                if self.inflight.get(block) is event:
                    del self.inflight[block]
            event.set()

    def _get(self, start: int, end: int) -> None:
        """In a worker thread: one ranged GET, stored in the cache."""
        for piece in self.store.read_range(self.target.uri, start, end, chunk=end - start):
            self.cached.write(start, piece)

    async def wait(self, first: int, last: int) -> bool:
        """Until blocks ``first..last`` are cached (StoreFailure if their
        fetch failed); whether it had to wait for a fetch."""
        waited = False
        for block in range(first, last + 1):
            while not self.cached.has(block):
                event = self.inflight.get(block)
                if event is None:
                    error = self._failed(block, trio.current_time())
                    if error is not None:
                        raise StoreFailure(f"{self.store.name}: {error}")
                    self.schedule(block, last, self.reader.config.chunk_blocks)
                    continue
                waited = True
                await event.wait()
        return waited


@dataclass
class Handle:
    """One open of a file: what it reads, and this reader's pattern."""

    file: LocalFile | RemoteFile | Document
    next_offset: int = 0  # where this reader's next sequential read starts
    run: int = 1  # sequential reads in a row (a read at 0 counts as one more)
    window: int = 0  # remote: bytes fetched ahead of a sequential reader
    ahead: int = 0  # remote: where this reader's read-ahead has asked up to


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
                self.get(store_id).fs  # noqa: B018 - builds the client now
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
        self._limiters: dict[str, trio.CapacityLimiter] = {}
        # Open remote files by (inode, store, uri): after a migration re-points
        # a version, new opens read the new place while old handles finish.
        self._files: dict[tuple, RemoteFile] = {}
        self._opening: dict[tuple, trio.Event] = {}
        self._reported: dict[tuple[str, str], float] = {}
        self._recent_readers: dict[int, float] = {}  # local files read from the disk lately, by id
        self.disk_pool = DiskPool(self.config.local_threads)  # local reads that may wait on the disk

    def limiter(self, store: ArtifactStore) -> trio.CapacityLimiter:
        """The limiter on concurrent requests to ``store`` (one per store)."""
        limiter = self._limiters.get(store.name)
        if limiter is None:
            limiter = self._limiters[store.name] = trio.CapacityLimiter(self.config.connections)
        return limiter

    def report(self, file: RemoteFile | LocalFile, start: int, end: int, exc: BaseException) -> None:
        """One log line per failing object (and then one per ``log_every``)."""
        store, uri = file.store, file.target.uri
        now = time.monotonic()
        key = (store.name, uri)
        if now - self._reported.get(key, -1e9) < self.config.log_every:
            return
        self._reported[key] = now
        detail = store.redact(f"{type(exc).__name__}: {exc}")[:300]
        log.error("store %s: reading %s (bytes %d-%d) failed: %s", store.name, store.redact(uri), start, end, detail)

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
        return Handle(file, window=self.config.initial_window)

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
            return await self._read_local(file, offset, size)
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
            sequential = handle.next_offset - config.sequential_slack <= offset <= handle.next_offset + bs
            handle.run = handle.run + 1 if sequential else 0
            handle.next_offset = max(handle.next_offset, end) if sequential else end
            if not sequential:
                handle.ahead = 0
            file.schedule(first, last, config.chunk_blocks)
            if handle.run >= 2:
                self._read_ahead(handle, file, end)
            with trio.move_on_after(config.timeout) as scope:
                caught_up = await file.wait(first, last)
            if scope.cancelled_caught:
                raise StoreFailure(f"{file.store.name}: no answer within {config.timeout:g} s")
            if caught_up and handle.run >= 2:  # the reader waited on the window: widen it
                handle.window = min(handle.window * 2, config.max_window)
        return cached.view()[offset:end]

    def _read_ahead(self, handle: Handle, file: RemoteFile, end: int) -> None:
        """Keep GETs running ``handle.window`` bytes ahead of a sequential
        reader, in whole pieces of a quarter of the window: a GET costs a
        request's latency (and on some servers time for the whole object),
        so the window is not topped up a block at a time."""
        bs = file.cached.block_size
        piece = max(bs, min(handle.window // 4, self.config.max_piece) // bs * bs)
        start = max(handle.ahead, end // bs * bs)
        upto = min(end + handle.window, file.size)
        if upto - start < piece and upto < file.size:
            return
        file.schedule(start // bs, (upto - 1) // bs, piece // bs)
        handle.ahead = upto

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
