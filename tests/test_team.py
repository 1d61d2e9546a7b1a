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
import shutil
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


# -- 2. opposite lock orders, forced to overlap ------------------------------------------------

WRITERS = '''
import sys
from typing import Annotated, Tuple

from artifactfs import pipeline, save_artifact, step

@step(enable_cache=False)
def x_then_y(seed: int) -> Tuple[Annotated[int, "dl_x"], Annotated[int, "dl_y"]]:
    return seed, seed + 1

@step(enable_cache=False)
def y_then_x(seed: int) -> Tuple[Annotated[int, "dl_y"], Annotated[int, "dl_x"]]:
    return seed, seed + 1

@pipeline(enable_cache=False)
def forward(seed: int = 0):
    x_then_y(seed)

@pipeline(enable_cache=False)
def backward(seed: int = 0):
    y_then_x(seed)

which = sys.argv[1]
if which == "save":
    save_artifact(7, "dl_y")
else:
    run = (forward if which == "forward" else backward)(seed=int(sys.argv[2]))
    assert run.status == "completed", run.status
print("done", which)
'''


def _lock_waiters(postgres_server, url: str) -> int:
    """Backends of the database waiting for a lock right now."""
    import psycopg

    dbname = url.rsplit("/", 1)[1]
    with psycopg.connect(host="127.0.0.1", port=postgres_server.port, user=postgres_server.user,
                         dbname="postgres", autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'",
                            (dbname,)).fetchone()[0]


