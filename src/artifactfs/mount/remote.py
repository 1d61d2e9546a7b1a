"""Remote payload files while open: their cache file, the ranged GETs in
flight for them, and waiting until the blocks a read needs are cached.

Each GET is one call of the store's public ranged read
(``ArtifactStore.read_range``) in a worker thread; several run at once (per
store: ``connections`` for blocks a reader waits for, as many again for
read-ahead, whose bytes in memory are bounded by a budget). A store that
streams (``streams_ranges``) hands a GET's bytes over as they arrive: each
piece of ``STREAM_PIECE`` blocks is written to the cache and the readers
waiting for it are woken at once, so one GET can be large without a reader
waiting for all of it. Any other store's GET (fsspec's ``cat_file``) lands
whole. Either way a block is written once, read from there by every
handle. Which blocks to ask for is ``readahead.py``'s decision; a failed
GET is reported to ``outages.py``.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import trio

from artifactfs.mount.cache import CachedFile
from artifactfs.mount.nodes import FsError, Payload
from artifactfs.mount.readahead import RequestCost
from artifactfs.stores import ArtifactStore

if TYPE_CHECKING:
    from artifactfs.mount.reader import Reader

log = logging.getLogger(__name__)


# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8
_PIECE_BUFFERS = 256 << 20  # buffers up to this size come from the heap and are reused
STREAM_PIECE = 1  # blocks per piece of a streamed GET: written to the cache and announced together


def keep_piece_buffers() -> bool:
    """Let the process reuse the memory of GET buffers instead of mapping
    fresh pages for each. Call once, before any thread starts.

    Every ranged GET returns its piece in new buffers (the HTTP client joins
    the chunks it received, up to twice). glibc maps each buffer of 32 MiB or
    more afresh and unmaps it when freed, so every byte of a large piece
    costs a page fault and the kernel's zeroing: measured with s3fs, joins
    took 0.33 s per 128 MiB in 32 MiB pieces, 0.04 s once their memory was
    reused (and first reads through the mount on moto, 98 MiB pieces, were
    faster in 5 of 5 interleaved rounds, median 119 against 104 MiB/s). One
    heap for every thread (a thread's own heap holds at most 64 MiB) with
    a mapping threshold above the largest piece keeps the freed buffers for
    the next GET; the heap is trimmed back once more than twice that is free.
    Whether glibc took the settings (other C libraries have no ``mallopt``)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError):
        return False
    return all(mallopt(ctypes.c_int(param), ctypes.c_int(value)) == 1
               for param, value in ((_M_ARENA_MAX, 1), (_M_MMAP_THRESHOLD, _PIECE_BUFFERS),
                                    (_M_TRIM_THRESHOLD, 2 * _PIECE_BUFFERS)))


class StoreFailure(FsError):
    """A store failed or did not answer in time: EIO."""

    errno = errno.EIO


class ByteBudget:
    """At most ``limit`` bytes of read-ahead held in memory at once, per
    store (a GET holds its whole range until it is written to the cache);
    a request larger than the budget runs alone."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._changed = trio.Condition()

    async def take(self, nbytes: int) -> int:
        """Wait until ``nbytes`` fit the budget (at most the whole budget) and hold them; how many were taken."""
        nbytes = min(nbytes, self.limit)
        async with self._changed:
            while self.used and self.used + nbytes > self.limit:
                await self._changed.wait()
            self.used += nbytes
        return nbytes

    async def give(self, nbytes: int) -> None:
        """Hand back ``nbytes`` taken before, waking the readers waiting for room."""
        async with self._changed:
            self.used -= nbytes
            self._changed.notify_all()


class StoreLanes:
    """One store's limits on GETs in flight."""

    def __init__(self, connections: int, budget: int) -> None:
        self.demand = trio.CapacityLimiter(connections)  # blocks a reader waits for now
        self.ahead = trio.CapacityLimiter(connections)  # read-ahead, which must not queue before them
        self.budget = ByteBudget(budget)


class Fetch:
    """One GET in flight, which readers of its blocks wait on: woken at
    every piece that lands (a streamed GET) and when it ends. Its timeout
    counts from the last piece: a GET fails when no bytes came for that long."""

    def __init__(self, timeout: float, answered: Callable[[], None]) -> None:
        self.done = trio.Event()
        self._answered: Callable[[], None] | None = answered  # called (on the trio thread) when the first piece lands
        self.timeout = timeout
        self.scope = trio.CancelScope(deadline=trio.current_time() + timeout)
        self.stopped = False  # nobody needs its bytes any more (timed out, a seek): the worker stops
        self._landed = trio.Event()
        self._token = trio.lowlevel.current_trio_token()

    def stop(self) -> None:
        """Nobody needs the rest of its bytes: a streamed GET ends after the
        piece it is receiving (the blocks it did not get are asked for again
        if someone reads them)."""
        self.stopped = True

    async def wait_progress(self) -> None:
        """Until the next piece lands or the GET ends."""
        await self._landed.wait()

    def landed_from_thread(self) -> None:
        """From the worker thread: a piece is in the cache (wakes its readers without waiting for them)."""
        self._token.run_sync_soon(self._wake)

    def _wake(self) -> None:
        if self._answered is not None:  # the store answers: before any reader of this piece is replied to
            self._answered()
            self._answered = None
        self._landed.set()
        self._landed = trio.Event()
        self.scope.deadline = trio.current_time() + self.timeout

    def end(self) -> None:
        """The GET is over (done or failed): wake everyone for good."""
        self.done.set()
        self._landed.set()


