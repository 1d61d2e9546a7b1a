"""Which processes use a mount, found as ``fuser -m`` finds them: a working
directory, a root, an open file or a mapped file at or below the
mountpoint, read from ``/proc`` without touching the mount itself (so a
dead mount is safe to ask about).

Only this machine's processes that this user may inspect are seen; the
kernel's "busy" is the authority, this list only names who to ask.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

_DELETED = " (deleted)"


@dataclass(frozen=True)
class User:
    pid: int
    command: str
    uses: tuple[str, ...]  # "working directory", "root", "open file", "mapped file"

    def __str__(self) -> str:
        return f"pid {self.pid} ({self.command}: {', '.join(self.uses)})"


def _inside(target: str, mountpoint: str) -> bool:
    if target.endswith(_DELETED):
        target = target[: -len(_DELETED)]
    return target == mountpoint or target.startswith(mountpoint.rstrip("/") + "/")


def _links(pid: int, mountpoint: str) -> list[str]:
    uses = []
    for link, use in (("cwd", "working directory"), ("root", "root")):
        try:
            if _inside(os.readlink(f"/proc/{pid}/{link}"), mountpoint):
                uses.append(use)
        except OSError:
            pass
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        fds = []
    for fd in fds:
        try:
            if _inside(os.readlink(f"/proc/{pid}/fd/{fd}"), mountpoint):
                uses.append("open file")
                break
        except OSError:
            pass
    return uses


def _maps(pid: int, mountpoint: str) -> bool:
    try:
        with open(f"/proc/{pid}/maps", errors="replace") as maps:
            for line in maps:
                fields = line.rstrip("\n").split(None, 5)
                if len(fields) == 6 and _inside(fields[5], mountpoint):
                    return True
    except OSError:
        pass
    return False


def _command(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as comm:
            return comm.read().strip() or "?"
    except OSError:
        return "?"


def users_of(mountpoint: str | os.PathLike) -> list[User]:
    """The processes (other than this one) using ``mountpoint``, by pid."""
    point = os.path.abspath(mountpoint)
    me = os.getpid()
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        pid = int(entry.name)
        uses = _links(pid, point)
        if _maps(pid, point):
            uses.append("mapped file")
        if uses:
            found.append(User(pid, _command(pid), tuple(uses)))
    return sorted(found, key=lambda user: user.pid)