def _wait_for(condition, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.mark.parametrize("first", ["forward", "backward"])
def test_opposite_lock_orders_never_deadlock(team, postgres_server, tmp_path, first):
    """One writer holds its artifact locks (paused in its commit); the writer
    saving the same artifacts in the other order and a plain save of one of
    them start and queue behind it; released, all three finish: no deadlock."""
    (a, b, c) = team(3)
    script = tmp_path / "writers.py"
    script.write_text(WRITERS)
    a.py("from artifactfs import save_artifact; save_artifact(0, 'dl_x'); save_artifact(0, 'dl_y')")
    pause = tmp_path / "pause"
    pause.mkdir()
    second = "backward" if first == "forward" else "forward"
    holder = a.spawn(str(script), first, "1", ARTIFACTFS_PAUSE="artifacts_locked", ARTIFACTFS_PAUSE_DIR=str(pause))
    others = []
    try:
        _wait_for(lambda: any(pause.glob("artifacts_locked.*.reached")), "the first writer to hold its locks")
        others = [b.spawn(str(script), second, "2"), c.spawn(str(script), "save")]
        _wait_for(lambda: _lock_waiters(postgres_server, a.url) >= 2, "both other writers to wait for the locks")
        (pause / "artifacts_locked.go").touch()
        for proc in [holder, *others]:
            out, err = proc.communicate(timeout=TIMEOUT)
            assert proc.returncode == 0, err
            assert "deadlock" not in err.lower(), err
    finally:
        for proc in [holder, *others]:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    versions = {name: sorted(int(v["version"]) for v in _versions(a, name)) for name in ("dl_x", "dl_y")}
    assert versions == {"dl_x": [1, 2, 3], "dl_y": [1, 2, 3, 4]}


# -- 4. joining: credentials per machine, store changes -------------------------------------


def _s3(machine: Machine, store: str) -> dict:
    """The store's row as the index holds it (never a secret in it)."""
    out = machine.py(f"""
        import json
        from artifactfs.index import find_store_row, get_index
        with get_index().read() as session:
            row = find_store_row(session, {store!r})
            print(json.dumps({{"options": row.options, "host": row.host_id}}))
    """).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_a_second_machine_logs_in_to_the_team_store(team, moto_server):
    a, b = team(2)
    bucket = f"team-{uuid.uuid4().hex[:10]}"
    servers.s3_bucket(moto_server, bucket)
    endpoint = moto_server.endpoint_url
    a.cli("store", "register", "team-s3", "-f", "s3", "-p", f"s3://{bucket}/artifacts",
          "-o", f"endpoint_url={endpoint}", "-o", "key=testing", "-o", "secret=testing")
    a.cli("store", "set-active", "team-s3")
    a.py("from artifactfs import save_artifact; save_artifact({'lr': 0.1}, 'params')")

    # B sees the store (the row is shared) but has no credentials of its own.
    b.cli("init")
    assert "team-s3" in b.cli("store", "list").stdout
    failed = b.cli("store", "check", "team-s3", expect=1)
    assert "credentials" in failed.stderr, failed.stderr
    # Registering it again is not the way in.
    b.cli("store", "register", "team-s3", "-f", "s3", "-p", f"s3://{bucket}/artifacts", expect=1)

    login = b.cli("store", "login", "team-s3", "-o", "key=testing", "-o", "secret=testing")
    assert "OK" in login.stdout and "testing" not in login.stdout + login.stderr, login.stdout
    credentials = b.home / "config" / "credentials.json"
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    assert json.loads(credentials.read_text())["team-s3"] == {"key": "testing", "secret": "testing"}
    row = _s3(b, "team-s3")
    assert row["options"] == {"endpoint_url": endpoint} and row["host"] is None  # no secret in the index
    assert b.py("from artifactfs import load_artifact; print(load_artifact('params'))").stdout.strip() == \
        "{'lr': 0.1}"
    b.cli("store", "set-active", "team-s3")
    b.py("from artifactfs import save_artifact; save_artifact({'lr': 0.2}, 'params')")
    assert a.py("from artifactfs import load_artifact; print(load_artifact('params'))").stdout.strip() == \
        "{'lr': 0.2}"

    # --from-env takes the provider's variables; a shared option is refused as a credential.
    c_env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    b.cli("store", "login", "team-s3", "--from-env", **c_env)
    one_line_error(b.cli("store", "login", "team-s3", "-o", "endpoint_url=http://x", expect=None),
                   "shared by every machine", "store update")

    # update: shared options to the index for everyone, secrets to this machine only.
    b.cli("store", "update", "team-s3", "-o", "use_ssl=false", "-o", "token=abcdef")
    assert _s3(a, "team-s3")["options"] == {"endpoint_url": endpoint, "use_ssl": False}
    assert json.loads(credentials.read_text())["team-s3"]["token"] == "abcdef"
    b.cli("store", "update", "team-s3", "--unset", "use_ssl", "--unset", "token")
    assert _s3(a, "team-s3")["options"] == {"endpoint_url": endpoint}
    assert "token" not in json.loads(credentials.read_text())["team-s3"]


def test_stores_are_removed_only_when_nothing_is_lost_silently(team, moto_server):
    a, b = team(2)
    bucket = f"gone-{uuid.uuid4().hex[:10]}"
    fs = servers.s3_bucket(moto_server, bucket)
    options = ["-o", f"endpoint_url={moto_server.endpoint_url}", "-o", "key=testing", "-o", "secret=testing"]
    a.cli("store", "register", "shared", "-f", "s3", "-p", f"s3://{bucket}/x", *options)
    a.cli("store", "register", "empty", "-f", "s3", "-p", f"s3://{bucket}/empty", *options)
    a.py("from artifactfs import save_artifact; save_artifact([1], 'kept', store='shared'); "
         "save_artifact([2], 'kept', store='shared')")

    # Refused while versions live there, with their count and what to do.
    one_line_error(a.cli("store", "remove", "shared", expect=None), "2 live version(s)", "kept:1", "migrate")
    # --force on a store that answers and still holds the payloads: refused too.
    one_line_error(a.cli("store", "remove", "shared", "--force", expect=None), "still holds files")

    # An empty store goes, row and this machine's credentials.
    a.cli("store", "remove", "empty")
    assert "empty" not in a.cli("store", "list").stdout
    assert "empty" not in json.loads((a.home / "config" / "credentials.json").read_text())

    # The bucket's files are gone (deleted outside artifactfs): --force marks the versions lost.
    fs.rm(f"{bucket}/x", recursive=True)
    removed = a.cli("store", "remove", "shared", "--force")
    assert "2 version(s)" in removed.stdout and "lost" in removed.stdout, removed.stdout
    assert "kept" not in b.cli("artifact", "list").stdout
    one_line_error(b.cli("artifact", "show", "kept", expect=None), "kept")
    fsck = b.cli("fsck")
    assert fsck.stdout.count("lost") >= 2 and "kept:1" in fsck.stdout and "shared" in fsck.stdout, fsck.stdout
    # The name is free again.
    a.cli("store", "register", "shared", "-f", "s3", "-p", f"s3://{bucket}/y", *options)


# -- 5. behind PgBouncer in transaction pooling mode ------------------------------------------

PIPELINE = '''
from artifactfs import pipeline, step

@step
def make(n: int) -> list:
    return list(range(n))

@step
def total(values: list) -> int:
    return sum(values)

@pipeline
def numbers(n: int = 3):
    total(make(n))

for n in range(3, 8):
    run = numbers(n=n)
    assert run.status == "completed"
    assert run.steps["total"].output.load() == sum(range(n))
print("pipelines ok")
'''


def test_the_index_works_behind_pgbouncer(team, pgbouncer_server, tmp_path):
    """Every transaction may land on another server connection (PgBouncer
    alternates between two): saves, loads, pipelines, gc and fsck of two
    machines go through it without session state or prepared statements."""
    a, b = team(2, server=pgbouncer_server)
    script = tmp_path / "numbers.py"
    script.write_text(PIPELINE)
    a.cli("init")
    b.cli("init")
    for machine in (a, b):
        machine.py("""
            from artifactfs import load_artifact, save_artifact
            for i in range(12):  # past psycopg's prepare threshold (5) on the same statements
                save_artifact({"i": i}, "counter")
            assert load_artifact("counter") == {"i": 11}
        """)
        assert "pipelines ok" in machine.py(script.read_text()).stdout
    a.cli("gc", "--dry-run")
    b.cli("gc", "-y", "--keep-latest", "1", "--grace", "0s", "--orphan-grace", "1h")
    assert len(_versions(a, "counter")) == 1
    a.cli("fsck")
    pool = [p for p in pgbouncer_server.pools() if p["database"] == a.url.rsplit("/", 1)[1]]
    assert pool and pool[0]["pool_mode"] == "transaction"


def test_a_mount_shows_other_machines_versions_but_never_reads_their_folders(team, tmp_path, monkeypatch):
    """B's mount lists A's local versions (the index is shared), a read of
    one gives EIO and a log line naming A's machine; B's own read fine."""
    import errno

    from test_mount_helpers import mounted

    a, b = team(2)
    a.py("from artifactfs import save_artifact; save_artifact({'on': 'a'}, 'from_a')")
    b.py("from artifactfs import save_artifact; save_artifact({'on': 'b'}, 'from_b')")
    for key, value in b.env().items():
        monkeypatch.setenv(key, value)
    with mounted(tmp_path / "mnt") as mount:
        theirs = mount.path / "artifacts" / "from_a" / "1" / "data.json"
        assert theirs.stat().st_size > 0  # listed and stat'ed from the index
        with pytest.raises(OSError) as failed:
            theirs.read_bytes()
        assert failed.value.errno == errno.EIO
        assert json.loads((mount.path / "artifacts" / "from_b" / "1" / "data.json").read_text()) == {"on": "b"}
        log = mount.log()
    assert f"local store of machine {a.short}" in log, log


def _b_takes_default_while_a_pauses(team, tmp_path, code: str, point: str) -> tuple[object, str]:
    """Run ``code`` on machine A, paused at ``point``; B runs `init` (taking
    `default`) meanwhile; then A goes on. Returns A and what it printed."""
    a, b = team(2)
    pause = tmp_path / "pause"
    pause.mkdir()
    first = a.spawn("-c", code, ARTIFACTFS_PAUSE=point, ARTIFACTFS_PAUSE_DIR=str(pause))
    try:
        _wait_for(lambda: any(pause.glob(f"{point}.*.reached")), f"A to reach {point}")
        assert b.cli("init").stdout.count("default (") == 1
        (pause / f"{point}.go").touch()
        out, err = first.communicate(timeout=TIMEOUT)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == 0, err
    return a, out.strip()


def test_machines_initializing_at_once_each_get_their_own_store(team, tmp_path):
    """A looks for its default store's name and finds `default` free; B
    takes it before A goes on: A ends with `default-<A>`, never B's store."""
    a, out = _b_takes_default_while_a_pauses(team, tmp_path, "from artifactfs.api import init; print(init().name)",
                                             "default_store_named")
    assert out == f"default-{a.short}"
    mine = a.py("from artifactfs import save_artifact; print(save_artifact(1, 'x').uri)")
    assert mine.stdout.strip().startswith(str(a.home))


def test_a_machine_that_finds_its_name_taken_on_first_use_never_uses_the_other_store(team, tmp_path):
    """A's first save looks up its default store's name and finds `default`
    free; B takes it before A checks whether it exists: A must create
    `default-<A>`, never save into B's store (seen as a ForeignStoreError
    in bench/team_throughput.py with 8 writers starting at once)."""
    a, out = _b_takes_default_while_a_pauses(
        team, tmp_path, "from artifactfs import save_artifact; print(save_artifact(1, 'x').uri)",
        "default_store_looked_up")
    assert out.startswith(str(a.home)), out


# -- 6. the pruner's lease across machines ------------------------------------------------------

HOLD_AND_DIE = """
import datetime as dt, os, signal
from artifactfs.gc import Lease
from artifactfs.index import get_index
Lease(get_index(), ttl=dt.timedelta(seconds=6), heartbeat=False).acquire()
os.kill(os.getpid(), signal.SIGKILL)  # killed while holding the lease
"""

LEASE_EXPIRED = """
from artifactfs.gc import current_lease
from artifactfs.index import get_index
from artifactfs.index.clock import database_now
index = get_index()
with index.read() as session:
    now = database_now(session)
state = current_lease(index)
print("expired" if state.expires_at is None or state.expires_at <= now else "held")
"""


def test_the_pruner_lease_across_machines_with_one_hostname(team):
    """A pruner killed on machine A: machine B (same hostname, as cloned VMs
    have) cannot prove it dead and waits for the lease to expire by the
    database's clock; A itself, restarted, knows its process is gone."""
    a, b = team(2)
    a.cli("init")
    b.cli("init")
    a.py(HOLD_AND_DIE, expect=-9)
    refused = b.cli("gc", "-y", expect=1)
    assert "another pruner" in refused.stderr, refused.stderr
    again = Machine("a-again", a.home, a.url, a.machine_id)  # the same machine, a new process
    again.cli("gc", "-y")
    again.py(HOLD_AND_DIE, expect=-9)
    one_line_error(b.cli("gc", "-y", expect=None), "another pruner")
    _wait_for(lambda: "expired" in b.py(LEASE_EXPIRED).stdout, "the lease to expire by the database's clock")
    b.cli("gc", "-y")


# -- 6. two homes on one machine, and a cloned machine ---------------------------------------


def test_two_homes_on_one_machine_each_get_their_own_default_store(team):
    """Two users (two homes) of one server on the team index: the second
    home's init gets a store of its own in its own folder, never the first
    home's (issue 22 item 10)."""
    first, second = team(2)
    second.machine_id = first.machine_id  # the same machine, another home
    first.cli("init")
    out = second.cli("init").stdout
    assert str(second.home) in out and "default (" not in out, out
    second.py("from artifactfs import save_artifact; save_artifact([3], 'from_second')")
    (saved,) = _versions(second, "from_second")
    assert saved["store"].startswith(f"default-{first.short}") and saved["uri"].startswith(str(second.home)), saved
    first.py("from artifactfs import save_artifact; save_artifact([1], 'from_first')")
    assert _versions(first, "from_first")[0]["store"] == "default"
    assert first.cli("init").stdout == first.cli("init").stdout  # each home keeps finding its own


def test_a_clone_with_the_same_machine_id_never_takes_the_first_machines_store(team):
    """A VM cloned without a new /etc/machine-id has the same id and the same
    home path, but not the first machine's folder: init refuses in one line
    naming the cause and the fix, and takes nothing."""
    original, clone = team(2)
    clone.machine_id, clone.home = original.machine_id, original.home
    original.cli("init")
    original.py("from artifactfs import save_artifact; save_artifact([1], 'x')")
    original.home.rename(original.home.with_name("on-the-original-machine"))  # its disk is elsewhere
    error = one_line_error(clone.cli("init", expect=None), "/etc/machine-id", "ARTIFACTFS_MACHINE_ID")
    assert "does not exist here" in error
    saved = clone.py("from artifactfs import save_artifact; save_artifact([2], 'y')", expect=None)
    assert saved.returncode != 0 and "/etc/machine-id" in saved.stderr


def test_artifact_list_marks_versions_only_another_machine_can_read(team):
    a, b = team(2)
    a.py("from artifactfs import save_artifact; save_artifact([1], 'mine'); save_artifact([2], 'mine')")
    b.py("from artifactfs import save_artifact; save_artifact([3], 'shared_name')")
    mine = [line for line in b.cli("artifact", "list").stdout.splitlines() if " mine " in f" {line} "]
    assert mine and "2 (2 not readable here)" in mine[0], mine
    assert "another machine's local store" in b.cli("artifact", "list").stdout
    listing = a.cli("artifact", "list").stdout
    assert "not readable here" in listing and "1 (1 not readable here)" in listing  # b's version, seen from a
    assert "2 (" not in listing  # a's own versions are readable on a


def test_a_second_unix_user_on_the_same_machine_gets_a_store_of_its_own(team, tmp_path):
    """Two Unix users of one server (the real machine id, homes under their
    own HOME) on the team index: the second user's init and saves go to its
    own folder, never into the first user's 0700 store."""
    from unix_users import second_user

    user = second_user()
    if user.run(sys.executable, "-c", "import artifactfs").returncode != 0:
        pytest.skip(f"{user.name} cannot run this suite's Python ({sys.executable})")
    (first,) = team(1)
    root_home, user_home = tmp_path / "root-home", user.folder(prefix="artifactfs-teammate-")
    try:
        base = {k: v for k, v in first.env().items()
                if not k.startswith(("ARTIFACTFS_HOME", "ARTIFACTFS_MACHINE_ID", "XDG_"))}
        mine = subprocess.run([ARTIFACTFS, "init"], env={**base, "HOME": str(root_home)}, capture_output=True,
                              text=True, timeout=TIMEOUT)
        assert mine.returncode == 0 and f"default ({root_home}" in mine.stdout, mine.stdout + mine.stderr
        theirs = user.run(ARTIFACTFS, "init", env={**base, "HOME": str(user_home)}, timeout=TIMEOUT)
        assert theirs.returncode == 0, theirs.stderr
        assert f"({user_home}/.local/share/artifactfs/store)" in theirs.stdout, theirs.stdout
        saved = user.run(sys.executable, "-c", "from artifactfs import save_artifact; print(save_artifact([1], 'x').uri)",
                         env={**base, "HOME": str(user_home)}, timeout=TIMEOUT)
        assert saved.returncode == 0 and saved.stdout.strip().startswith(str(user_home)), saved.stderr
    finally:
        shutil.rmtree(user_home, ignore_errors=True)
