"""Who holds a lease or a write intent: one string per process, and whether
such a holder is known to be dead.

A holder is identified by this machine's stable id (``settings.machine_id``,
never the hostname: cloned VMs share one) and a random per-process token;
the pid and hostname ride along so that humans can find the process. Only a
holder on *this* machine can be proven dead (its pid is gone); a holder on
another machine is presumed alive until its lease or intent expires by the
database's clock.

Format: ``host=<hostname> pid=<pid> machine=<machine id> token=<token>``.
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

    def __str__(self) -> str:
        return f"host={self.host} pid={self.pid} machine={self.machine} token={self.token}"


def parse_holder(text: str | None) -> Holder | None:
    """The holder a string names; None for anything else (older formats included)."""
    if not text:
        return None
    fields = dict(part.split("=", 1) for part in text.split() if "=" in part)
    try:
        return Holder(fields["host"], int(fields["pid"]), fields["machine"], fields["token"])
    except (KeyError, ValueError):
        return None


@lru_cache(maxsize=8)
def _holder_for(pid: int, machine: str) -> Holder:
    # One token per process and machine id: a forked child gets its own.
    return Holder(socket.gethostname(), pid, machine, uuid.uuid4().hex[:12])


def this_process() -> Holder:
    """The holder this process presents (stable for the process's life)."""
    return _holder_for(os.getpid(), machine_id())


def new_holder() -> Holder:
    """A holder with a token of its own: two leases in one process never mistake each other."""
    base = this_process()
    return Holder(base.host, base.pid, base.machine, uuid.uuid4().hex[:12])


def known_dead(text: str | None) -> bool:
    """True only when ``text`` names a process on this machine (same machine
    id) that no longer exists. A holder on another machine, or in a format
    we cannot read, is never known dead."""
    holder = parse_holder(text)
    if holder is None or holder.machine != machine_id():
        return False
    if holder.pid == os.getpid():  # this process, or a dead one whose pid we reuse: alive
        return False
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def alive_here(text: str | None) -> bool:
    """True only when ``text`` names a process on this machine that still runs."""
    holder = parse_holder(text)
    if holder is None or holder.machine != machine_id():
        return False
    return not known_dead(text)


__all__ = ["Holder", "alive_here", "known_dead", "new_holder", "parse_holder", "this_process"]
