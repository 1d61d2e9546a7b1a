"""Helpers for the link-swap tests and the soak: a root-only secret, a
second Unix user, and a process that keeps swapping a path for a symbolic
link and back with ``renameat2(RENAME_EXCHANGE)`` (atomic: the path is
always either the real entry or the link, never missing)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import pwd
import subprocess
import sys
import time
from pathlib import Path

import pytest

ATTACKER = "artifactfs-attacker"
RENAME_EXCHANGE = 2
AT_FDCWD = -100

_FLIPPER = r"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
a, b = os.fsencode(sys.argv[1]), os.fsencode(sys.argv[2])
while not os.path.exists(sys.argv[3]):
    if libc.renameat2(-100, a, -100, b, 2) != 0:
        if ctypes.get_errno() == 2:
            break  # the real entry was deleted: nothing left to swap
        raise OSError(ctypes.get_errno(), "renameat2")
"""


def exchange(a: str | os.PathLike, b: str | os.PathLike) -> None:
    """Swap two names atomically (Linux ``renameat2(RENAME_EXCHANGE)``)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.renameat2(AT_FDCWD, os.fsencode(str(a)), AT_FDCWD, os.fsencode(str(b)), RENAME_EXCHANGE) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno), str(a))


def root_only_secret(path: Path, size: int, fill: bytes = b"S") -> bytes:
    """A file only root may read (0600, owned by root) of ``size`` bytes
    (the size of the payload it poses as, so a reader that checks sizes
    still takes it); its bytes."""
    data = (fill * size)[:size]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(0o600)
    return data


@contextlib.contextmanager
def flipping(real: Path, target: Path):
    """While inside: ``real`` keeps being swapped with a symbolic link to
    ``target`` and back, by a separate process (no GIL shared with the code
    under test). On exit ``real`` is the real entry again."""
    link = real.with_name(real.name + ".swap-link")
    stop = real.with_name(real.name + ".swap-stop")
    link.symlink_to(target)
    proc = subprocess.Popen([sys.executable, "-c", _FLIPPER, str(real), str(link), str(stop)])
    try:
        time.sleep(0.05)
        yield
    finally:
        stop.touch()
        proc.wait(30)
        stop.unlink()
        if real.is_symlink():
            exchange(real, link)
        link.unlink()
        assert proc.returncode == 0, "the flipper failed"


def require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("plays an attacker against root: run as root")


def attacker() -> pwd.struct_passwd:
    """A second Unix user (made once, without a home)."""
    from unix_users import ensure_user

    require_root()
    return ensure_user(ATTACKER, "/usr/sbin/nologin")


def as_attacker(*argv: str) -> subprocess.CompletedProcess:
    """Run a command as the second user (``setpriv``, as TESTING.md shows)."""
    user = attacker()
    return subprocess.run(["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups", *argv],
                          capture_output=True, timeout=60)