class RemoteFile:
    """One remote payload file while open, shared by its handles: its cache
    file, the GETs in flight (block -> its :class:`Fetch`) and the blocks
    whose GET failed lately."""

    def __init__(self, reader: Reader, target: Payload, store: ArtifactStore, cached: CachedFile | None) -> None:
        self.reader, self.target, self.store, self.cached = reader, target, store, cached
        self.size = target.size
        self.refs = 0
        self.closed = False
        self.cost = RequestCost()
        self.inflight: dict[int, Fetch] = {}
        self.errors: dict[int, tuple[BaseException, float]] = {}  # block -> why and when (time.monotonic())

    @property
    def blocks(self) -> CachedFile:
        """The cache file (a file of 0 bytes has none: nothing is fetched for it)."""
        if self.cached is None:
            raise ValueError(f"{self.target.path} has no bytes to fetch")
        return self.cached

    def close(self) -> None:
        """Mark the file closed (read-ahead stops) and let the cache know this open ended."""
        self.closed = True
        if self.cached is not None:
            self.reader.cache.release(self.cached)

    def schedule(self, first: int, last: int, piece: int, ahead: bool = False) -> list[Fetch]:
        """Start GETs for the blocks ``first..last`` that are neither cached
        nor in flight, ``piece`` blocks at most per GET; ``ahead``: read-ahead
        (no reader waits for it yet). Returns the GETs started."""
        started: list[Fetch] = []
        run: list[int] = []
        for block in self.blocks.missing(first, last):
            if block in self.inflight or self._failed(block) is not None:
                continue
            if run and (block != run[-1] + 1 or len(run) == piece):
                started.append(self._start(run[0], run[-1], ahead))
                run = []
            run.append(block)
        if run:
            started.append(self._start(run[0], run[-1], ahead))
        return started

    def _failed(self, block: int) -> BaseException | None:
        """Why the block's GET failed, while that still answers a read (see ``outages``)."""
        failure = self.errors.get(block)
        if failure is None:
            return None
        if self.reader.outages.still_down(self.store, failure[1]):
            return failure[0]
        del self.errors[block]
        return None

    def _start(self, first: int, last: int, ahead: bool) -> Fetch:
        fetch = Fetch(self.reader.config.timeout, lambda: self.reader.outages.succeeded(self.store))
        for block in range(first, last + 1):
            self.inflight[block] = fetch
            self.errors.pop(block, None)
        self.reader.nursery.start_soon(self._fetch, first, last, fetch, ahead)
        return fetch

    async def _fetch(self, first: int, last: int, fetch: Fetch, ahead: bool) -> None:
        bs = self.blocks.block_size
        start, end = first * bs, min((last + 1) * bs, self.size)
        reader = self.reader
        lanes = reader.lanes(self.store)
        held = 0
        try:
            if ahead:  # a streamed GET holds a piece or two in memory, not its whole range
                held = await lanes.budget.take(min(end - start, 2 * STREAM_PIECE * bs) if self.store.streams_ranges
                                               else end - start)
            async with lanes.ahead if ahead else lanes.demand:
                if self.closed:
                    return
                began = time.monotonic()
                fetch.scope.deadline = trio.current_time() + fetch.timeout  # counts from the request, not the queue
                with fetch.scope:
                    whole = await trio.to_thread.run_sync(self._get, start, end, fetch, abandon_on_cancel=True,
                                                          limiter=reader.threads)
                if fetch.scope.cancelled_caught:
                    fetch.stop()  # the abandoned worker ends after the piece it is receiving
                    raise TimeoutError(f"no bytes within {fetch.timeout:g} s")
            took = time.monotonic() - began
            if whole:  # a GET stopped early says nothing of what a whole one costs
                self.cost.record(end - start, took, reader.config.readahead)
            log.debug("store %s: GET %s bytes %d-%d (%s) in %.3f s", self.store.name, self.target.path, start, end,
                      "ahead" if ahead else "demand", took)
            reader.outages.succeeded(self.store)
        except Exception as exc:  # any store error becomes EIO for the reads waiting on these blocks
            failed_at = reader.outages.failed(self.store, self.target.uri, start, end, exc)
            for block in range(first, last + 1):
                self.errors[block] = (exc, failed_at)
        finally:
            if held:
                with trio.CancelScope(shield=True):
                    await lanes.budget.give(held)
            for block in range(first, last + 1):
                if self.inflight.get(block) is fetch:
                    del self.inflight[block]
            fetch.end()

    def _get(self, start: int, end: int, fetch: Fetch) -> bool:
        """In a worker thread: one ranged GET, written to the cache (a
        streamed one piece by piece, each announced as it lands); whether
        it got the whole range (not stopped early)."""
        streamed = self.store.streams_ranges
        chunk = STREAM_PIECE * self.blocks.block_size if streamed else end - start
        pieces = self.store.read_range(self.target.uri, start, end, chunk=chunk)
        try:
            offset = start
            for piece in pieces:
                self.blocks.write(offset, piece)
                offset += len(piece)
                if fetch.stopped or self.closed:  # timed out, a seek, or nobody reads the file any more
                    return offset == end
                if streamed:
                    fetch.landed_from_thread()
        finally:
            pieces.close()
        return True

    async def wait(self, first: int, last: int) -> None:
        """Until blocks ``first..last`` are cached; StoreFailure if the GET
        it waited for failed. A block whose GET failed before this read is
        asked for again, unless its store is still down (see ``outages``)."""
        for block in range(first, last + 1):
            while not self.blocks.has(block):
                fetch = self.inflight.get(block)
                if fetch is None:
                    error = self._failed(block)
                    if error is not None:
                        raise StoreFailure(f"{self.store.name}: {error}")
                    self.schedule(block, last, self.reader.config.chunk_blocks)
                    continue
                await fetch.wait_progress()
                failure = self.errors.get(block)
                if failure is not None and block not in self.inflight:  # the GET this read waited for failed
                    raise StoreFailure(f"{self.store.name}: {failure[0]}")
