"""A second local Unix user for tests that act as someone else on the same
machine (a teammate on a shared server): created once with ``useradd``,
commands run as it through ``setpriv``. Needs root; skips otherwise (fails
in CI, where the suite runs as root)."""

from __future__ import annotations

import fcntl
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class UnixUser:
    name: str
    uid: int
    gid: int

    def argv(self, *command: str) -> list[str]:
        """``command`` run as this user, with no supplementary groups."""
        return ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups", *command]

    def run(self, *command: str, **kwargs) -> subprocess.CompletedProcess:
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        kwargs.setdefault("timeout", 120)
        return subprocess.run(self.argv(*command), **kwargs)

    def folder(self, prefix: str = "artifactfs-user-") -> Path:
        """A fresh folder this user owns, at a path it can reach (pytest's
        folders are private to the user running the suite); the caller removes it."""
        path = Path(tempfile.mkdtemp(prefix=prefix))
        path.chmod(0o755)
        os.chown(path, self.uid, self.gid)
        return path


def second_user(name: str = "afs-teammate") -> UnixUser:
    """The local user ``name``, created (without a home folder) if missing."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None or shutil.which("useradd") is None:
        reason = "acting as a second Unix user needs root, useradd and setpriv"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI is set)", pytrace=False)
        pytest.skip(reason)
    entry = ensure_user(name, "/bin/sh")
    return UnixUser(name, entry.pw_uid, entry.pw_gid)


def ensure_user(name: str, shell: str) -> pwd.struct_passwd:
    """The local user ``name``, created (without a home folder) if missing.
    Parallel test workers (pytest-xdist) may ask at once: one creates it
    under a lock, the others find it made."""
    with open(Path(tempfile.gettempdir()) / "artifactfs-tests-useradd.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return pwd.getpwnam(name)
        except KeyError:
            subprocess.run(["useradd", "-M", "-s", shell, name], check=True, capture_output=True, timeout=60)
            return pwd.getpwnam(name)
