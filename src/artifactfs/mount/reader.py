"""Payload bytes for the mount: a local store is read from the payload file
(mapped, or ``os.pread``); a remote store through the block cache
(``cache.py``). A sequential reader is fed by one streamed GET per run of
missing blocks (``stream.py``), which runs ahead of its reader by a window
that doubles while the reader keeps up (``initial_window`` to
``max_window``); random reads fetch only the blocks they need with ranged
GETs, several at once. Network work runs in worker threads. Everything that
waits on a store is bounded by ``timeout``: past it the read fails with EIO
and one log line names the store and the object.

It owns open files (shared by every handle on the same inode), per-handle
sequential detection, per-store connection limits and the fetch tasks
(started in the daemon's nursery). What a name or inode is, is ``fs.py``'s
business; FUSE is ``fuse.py``'s.
"""

from __future__ import annotations

import errno
import logging
import mmap
import os
import threading
import time
from dataclasses import dataclass, field

import trio

from artifactfs.index import list_store_rows, open_store
from artifactfs.index import tree as q
from artifactfs.index.db import Index
from artifactfs.mount.cache import BlockCache, CachedFile, CacheKey
from artifactfs.mount.fs import Document, FsError, Payload
from artifactfs.mount.stream import GO, PAUSE, STOP, Sink, stream_range
from artifactfs.stores import ArtifactStore

log = logging.getLogger(__name__)


class StoreFailure(FsError):
    """A store failed or did not answer in time: EIO."""

    errno = errno.EIO


@dataclass(frozen=True)
class ReaderConfig:
    timeout: float = 30.0  # seconds a read may wait on a store
    local_reads: str = "mmap"  # "mmap", "inline" (pread on the loop) or "thread" (pread in a worker)
    chunk_blocks: int = 8  # at most this many blocks per ranged GET of a random read
    initial_window: int = 4 << 20  # how far a new stream may run ahead of its reader...
    max_window: int = 64 << 20  # ...doubling while the reader keeps up, up to this
    stream_near_blocks: int = 16  # a block this close ahead of a stream waits for it
    sequential_slack: int = 8 << 20  # a read this close to the previous one is sequential
    connections: int = 8  # per store: ranged GETs at once, and as many streams
    log_every: float = 30.0  # one line per failing object per this many seconds


# -- open files ------------------------------------------------------------------------------


class LocalFile:
    """A payload file of a local store, open once for every handle on it.

    ``mapped``: the file is mapped and reads return slices of the mapping,
    which saves the copy into a bytes object. Only done for payloads that
    artifactfs wrote itself (``<root>/<name>/<uuid>/``): those never change
    and the pruner only unlinks them, which leaves a mapping valid. A payload
    registered in place may be rewritten by its owner; a mapping of a file
    that shrinks would kill the daemon with SIGBUS, so those are ``pread``.
    """

    def __init__(self, target: Payload, store: ArtifactStore, fd: int, mapped: mmap.mmap | None) -> None:
        self.target, self.store, self.fd, self.refs = target, store, fd, 0
        self.mapped = mapped
        self.view = memoryview(mapped) if mapped is not None else None

    def close(self) -> None:
        if self.view is not None:
            try:
                self.view.release()
                self.mapped.close()
            except BufferError:  # a slice still referenced somewhere: the GC unmaps it
                pass
        os.close(self.fd)


class Stream:
    """One streamed GET of a run of missing blocks (``first..last``), fed
    into the cache by a worker thread; waiters are woken as blocks land."""

    def __init__(self, first: int, last: int, block_size: int, lead: int) -> None:
        self.first, self.last, self.block_size = first, last, block_size
        self.next = first  # every block before it has landed
        self.consumed = first * block_size  # furthest byte a reader took from this stream
        self.lead = lead  # how far it may run ahead of ``consumed``: grows while read sequentially
        self.waiters: dict[int, trio.Event] = {}
        self.error: BaseException | None = None
        self.done = False
        self.stop = False

    def event_for(self, block: int) -> trio.Event:
        event = self.waiters.get(block)
        if event is None:
            event = self.waiters[block] = trio.Event()
            if self.done or block < self.next:
                event.set()
        return event

    def landed(self, next_block: int) -> None:
        """On the trio thread: blocks before ``next_block`` are cached."""
        self.next = max(self.next, next_block)
        for block in [b for b in self.waiters if b < self.next]:
            self.waiters.pop(block).set()

    def finished(self, error: BaseException | None) -> None:
        self.done, self.error = True, error
        for event in self.waiters.values():
            event.set()
        self.waiters.clear()


