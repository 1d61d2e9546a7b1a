"""The pruner's lease: one pruner works on an index at a time.

A row in ``gc_lease`` names its holder (``index.holders``: this machine's
stable id plus a random per-process token; pid and hostname for humans) and
an expiry. Expiry and heartbeats use the database's clock, the one clock
every host shares. The holder renews it from a heartbeat thread and again,
if due, before each destructive step (:meth:`Lease.check`); a pruner whose
lease was taken over or cannot be renewed raises :class:`LeaseLostError`
there and stops.

The lease is never taken from a holder that is alive: on this machine, a
holder whose process still runs (same pid and start time) keeps it
whatever the clocks say, and one whose process is gone is replaced at once;
a holder on another machine is presumed alive until its lease expires by
the index's clock. A process recognises its own lease: one it took and no
longer holds (a pass stopped by a database outage could not release it) is
taken back at once, not after its expiry.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time

from artifactfs.errors import ArtifactfsError
from artifactfs.index.db import Index, describe_index_error
from artifactfs.index.gc import PRUNER_LEASE, LeaseState, lease_state, release_lease, renew_lease, take_lease
from artifactfs.index.holders import alive_here, known_dead, new_holder, parse_holder, this_process

DEFAULT_TTL = dt.timedelta(minutes=2)
log = logging.getLogger("artifactfs.gc")
# The holders of the Lease objects of this process that hold their lease now.
_HELD: set[str] = set()


def may_take(state: LeaseState, expired: bool) -> bool:
    """Whether a lease another holder has may be taken. A holder of this
    machine is checked, whatever the clocks say: never while its process
    runs, at once when it is gone; this process's own lease, when no Lease
    of it holds it any more. A holder on another machine: once the lease
    expired by the index's clock."""
    holder = parse_holder(state.holder)
    if holder is None or not holder.here:
        return expired
    if holder.same_process(this_process()):
        return state.holder not in _HELD
    return known_dead(state.holder)


class LeaseHeldError(ArtifactfsError):
    """Another pruner holds the lease."""

    def __init__(self, state: LeaseState, running_here: bool = False) -> None:
        self.state = state
        if running_here:  # whatever the clocks say about its expiry
            super().__init__(f"another pruner is working on this index ({state.holder}, a process that still "
                             "runs on this machine)", "wait for it to finish, or stop that process")
            return
        until = state.expires_at.strftime("%Y-%m-%d %H:%M:%S UTC") if state.expires_at else "?"
        super().__init__(
            f"another pruner is working on this index ({state.holder}, lease valid until {until})",
            "wait for it to finish, or run again after the lease expires",
        )


class LeaseLostError(ArtifactfsError):
    """The lease expired and was taken, or could not be renewed: stop now."""


class Lease:
    """Hold the pruner lease of ``index``: ``with Lease(index) as lease: ... lease.check()``."""

    def __init__(self, index: Index, ttl: dt.timedelta = DEFAULT_TTL, name: str = PRUNER_LEASE,
                 heartbeat: bool = True) -> None:
        self.index = index
        self.ttl = ttl
        self.name = name
        self.holder = str(new_holder())
        self._heartbeat = heartbeat
        self._lock = threading.Lock()
        self._renewed = 0.0  # monotonic time of the last successful renewal
        self._held = False
        self._lost: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"Lease({self.holder!r}, held={self._held})"

    @property
    def held(self) -> bool:
        return self._held and self._lost is None

    def acquire(self) -> Lease:
        with self.index.write() as session:
            taken, found, now = take_lease(session, self.holder, self.ttl, may_take, self.name)
        if not taken:
            raise LeaseHeldError(found, running_here=alive_here(found.holder))
        if found.holder and found.holder != self.holder and found.expires_at and found.expires_at > now:
            whose = parse_holder(found.holder)
            mine = whose is not None and whose.same_process(this_process())
            log.info("took back this process's own lease (a pass that could not release it)" if mine
                     else "took over the lease of %s, whose process is gone", found.holder)
        self._held, self._lost, self._renewed = True, None, time.monotonic()
        _HELD.add(self.holder)
        if self._heartbeat:
            self._stop.clear()
            self._thread = threading.Thread(target=self._beat, name="artifactfs-gc-lease", daemon=True)
            self._thread.start()
        return self

    def renew(self) -> None:
        """Extend the lease now; :class:`LeaseLostError` if it is no longer ours."""
        with self._lock:
            if self._lost is not None:
                raise LeaseLostError(self._lost)
            if not self._held:
                raise LeaseLostError("the pruner lease is not held", "acquire it first")
            try:
                with self.index.write() as session:
                    ours = renew_lease(session, self.holder, self.ttl, self.name)
            except Exception as exc:  # the index is unreachable: we cannot prove the lease is ours
                lost = self._lose(f"the pruner lease could not be renewed ({describe_index_error(exc)})")
                raise LeaseLostError(lost, "nothing more was deleted; run the pruner again") from exc
            if not ours:
                lost = self._lose("the pruner lease expired and another pruner took it")
                raise LeaseLostError(lost, "nothing more was deleted by this pruner")
            self._renewed = time.monotonic()

    def _lose(self, why: str) -> str:
        """Mark the lease lost for ``why`` (returned)."""
        self._lost = why
        _HELD.discard(self.holder)
        return why

    def check(self) -> None:
        """Call before every destructive step: raises if the lease is lost,
        renews it when a third of its time has passed."""
        if self._lost is not None:
            raise LeaseLostError(self._lost, "nothing more was deleted by this pruner")
        if time.monotonic() - self._renewed >= self.ttl.total_seconds() / 3:
            self.renew()

    def _beat(self) -> None:
        interval = max(self.ttl.total_seconds() / 3, 0.05)
        while not self._stop.wait(interval):
            try:
                self.renew()
            except LeaseLostError as exc:
                log.warning("%s", exc.message)
                return

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=30)
        self._thread = None
        _HELD.discard(self.holder)
        if self._held:
            self._held = False
            try:
                with self.index.write() as session:
                    release_lease(session, self.holder, self.name)
            except Exception as exc:  # noqa: BLE001 - it expires, and this process takes it back at once
                log.warning("could not release the pruner lease (%s); this process takes it back at its next "
                            "pass, others once it expires", describe_index_error(exc))

    def __enter__(self) -> Lease:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def current_lease(index: Index, name: str = PRUNER_LEASE) -> LeaseState:
    with index.read() as session:
        return lease_state(session, name)
