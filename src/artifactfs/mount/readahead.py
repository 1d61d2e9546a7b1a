"""Read-ahead of remote payload files: which blocks a read of one handle
should fetch, and in pieces of what size. Pure decisions, no IO: fetching is
``remote.py``'s job, the cache's bookkeeping ``cache.py``'s.

Two things decide, as in mountpoint-s3's prefetcher (its design, our code):

* The reader's pattern, one :class:`Pattern` per open handle. A read that
  starts where the previous one ended continues a sequential run; any other
  read is a seek, which ends the run and its read-ahead. A run (a first read
  at offset 0, or the second read in a row) fetches ``initial`` bytes ahead
  of the reader in one request. Once the reader has consumed that much
  without a seek, the window doubles at every top-up, up to ``max_window``.
  A random reader never consumes a first window, so it fetches the blocks
  it reads and at most ``initial`` bytes more.
* The cost of a request to the object, one :class:`RequestCost` per open
  file. A ranged GET costs a fixed latency plus its bytes; the first request
  of a file is small (its latency shows), so its time gives the latency.
  Read-ahead pieces are made large enough that the latency is at most a
  fifth of a piece's time (``piece = 4 x latency x rate``), between
  ``min_piece`` and ``max_piece``: a store that answers quickly gets many
  small pieces at once, one that pays much for every request (moto reads
  the whole object for each ranged GET) gets few large ones.
* Whether the store streams (``ArtifactStore.streams_ranges``): a reader
  then waits for the first bytes of a GET, never for all of it, so once
  the first window has shown a sequential reader one GET reaches the whole
  window ahead, and every later GET is half a window (a GET's latency, and
  moto's copy of the object, paid once per half window).
"""

from __future__ import annotations

from dataclasses import dataclass

MiB = 1 << 20


@dataclass(frozen=True)
class ReadAhead:
    """The read-ahead's bounds (bytes, bytes per second)."""

    initial: int = 4 * MiB  # the first window of a sequential run: one request
    max_window: int = 256 * MiB  # how far ahead of a sequential reader GETs may run
    min_piece: int = 8 * MiB  # bytes per read-ahead GET, at least...
    max_piece: int = 128 * MiB  # ...and at most (each piece is held in memory until written)
    assumed_rate: float = 64 * MiB  # a GET's transfer rate until a faster one is seen
    slack: int = 8 * MiB  # a read this far behind the run's end still continues it (kernel reads overlap)


class RequestCost:
    """What a ranged GET of one object costs: a fixed latency, estimated
    from its small requests, and the fastest rate any request reached."""

    def __init__(self) -> None:
        self.latency: float | None = None
        self.rate = 0.0
        self.piece = 0  # the read-ahead piece chosen so far: it only grows

    def record(self, nbytes: int, seconds: float, config: ReadAhead) -> None:
        """Learn from one request of ``nbytes`` that took ``seconds``."""
        if seconds <= 0:
            return
        self.rate = max(self.rate, nbytes / seconds)
        if nbytes <= config.initial * 2:  # small: its time is mostly latency
            latency = max(0.0, seconds - nbytes / config.assumed_rate)
            self.latency = latency if self.latency is None else min(self.latency, latency)
        if self.latency is not None:
            wanted = 4 * self.latency * max(self.rate, config.assumed_rate)
            self.piece = max(self.piece, int(min(max(wanted, config.min_piece), config.max_piece)))

    def piece_size(self, config: ReadAhead) -> int:
        """Bytes per read-ahead GET (``min_piece`` until a request finished)."""
        return self.piece or config.min_piece


@dataclass
class Pattern:
    """One handle's reading pattern: its sequential run and its window."""

    next_offset: int = 0  # where the next read of the run starts
    run: int = 1  # reads in the run so far (so a first read at offset 0 starts one)
    run_start: int = 0  # where the run began
    window: int = 0  # bytes fetched ahead of the reader (0: no read-ahead yet)
    ahead: int = 0  # where this run's read-ahead has asked up to

    def observe(self, offset: int, end: int, block: int, config: ReadAhead) -> bool:
        """Record a read of ``[offset, end)``; whether it continues a sequential run."""
        sequential = self.next_offset - config.slack <= offset <= self.next_offset + block
        if sequential:
            self.run += 1
            self.next_offset = max(self.next_offset, end)
        else:  # a seek: start over
            self.run, self.run_start, self.next_offset = 0, offset, end
            self.window = self.ahead = 0
        return sequential

    def plan(self, offset: int, end: int, size: int, block: int, cost: RequestCost,
             config: ReadAhead, streamed: bool = False) -> tuple[int, int]:
        """``(upto, piece)``: fetch from ``offset`` up to byte ``upto`` in GETs
        of ``piece`` bytes (0: only what was asked, in small GETs). Call after
        :meth:`observe`. ``streamed``: the store hands a GET's bytes over as
        they arrive, so a reader never waits for a whole piece and GETs can
        be large: once half the first window is read, one GET reaches
        ``max_window`` ahead, then every later one half of it."""
        if self.run < 2:  # not (yet) sequential
            return end, 0
        base = offset // block * block
        if not self.window:  # the run's first window: one request
            self.window = config.initial
            self.ahead = min(max(end, base + config.initial), size)
            return self.ahead, self.ahead - base
        if self.next_offset - self.run_start < config.initial // 2 or (cost.latency is None and not streamed):
            return end, 0  # grow once half the first window is read and its request told what a GET costs
        start = max(self.ahead, end // block * block)
        if streamed:  # the whole window in one GET, then a GET per half window
            self.window = config.max_window
            upto = min(end + self.window, size)
            if upto <= start or upto - start < min(self.window // 2, size - start):
                return end, 0
            self.ahead = upto
            return upto, upto - start
        piece = max(block, cost.piece_size(config) // block * block)
        self.window = min(max(self.window, 2 * piece), config.max_window)
        upto = min(end + self.window, size)
        if upto < size:
            upto = start + (upto - start) // piece * piece  # whole pieces: a GET's latency is paid per piece
        if upto <= start:
            return end, 0
        self.ahead = upto
        self.window = min(self.window * 2, config.max_window)
        return upto, piece