class RemoteFile:
    """One remote payload file while open: its cache file, the streams and
    the ranged GETs in flight. Sequential readers are fed by streams; a
    block that no stream will bring soon is fetched on its own."""

    def __init__(self, reader: Reader, target: Payload, store: ArtifactStore, native: str,
                 cached: CachedFile | None) -> None:
        self.reader, self.target, self.store, self.native, self.cached = reader, target, store, native, cached
        self.size = target.size
        self.refs = 0
        self.inflight: dict[int, trio.Event] = {}
        self.errors: dict[int, BaseException] = {}
        self.streams: list[Stream] = []

    def close(self) -> None:
        for stream in self.streams:
            stream.stop = True
        if self.cached is not None:
            self.reader.cache.release(self.cached)

    # -- ranged GETs of a few blocks (random reads) -------------------------------------

    def schedule(self, first: int, last: int) -> None:
        """Start GETs for the missing blocks of ``first..last`` not in flight."""
        missing = [b for b in self.cached.missing(first, last) if b not in self.inflight]
        chunk = self.reader.config.chunk_blocks
        run: list[int] = []
        for block in missing:
            if run and (block != run[-1] + 1 or len(run) == chunk):
                self._start(run)
                run = []
            run.append(block)
        if run:
            self._start(run)

    def _start(self, blocks: list[int]) -> None:
        event = trio.Event()
        for block in blocks:
            self.inflight[block] = event
            self.errors.pop(block, None)
        self.reader.nursery.start_soon(self._fetch, blocks[0], blocks[-1], event)

    async def _fetch(self, first: int, last: int, event: trio.Event) -> None:
        bs = self.cached.block_size
        start, end = first * bs, min((last + 1) * bs, self.size)
        timeout = self.reader.config.timeout
        try:
            async with self.reader.limiter(self.store, "get"):
                with trio.move_on_after(timeout) as scope:
                    await trio.to_thread.run_sync(
                        self._get, start, end, abandon_on_cancel=True, limiter=self.reader.threads
                    )
            if scope.cancelled_caught:
                raise TimeoutError(f"no answer within {timeout:g} s")
        except Exception as exc:  # any store error becomes EIO for the waiting reads
            for block in range(first, last + 1):
                self.errors[block] = exc
            self.reader.report(self, start, end, exc)
        finally:
            for block in range(first, last + 1):
                if self.inflight.get(block) is event:
                    del self.inflight[block]
            event.set()

    def _get(self, start: int, end: int) -> None:
        """In a worker thread: one ranged GET, stored in the cache."""
        data = self.store.fs.cat_file(self.native, start=start, end=end)
        if len(data) != end - start:
            raise OSError(errno.EIO, f"short read: {len(data)} of {end - start} bytes at {start}")
        self.cached.write(start, data)

    # -- streams (sequential reads) -----------------------------------------------------

    def stream_for(self, block: int) -> Stream | None:
        """A live stream that will bring ``block`` soon."""
        near = self.reader.config.stream_near_blocks
        for stream in self.streams:
            if not stream.done and stream.first <= block <= stream.last and block - stream.next <= near:
                return stream
        return None

    def ensure_stream(self, block: int) -> None:
        """Stream from the first missing block at or after ``block`` to the
        next cached block (or the end), unless a stream already brings it."""
        cached = self.cached
        while block < cached.blocks and cached.has(block):
            block += 1
        if block >= cached.blocks or self.stream_for(block) is not None:
            return
        last = block
        while last + 1 < cached.blocks and not cached.has(last + 1):
            last += 1
        stream = Stream(block, last, cached.block_size, self.reader.config.initial_window)
        self.streams.append(stream)
        self.reader.nursery.start_soon(self._stream, stream)

    async def _stream(self, stream: Stream) -> None:
        bs = self.cached.block_size
        start, end = stream.first * bs, min((stream.last + 1) * bs, self.size)
        token = trio.lowlevel.current_trio_token()
        config = self.reader.config

        def landed(next_block: int) -> None:  # called on the streaming thread
            token.run_sync_soon(stream.landed, next_block)

        def state(next_block: int) -> str:  # called on the streaming thread
            if stream.stop or next_block > stream.last or self.cached.has(next_block):
                return STOP  # done, closed, or caught up with blocks cached otherwise
            if next_block * bs - stream.consumed > stream.lead:
                return PAUSE  # far enough ahead of its reader
            return GO

        sink = Sink(self.cached, start, end, landed, state, max_pause=config.timeout)
        error = None
        try:
            async with self.reader.limiter(self.store, "stream"):
                await trio.to_thread.run_sync(
                    stream_range, self.store, self.native, start, end, sink, config.timeout,
                    abandon_on_cancel=True, limiter=self.reader.threads,
                )
        except Exception as exc:
            error = exc
            self.reader.report(self, sink.offset, end, exc)
        finally:
            stream.stop = True
            stream.finished(error)
            self.streams.remove(stream)

    # -- waiting ---------------------------------------------------------------------------

    async def wait(self, first: int, last: int) -> None:
        """Until blocks ``first..last`` are cached; StoreFailure if the store failed."""
        cached = self.cached
        deadline = self.reader.config.timeout * 2 + 5  # a safety net over the per-request bounds
        with trio.move_on_after(deadline) as scope:
            for block in range(first, last + 1):
                while not cached.has(block):
                    event = self.inflight.get(block)
                    if event is not None:
                        await event.wait()
                        if not cached.has(block) and block in self.errors and block not in self.inflight:
                            raise StoreFailure(f"{self.store.name}: {self.errors[block]}")
                        continue
                    stream = self.stream_for(block)
                    if stream is not None:
                        await stream.event_for(block).wait()
                        if not cached.has(block) and stream.error is not None:
                            raise StoreFailure(f"{self.store.name}: {stream.error}")
                        continue
                    self.schedule(block, last)
        if scope.cancelled_caught:
            raise StoreFailure(f"{self.store.name}: no answer within {deadline:g} s")


