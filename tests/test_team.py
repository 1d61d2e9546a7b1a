"""A team on one index: several machines, each a process with its own
ARTIFACTFS_HOME and ARTIFACTFS_MACHINE_ID, sharing one real PostgreSQL (and,
for the shared store, one moto S3 server).

Covered: per-machine local stores that other machines never read, repair or
sweep (issue 15 item 1); writers saving the same artifacts in opposite
orders, forced to overlap, without a deadlock reaching anyone (2); logging
in to a shared store, updating and removing stores (4); the index behind
PgBouncer in transaction pooling mode (5).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import servers

ARTIFACTFS = str(Path(sys.executable).with_name("artifactfs"))
TIMEOUT = 180

# Never a credential of the machine running the suite.
_AWS_ISOLATION = {"AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_CONFIG_FILE": "/nonexistent",
                  "AWS_EC2_METADATA_DISABLED": "true"}
_DROPPED = ("ARTIFACTFS_STORE", "ARTIFACTFS_FAULT", "ARTIFACTFS_PAUSE", "ARTIFACTFS_PAUSE_DIR",
            "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE")


@dataclass
class Machine:
    """One engineer's machine: a home, a machine id, the team's index URL."""

    name: str
    home: Path
    url: str
    machine_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def short(self) -> str:
        return self.machine_id[:8]

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _DROPPED}
        env.update(_AWS_ISOLATION, ARTIFACTFS_HOME=str(self.home), ARTIFACTFS_MACHINE_ID=self.machine_id,
                   ARTIFACTFS_INDEX_URL=self.url, COLUMNS="500", **extra)
        return env

    def cli(self, *args: str, expect: int | None = 0, **env: str) -> subprocess.CompletedProcess:
        result = subprocess.run([ARTIFACTFS, *args], env=self.env(**env), capture_output=True, text=True,
                                timeout=TIMEOUT)
        _expect(result, expect, f"{self.name}: artifactfs {' '.join(args)}")
        return result

    def py(self, code: str, expect: int | None = 0, **env: str) -> subprocess.CompletedProcess:
        result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=self.env(**env),
                                capture_output=True, text=True, timeout=TIMEOUT)
        _expect(result, expect, f"{self.name}: python")
        return result

    def spawn(self, *argv: str, **env: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, *argv], env=self.env(**env), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)


def _expect(result: subprocess.CompletedProcess, expect: int | None, what: str) -> None:
    if expect is not None:
        assert result.returncode == expect, f"{what}: rc {result.returncode}\n{result.stdout}\n{result.stderr}"


def one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    """The error is one 'Error:' line (and a hint), no traceback, naming each fragment."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, (fragment, result.stderr)
    return errors[0]


@pytest.fixture
def team(postgres_server, tmp_path):
    """``team(n, server=None)``: n machines on a fresh database of the real
    PostgreSQL (or of ``server``, e.g. PgBouncer in front of it)."""

    def make(count: int, server=None) -> list[Machine]:
        url = (server or postgres_server).create_database(f"team_{uuid.uuid4().hex[:12]}")
        return [Machine(name, tmp_path / name, url) for name in "abc"[:count]]

    return make


def _versions(machine: Machine, name: str) -> list[dict]:
    out = machine.py(f"""
        import json
        from artifactfs import Client
        print(json.dumps([{{"version": v.version, "store": v.store, "uri": v.uri}}
                          for v in Client().list_artifact_versions(name={name!r})]))
    """).stdout
    return json.loads(out.strip().splitlines()[-1])


# -- 1. each machine its own local store ------------------------------------------------------


def _back_date(path: Path, days: int = 3) -> None:
    old = time.time() - days * 86400
    for folder, dirs, files in os.walk(path):
        for entry in dirs + files:
            os.utime(os.path.join(folder, entry), (old, old))
    os.utime(path, (old, old))


def test_each_machine_has_its_own_local_store_that_others_never_touch(team):
    a, b = team(2)
    a.cli("init")
    a.py("from artifactfs import save_artifact; save_artifact([1, 2], 'from_a')")
    out = b.cli("init").stdout
    assert str(b.home) in out and f"default-{b.short}" in out, out

    # B saves into its own folder, under its own home.
    b.py("from artifactfs import save_artifact; save_artifact([3], 'from_b')")
    (from_b,) = _versions(b, "from_b")
    assert from_b["store"] == f"default-{b.short}" and from_b["uri"].startswith(str(b.home)), from_b
    (from_a,) = _versions(a, "from_a")
    assert from_a["store"] == "default" and from_a["uri"].startswith(str(a.home)), from_a

    # Both machines see both versions; the listing says whose each local store is.
    listing = b.cli("store", "list").stdout
    assert f"machine {a.short}" in listing and "this machine" in listing, listing

    # B never reads A's folder: one line naming A's machine and pointing to a shared store.
    result = b.py("from artifactfs import load_artifact; load_artifact('from_a')", expect=None)
    one_line_error(b.cli("artifact", "export", "from_a", str(b.home / "out"), expect=None), f"machine {a.short}",
                   "shared store")
    assert f"machine {a.short}" in result.stderr, result.stderr
    one_line_error(b.cli("store", "set-active", "default", expect=None), f"machine {a.short}")
    migrate = b.cli("migrate", "--to", f"default-{b.short}", "--from", "default", expect=None)
    assert migrate.returncode != 0 and f"machine {a.short}" in migrate.stderr, migrate.stdout + migrate.stderr
    assert _versions(a, "from_a") == [from_a]  # not moved

    # An old orphan in A's folder and A's versions: B's fsck --repair and gc leave them alone.
    orphan = a.home / "data" / "store" / "from_a" / str(uuid.uuid4())
    orphan.mkdir(parents=True)
    (orphan / "junk.bin").write_bytes(b"x" * 10)
    _back_date(orphan)
    fsck = b.cli("fsck", "--repair", expect=None)
    assert f"machine {a.short}" in fsck.stderr + fsck.stdout, fsck.stdout + fsck.stderr
    gc = b.cli("gc", "-y", expect=None)
    assert f"machine {a.short}" in gc.stdout + gc.stderr, gc.stdout + gc.stderr
    assert orphan.exists()
    assert a.py("from artifactfs import load_artifact; print(load_artifact('from_a'))").stdout.strip() == "[1, 2]"

    # The owner sweeps its own orphan.
    owner = a.cli("gc", "-y", expect=None)
    assert not orphan.exists(), owner.stdout + owner.stderr
