"""A step's logs, as ZenML keeps them: what the step function writes to
``sys.stdout`` and ``sys.stderr`` and the ``logging`` records that reach
the root logger while it runs (at the levels the program's logging
configuration lets through; Python's default is WARNING and above) are
captured, still shown where they went before, and stored with the step run
(``index.steplogs``, which owns the bound): soon after the step first
writes, then at most every :data:`FLUSH_EVERY` seconds while it writes
more (so a step whose process is killed keeps what it wrote until shortly
before), and once more when it ends, failed or not.

Bounded: a step keeps at most ``STEP_LOG_LIMIT`` characters (1 MiB of
ASCII), the first quarter and the last three quarters, with a line between
them saying how many were cut; the stored row counts what was written and
what was cut. Output written by child processes or C code straight to the
file descriptors is not captured (ZenML does not either).
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator

from artifactfs.index import get_index
from artifactfs.index import steplogs
from artifactfs.index.steplogs import STEP_LOG_HEAD, STEP_LOG_LIMIT

log = logging.getLogger(__name__)

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: Seconds between two stores of a running step's log (the first comes at once).
FLUSH_EVERY = 5.0
#: Seconds a store waits after a write for the rest of it (a print writes its
#: text and its newline in two calls; a step killed after the first store
#: must not lose the line's end).
GATHER = 0.1


class StepLogBuffer:
    """The first ``head`` characters and the last ``limit - head``, and
    counts of what was written and cut (thread safe: a step's threads write too)."""

    def __init__(self, limit: int = STEP_LOG_LIMIT, head: int = STEP_LOG_HEAD) -> None:
        self._head_room, self._tail_room = head, limit - head
        self._head: list[str] = []
        self._head_size = 0
        self._tail: deque[str] = deque()
        self._tail_size = 0
        self.total = 0
        self.cut = 0
        self._lock = threading.Lock()
        self.written = threading.Event()  # set by every write: the flusher stores the log
        #: Called once, at the first write: a step that writes nothing starts no flusher thread.
        self.on_first_write: Callable[[], None] | None = None

    def write(self, text: str) -> None:
        """Keep ``text`` (in the head while it has room, else in the tail,
        cutting the oldest) and wake the flusher."""
        if not text:
            return
        with self._lock:
            first, self.on_first_write = self.on_first_write, None
            self._keep(text)
        if first is not None:
            first()
        self.written.set()

    def _keep(self, text: str) -> None:
        """Add ``text`` to the head or the tail (the lock held)."""
        self.total += len(text)
        if self._head_size < self._head_room:
            taken = text[: self._head_room - self._head_size]
            self._head.append(taken)
            self._head_size += len(taken)
            text = text[len(taken):]
        if not text:
            return
        if len(text) > self._tail_room:  # one write larger than the tail: keep its end
            self.cut += len(text) - self._tail_room
            text = text[-self._tail_room:] if self._tail_room else ""
        self._tail.append(text)
        self._tail_size += len(text)
        while self._tail_size > self._tail_room:
            over = self._tail_size - self._tail_room
            oldest = self._tail[0]
            if len(oldest) <= over:
                self._tail.popleft()
                self._tail_size -= len(oldest)
                self.cut += len(oldest)
            else:
                self._tail[0] = oldest[over:]
                self._tail_size -= over
                self.cut += over

    def text(self) -> str:
        """What is kept, with a line where characters were cut."""
        with self._lock:
            middle = ""
            if self.cut:
                middle = (f"\n[artifactfs: {self.cut:,} characters cut here; a step log keeps its first "
                          f"{self._head_room:,} and last {self._tail_room:,} characters]\n")
            return "".join(self._head) + middle + "".join(self._tail)


class _Tee(io.TextIOBase):
    """A text stream that writes through to ``stream`` and into the buffer."""

    def __init__(self, stream, buffer: StepLogBuffer) -> None:
        self._stream = stream
        self._buffer = buffer

    def write(self, text: str) -> int:
        if self._stream is not None:
            self._stream.write(text)
        self._buffer.write(text)
        return len(text)

    def flush(self) -> None:
        if self._stream is not None:
            self._stream.flush()

    def __getattr__(self, name: str):  # encoding, fileno, isatty ...: the stream's own
        return getattr(self._stream, name)


class _Records(logging.Handler):
    """Copies the records reaching the root logger into the buffer. A
    record that no other handler takes would have been printed by Python's
    last-resort handler, which our presence silences: it is printed as that
    one would (to the real stderr, so it is not captured twice)."""

    def __init__(self, buffer: StepLogBuffer, stderr) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter(FORMAT))
        self._buffer = buffer
        self._stderr = stderr

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._buffer.write(self.format(record) + "\n")
            last = logging.lastResort
            if last is not None and record.levelno >= last.level and not self._others(record.name) \
                    and self._stderr is not None:
                self._stderr.write(record.getMessage() + "\n")
        except Exception:  # as logging's own handlers do: a broken record never breaks the step
            self.handleError(record)

    def _others(self, name: str) -> bool:
        logger: logging.Logger | None = logging.getLogger(name)
        while logger is not None:
            if any(h is not self for h in logger.handlers):
                return True
            logger = logger.parent if logger.propagate else None
        return False


@contextlib.contextmanager
def captured(step_run_id: int) -> Iterator[StepLogBuffer]:
    """Capture the step's stdout, stderr and logging records for the block,
    then store them with step run ``step_run_id`` (when anything was written)."""
    buffer = StepLogBuffer()
    out, err = sys.stdout, sys.stderr
    handler = _Records(buffer, err)
    root = logging.getLogger()
    done = threading.Event()

    def flush() -> None:
        while True:
            buffer.written.wait()
            if done.wait(GATHER):  # a print's parts (its text, then its newline) and a burst land together
                return
            buffer.written.clear()
            _store(step_run_id, buffer)
            if done.wait(FLUSH_EVERY):
                return

    flusher = threading.Thread(target=flush, name=f"artifactfs-step-log-{step_run_id}", daemon=True)
    buffer.on_first_write = flusher.start  # a step that writes nothing costs no thread
    sys.stdout, sys.stderr = _Tee(out, buffer), _Tee(err, buffer)
    root.addHandler(handler)
    try:
        yield buffer
    finally:
        root.removeHandler(handler)
        sys.stdout, sys.stderr = out, err
        done.set()
        buffer.written.set()
        if flusher.ident is not None:  # started: the step wrote
            flusher.join()  # before the last store: an older one never lands after it
        if buffer.total:
            _store(step_run_id, buffer)


def _store(step_run_id: int, buffer: StepLogBuffer) -> None:
    try:
        get_index().run_write(steplogs.save, step_run_id, buffer.text(), buffer.total, buffer.cut)
    except Exception as exc:  # the step's own outcome (or error) matters more than its log
        log.warning("artifactfs: could not store the log of step run %s: %s", step_run_id, exc)


__all__ = ["StepLogBuffer", "captured"]
