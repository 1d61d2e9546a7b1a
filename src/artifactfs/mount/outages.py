"""Which stores are failing the mount's reads right now, and what the log
says about it: one line per object per outage (however often it is read),
and one line when the store answers again.

An outage of a store begins with a failed read and ends with the next read
that succeeds (from any object of it). A read that failed is not remembered
beyond that: while the store is still down, a block whose fetch failed less
than ``retry_after`` seconds ago fails again at once (the kernel asks for a
page again right after its read-ahead failed, and that ask must not wait out
the timeout a second time); any later read asks the store again, so the
first read after the store is back succeeds.

Deciding what to fetch is ``reader.py``'s and ``remote.py``'s job; this
module only keeps the state and writes the lines. Called on the trio thread.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from artifactfs.stores import ArtifactStore

log = logging.getLogger(__name__)


@dataclass
class Outage:
    """One store's current outage."""

    began: float  # time.monotonic()
    last_failure: float
    objects: set[str] = field(default_factory=set)  # objects logged in this outage
    failures: int = 0


class Outages:
    """The stores whose reads fail now, by store name."""

    def __init__(self, retry_after: float = 0.5) -> None:
        self.retry_after = retry_after
        self.down: dict[str, Outage] = {}  # empty while every store answers: one check on the hot path

    def failed(self, store: ArtifactStore, uri: str, start: int, end: int, exc: BaseException) -> float:
        """A read of ``uri`` (bytes ``start``-``end``) failed: its store is
        down. Logged once per object per outage, secrets masked. Returns the
        time of the failure (for :meth:`still_down`)."""
        now = time.monotonic()
        outage = self.down.get(store.name)
        if outage is None:
            outage = self.down[store.name] = Outage(began=now, last_failure=now)
        outage.last_failure = now
        outage.failures += 1
        if uri not in outage.objects:
            outage.objects.add(uri)
            detail = store.redact(f"{type(exc).__name__}: {exc}")[:300]
            log.error("store %s: reading %s (bytes %d-%d) failed: %s", store.name, store.redact(uri), start, end,
                      detail)
        return now

    def succeeded(self, store: ArtifactStore) -> None:
        """A read from ``store`` worked: its outage, if any, is over."""
        outage = self.down.pop(store.name, None)
        if outage is not None:
            log.warning("store %s is back: reads work again after %.1f s (%d failed reads of %d objects)",
                        store.name, time.monotonic() - outage.began, outage.failures, len(outage.objects))

    def still_down(self, store: ArtifactStore, failed_at: float) -> bool:
        """Whether a fetch that failed at ``failed_at`` (time.monotonic())
        should answer EIO at once rather than ask the store again: its store
        has not answered since, and the failure is younger than ``retry_after``."""
        outage = self.down.get(store.name)
        return (outage is not None and failed_at >= outage.began
                and time.monotonic() - failed_at < self.retry_after)
