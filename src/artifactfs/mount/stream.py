"""Streaming one byte range of a remote object into the block cache: a
single ranged GET consumed chunk by chunk, each whole block written to the
cache and announced as soon as it is complete.

One streamed request per sequential reader gets a store's full streaming
speed with bounded memory, where many ranged GETs each pay a request's
latency (and some servers, moto among them, answer every ranged GET in time
proportional to the whole object). S3, GCS and Azure stream through their
async clients on fsspec's IO loop; any other flavor falls back to ranged
``cat_file`` calls of ``FALLBACK_CHUNK`` bytes.

This module only moves bytes: when to stream, and who waits for what, is
``reader.py``'s business. (The per-flavor streaming belongs with the store
flavors as a primitive; it lives here until ``stores`` offers one.)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from artifactfs.mount.cache import CachedFile
from artifactfs.stores import ArtifactStore

GO, PAUSE, STOP = "go", "pause", "stop"
READ_CHUNK = 1 << 20
FALLBACK_CHUNK = 8 << 20
PAUSE_STEP = 0.02


class Sink:
    """Receives a stream's bytes in order from ``start`` (block aligned),
    writes whole blocks (and the file's last, short one) into the cache.

    ``landed(next_block)`` is called after each write (from the streaming
    thread: it must be thread-safe); ``state()`` says whether to go on,
    pause or stop; ``max_pause`` seconds of pausing end the stream."""

    def __init__(self, cached: CachedFile, start: int, end: int, landed: Callable[[int], None],
                 state: Callable[[int], str], max_pause: float = 10.0) -> None:
        self.cached, self.end = cached, end
        self.offset = start  # of the first byte in `pending`
        self.pending = bytearray()
        self.landed, self._state, self.max_pause = landed, state, max_pause
        self.block = cached.block_size

    def state(self) -> str:
        return self._state(self.offset // self.block)

    def feed(self, data: bytes) -> None:
        if not self.pending and (len(data) % self.block == 0 or self.offset + len(data) >= self.end):
            self.cached.write(self.offset, data)  # the usual case: whole blocks, no copy
            self.offset += len(data)
            self.landed(-(-self.offset // self.block))
            return
        self.pending += data
        whole = len(self.pending) // self.block * self.block
        if self.offset + len(self.pending) >= self.end:
            whole = len(self.pending)
        if whole:
            self.cached.write(self.offset, bytes(self.pending[:whole]))
            del self.pending[:whole]
            self.offset += whole
            self.landed(-(-self.offset // self.block))

    async def wait_to_go(self) -> bool:
        """Until told to go (True) or to stop (False); on the IO loop."""
        paused = None
        while True:
            state = self.state()
            if state == GO:
                return True
            if state == STOP:
                return False
            paused = paused or time.monotonic()
            if time.monotonic() - paused > self.max_pause:
                return False
            await asyncio.sleep(PAUSE_STEP)

    def wait_to_go_sync(self) -> bool:
        paused = None
        while True:
            state = self.state()
            if state != PAUSE:
                return state == GO
            paused = paused or time.monotonic()
            if time.monotonic() - paused > self.max_pause:
                return False
            time.sleep(PAUSE_STEP)


async def _pump(read: Callable, sink: Sink, timeout: float) -> None:
    while sink.offset < sink.end:
        if not await sink.wait_to_go():
            return
        data = await asyncio.wait_for(read(), timeout)
        if not data:
            raise OSError(f"the stream ended at byte {sink.offset + len(sink.pending)} of {sink.end}")
        sink.feed(data)


async def _s3(fs, native: str, start: int, end: int, sink: Sink, timeout: float) -> None:
    bucket, key, version = fs.split_path(native)
    extra = {"VersionId": version} if version else {}
    response = await asyncio.wait_for(
        fs._call_s3("get_object", Bucket=bucket, Key=key, Range=f"bytes={start}-{end - 1}", **extra), timeout)
    body = response["Body"]
    try:
        await _pump(lambda: body.read(READ_CHUNK), sink, timeout)
    finally:
        body.close()


async def _gcs(fs, native: str, start: int, end: int, sink: Sink, timeout: float) -> None:
    await fs._set_session()
    request = fs.session.get(
        url=fs.url(native), params=fs._get_params({}),
        headers=fs._get_headers({"Range": f"bytes={start}-{end - 1}"}), timeout=fs.requests_timeout,
    )
    async with request as response:
        if response.status >= 400:
            raise OSError(f"HTTP {response.status} from {fs.url(native)}")
        await _pump(lambda: response.content.read(READ_CHUNK), sink, timeout)


async def _azure(fs, native: str, start: int, end: int, sink: Sink, timeout: float) -> None:
    container, blob, version_id = fs.split_path(native)
    async with fs.service_client.get_blob_client(container=container, blob=blob) as client:
        download = await asyncio.wait_for(
            client.download_blob(offset=start, length=end - start, version_id=version_id, max_concurrency=1),
            timeout)
        chunks = download.chunks()

        async def read() -> bytes:
            try:
                return await chunks.__anext__()
            except StopAsyncIteration:
                return b""

        await _pump(read, sink, timeout)


_STREAMERS = {"s3": _s3, "gs": _gcs, "az": _azure}


def stream_range(store: ArtifactStore, native: str, start: int, end: int, sink: Sink, timeout: float) -> None:
    """In a worker thread: stream ``[start, end)`` of ``native`` into ``sink``.
    Raises on any store error, or when no byte arrives for ``timeout`` s."""
    fs = store.fs
    streamer = _STREAMERS.get(store.flavor.protocol) if getattr(fs, "async_impl", False) else None
    if streamer is not None:
        from fsspec.asyn import sync

        sync(fs.loop, streamer, fs, native, start, end, sink, timeout)
        return
    offset = start
    while offset < end and sink.wait_to_go_sync():
        upto = min(offset + FALLBACK_CHUNK, end)
        data = fs.cat_file(native, start=offset, end=upto)
        if len(data) != upto - offset:
            raise OSError(f"short read: {len(data)} of {upto - offset} bytes at {offset}")
        sink.feed(data)
        offset = upto
