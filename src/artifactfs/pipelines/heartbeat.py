"""A running run's heartbeat: while the runner runs a pipeline, a thread
writes the run's ``heartbeat_at`` every ``liveness.HEARTBEAT_EVERY`` on the
index's clock, so that a reader on another machine can tell the run from
one whose process died (``index.liveness``; on this machine the process
itself is checked)."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator

from artifactfs.index import get_index
from artifactfs.index import liveness

log = logging.getLogger(__name__)


@contextlib.contextmanager
def keep_alive(run_id: int, every: float | None = None) -> Iterator[None]:
    """Beat for run ``run_id`` until the block ends."""
    period = liveness.HEARTBEAT_EVERY.total_seconds() if every is None else every
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(period):
            try:
                get_index().run_write(liveness.beat, run_id)
            except Exception as exc:  # a missed beat is harmless: ten in a row are needed to look crashed
                log.warning("artifactfs: could not record that run %s still runs: %s", run_id, exc)

    thread = threading.Thread(target=beat, name=f"artifactfs-heartbeat-{run_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
