"""The mount's disk reader threads: short blocking calls on local payload
files (``pread`` that may wait on the disk) run here, off the trio loop.

``trio.to_thread.run_sync`` costs about three times as much CPU per call as
a queue read by threads that stay (measured with four readers at once on
this project's machine: 97 against 31 microseconds, ``bench/mount_fio.py``
shows what it does to random reads), and a random 4 KiB read is
nothing but such calls. Every call here is short and bounded (a ``pread``
of a local file), so a waiting task is not cancellable: it gets its answer.
Nothing else may use this pool: network, database and hashing calls go
through ``trio.to_thread.run_sync`` under their limiters.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

import outcome
import trio

_STOP = None


class DiskPool:
    """``threads`` worker threads serving :meth:`run`, started on first use."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._started: list[threading.Thread] = []
        self.waiting = 0  # calls queued or running

    async def run(self, fn: Callable, *args):
        """``fn(*args)`` in a pool thread; its result, or its exception raised here."""
        if not self._started:
            self._start()
        task = trio.lowlevel.current_task()
        self.waiting += 1
        try:
            self._queue.put((fn, args, task, trio.lowlevel.current_trio_token()))
            return (await trio.lowlevel.wait_task_rescheduled(_not_abortable))
        finally:
            self.waiting -= 1

    def _start(self) -> None:
        for number in range(self.threads):
            thread = threading.Thread(target=self._work, name=f"disk reader {number}", daemon=True)
            thread.start()
            self._started.append(thread)

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is _STOP:
                return
            fn, args, task, token = job
            result = outcome.capture(fn, *args)
            try:
                token.run_sync_soon(trio.lowlevel.reschedule, task, result)
            except trio.RunFinishedError:  # the loop is gone: nobody waits for it any more
                return

    def close(self) -> None:
        """Stop the threads (each finishes the call it is in)."""
        for _ in self._started:
            self._queue.put(_STOP)
        self._started.clear()


def _not_abortable(_raise_cancel) -> trio.lowlevel.Abort:
    return trio.lowlevel.Abort.FAILED  # a pread is short: the task waits for it, then sees the cancel