@dataclass
class Handle:
    """One open of a file: the shared file plus this reader's position."""

    file: LocalFile | RemoteFile | Document
    next_offset: int = 0  # where this reader's next sequential read starts
    run: int = 1  # sequential reads in a row (a read at 0 counts as one more)


# -- the reader --------------------------------------------------------------------------------


@dataclass
class Stores:
    """The stores of one index, opened once each (thread-safe)."""

    index: Index
    stores: dict[int, ArtifactStore] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def warm_up(self) -> None:
        """In a worker thread: open every store and build its client now, so
        the first read does not pay for imports and client set-up."""
        with self.index.read() as session:
            ids = [row.id for row in list_store_rows(session)]
        for store_id in ids:
            try:
                self.get(store_id).fs
            except Exception as exc:  # a broken store fails its own reads later, loudly
                log.debug("store %d could not be prepared: %s", store_id, exc)

    def get(self, store_id: int) -> ArtifactStore:
        """In a worker thread: the store of a version (one object per store)."""
        with self.lock:
            store = self.stores.get(store_id)
        if store is not None:
            return store
        with self.index.read() as session:
            row = q.get_store_row(session, store_id)
            if row is None:
                raise StoreFailure(f"store {store_id} is not in the index any more")
            store = open_store(row)
        with self.lock:
            return self.stores.setdefault(store_id, store)


