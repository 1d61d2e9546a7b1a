"""Who holds a lease or a write intent: one string per process, written and
read here only, and whether such a holder is alive.

A holder is identified by this machine's stable id (``settings.machine_id``,
never the hostname: cloned VMs share one), its pid with the process's start
time (a pid reused by another process is not the holder), and a random
token; the hostname rides along for humans. Only a holder on *this* machine
can be checked: alive while that very process exists. A holder on another
machine is presumed alive until its lease or intent expires by the index's
clock (``index.clock``).

Format: ``host=<hostname> pid=<pid> start=<start time> machine=<machine id> token=<token>``
(``start`` in clock ticks since boot, from ``/proc``; absent where there is none).
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from functools import lru_cache

from artifactfs.settings import machine_id


@dataclass(frozen=True)
class Holder:
    host: str
    pid: int
    machine: str
    token: str
    start: int | None = None  # the process's start time (clock ticks since boot)

    def __str__(self) -> str:
        start = f" start={self.start}" if self.start is not None else ""
        return f"host={self.host} pid={self.pid}{start} machine={self.machine} token={self.token}"

    @property
    def here(self) -> bool:
        """Whether it names a process of this machine (which can be checked)."""
        return self.machine == machine_id()

    def same_process(self, other: Holder) -> bool:
        """The same process (machine, pid and start time), whatever the token."""
        return (self.machine, self.pid, self.start) == (other.machine, other.pid, other.start)


def parse_holder(text: str | None) -> Holder | None:
    """The holder a string names; None for anything else (older formats included)."""
    if not text:
        return None
    fields = dict(part.split("=", 1) for part in text.split() if "=" in part)
    try:
        start = int(fields["start"]) if "start" in fields else None
        return Holder(fields["host"], int(fields["pid"]), fields["machine"], fields["token"], start)
    except (KeyError, ValueError):
        return None


def process_start(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot, ``/proc/<pid>/stat``
    field 22); None where there is no ``/proc``. Raises ProcessLookupError
    when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rpartition(b")")[2].split()
    except FileNotFoundError:
        if os.path.isdir("/proc/self"):
            raise ProcessLookupError(pid) from None
        return None
    except OSError:
        return None
    return int(fields[19])  # field 22 counts pid and comm, cut off above


@lru_cache(maxsize=8)
def _holder_for(pid: int, machine: str) -> Holder:
    # One token per process and machine id: a forked child gets its own.
    return Holder(socket.gethostname(), pid, machine, uuid.uuid4().hex[:12], process_start(pid))


def this_process() -> Holder:
    """The holder this process presents (stable for the process's life)."""
    return _holder_for(os.getpid(), machine_id())


def new_holder() -> Holder:
    """A holder of this process with a token of its own: two leases in one
    process never mistake each other."""
    base = this_process()
    return Holder(base.host, base.pid, base.machine, uuid.uuid4().hex[:12], base.start)


def still_runs(holder: Holder) -> bool:
    """Whether the process a holder of this machine names still runs."""
    if holder.pid == os.getpid():
        return holder.start in (None, this_process().start)
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's: its start time still tells
        pass
    try:
        start = process_start(holder.pid)
    except ProcessLookupError:
        return False
    return holder.start is None or start is None or start == holder.start


def known_dead(text: str | None) -> bool:
    """True only when ``text`` names a process on this machine (same machine
    id) that no longer runs (its pid is gone, or now belongs to a process
    that started later). A holder on another machine, or in a format we
    cannot read, is never known dead."""
    holder = parse_holder(text)
    return holder is not None and holder.here and not still_runs(holder)


def alive_here(text: str | None) -> bool:
    """True only when ``text`` names a process on this machine that still runs."""
    holder = parse_holder(text)
    return holder is not None and holder.here and still_runs(holder)


__all__ = ["Holder", "alive_here", "known_dead", "new_holder", "parse_holder", "process_start", "still_runs",
           "this_process"]