class Reader:
    """Opens, reads and closes payload files for the FUSE adapter."""

    def __init__(self, index: Index, cache: BlockCache, nursery: trio.Nursery,
                 config: ReaderConfig | None = None, stores: Stores | None = None) -> None:
        self.index, self.cache, self.nursery = index, cache, nursery
        self.config = config or ReaderConfig()
        self.threads = trio.CapacityLimiter(128)  # network threads (stores limit themselves)
        self.db_threads = trio.CapacityLimiter(4)
        self._stores = stores or Stores(index)
        self._limiters: dict[tuple[str, str], trio.CapacityLimiter] = {}
        # Open files by (inode, store, uri): after a migration re-points a
        # version, new opens read the new place while old handles finish.
        self._files: dict[tuple, LocalFile | RemoteFile] = {}
        self._opening: dict[tuple, trio.Event] = {}
        self._reported: dict[tuple[str, str], float] = {}

    def limiter(self, store: ArtifactStore, kind: str) -> trio.CapacityLimiter:
        key = (store.name, kind)
        limiter = self._limiters.get(key)
        if limiter is None:
            limiter = self._limiters[key] = trio.CapacityLimiter(self.config.connections)
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

    # -- open / read / release ------------------------------------------------------------

    async def open(self, target: Payload | Document, quiet: bool = False) -> Handle:
        """A handle on ``target``; StoreFailure (logged unless ``quiet``) if
        its store cannot give it."""
        if isinstance(target, Document):
            return Handle(target)
        key = _file_key(target)
        while True:
            file = self._files.get(key)
            if file is not None:
                file.refs += 1
                return Handle(file)
            opening = self._opening.get(key)
            if opening is None:
                break
            await opening.wait()
        self._opening[key] = event = trio.Event()
        try:
            file = await self._open_file(target, quiet)
            file.refs = 1
            self._files[key] = file
            return Handle(file)
        finally:
            del self._opening[key]
            event.set()

    async def _open_file(self, target: Payload, quiet: bool) -> LocalFile | RemoteFile:
        try:
            store = await trio.to_thread.run_sync(self._stores.get, target.store_id, limiter=self.db_threads)
        except Exception as exc:
            if not quiet:
                log.error("store %s: cannot be opened for %s: %s", target.store, target.uri, exc)
            raise StoreFailure(str(exc)) from exc
        if store.is_local:
            try:
                return await trio.to_thread.run_sync(self._open_local, store, target, limiter=self.db_threads)
            except OSError as exc:
                if not quiet:
                    log.error("store %s: cannot open %s: %s", store.name, target.uri, exc)
                raise StoreFailure(str(exc)) from exc

        def prepare() -> tuple[str, CachedFile | None]:  # resolving may import the flavor's library
            key = CacheKey(target.version_uuid, target.path)
            return store.resolve(target.uri), self.cache.open(key, target.size) if target.size > 0 else None

        try:
            native, cached = await trio.to_thread.run_sync(prepare, limiter=self.db_threads)
        except Exception as exc:
            if not quiet:
                log.error("store %s: cannot open %s: %s", store.name, store.redact(target.uri), exc)
            raise StoreFailure(str(exc)) from exc
        return RemoteFile(self, target, store, native, cached)

    def _open_local(self, store: ArtifactStore, target: Payload) -> LocalFile:
        """In a worker thread: open (and maybe map) a local payload file."""
        fd = os.open(store.resolve(target.uri), os.O_RDONLY | os.O_CLOEXEC)
        try:
            size = os.fstat(fd).st_size
            if size != target.size:
                raise OSError(errno.EIO, f"payload is {size} bytes, its manifest says {target.size}")
            mapped = None
            if self.config.local_reads == "mmap" and size and _written_by_artifactfs(target):
                mapped = mmap.mmap(fd, size, prot=mmap.PROT_READ)
                mapped.madvise(mmap.MADV_SEQUENTIAL)
        except BaseException:
            os.close(fd)
            raise
        return LocalFile(target, store, fd, mapped)

    async def read(self, handle: Handle, offset: int, size: int) -> bytes:
        file = handle.file
        if isinstance(file, Document):
            return file.data[offset : offset + size]
        if isinstance(file, LocalFile):
            return await self._read_local(file, offset, size)
        return await self._read_remote(handle, file, offset, size)

    async def _read_local(self, file: LocalFile, offset: int, size: int) -> bytes:
        if file.view is not None:
            return file.view[offset : offset + size]  # pyfuse3 copies it straight into the reply
        try:
            if self.config.local_reads != "thread":
                return os.pread(file.fd, size, offset)
            return await trio.to_thread.run_sync(os.pread, file.fd, size, offset, limiter=self.threads)
        except OSError as exc:
            self.report(file, offset, offset + size, exc)
            raise StoreFailure(str(exc)) from exc

    async def _read_remote(self, handle: Handle, file: RemoteFile, offset: int, size: int) -> bytes:
        end = min(offset + size, file.size)
        if offset >= end:
            return b""
        cached = file.cached
        if not cached.complete:
            bs = cached.block_size
            first, last = offset // bs, (end - 1) // bs
            sequential = handle.next_offset - self.config.sequential_slack <= offset <= handle.next_offset + bs
            handle.run = handle.run + 1 if sequential else 0
            handle.next_offset = max(handle.next_offset, end) if sequential else end
            for stream in file.streams:
                if stream.first * bs <= offset <= (stream.next + self.config.stream_near_blocks) * bs:
                    stream.consumed = max(stream.consumed, end)
                    if stream.next * bs - stream.consumed < stream.lead // 2:  # the reader keeps up
                        stream.lead = min(stream.lead * 2, self.config.max_window)
            if handle.run >= 2:
                file.ensure_stream(first)
            await file.wait(first, last)
        return cached.view()[offset:end]

    async def release(self, handle: Handle) -> None:
        file = handle.file
        if isinstance(file, Document):
            return
        file.refs -= 1
        if file.refs == 0:
            del self._files[_file_key(file.target)]
            await trio.to_thread.run_sync(file.close, limiter=self.db_threads)

    def statistics(self) -> dict:
        return {"open_files": len(self._files), "cache": self.cache.statistics()}


def _file_key(target: Payload) -> tuple:
    return target.inode, target.store_id, target.uri


def _written_by_artifactfs(target: Payload) -> bool:
    """Whether the payload lies in a folder named after its version's uuid:
    the write protocol's own folders, never rewritten."""
    folder = target.uri[: -len(target.path)].rstrip("/") if target.uri.endswith("/" + target.path) else ""
    return folder.rsplit("/", 1)[-1] == target.version_uuid
