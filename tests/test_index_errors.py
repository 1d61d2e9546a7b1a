"""An index that cannot be used says what is wrong and the way out, never the
driver's or Alembic's text: a full device (and reads still work), a garbage
or truncated file, a schema newer than this artifactfs (SQLite and
PostgreSQL). Each row runs the real `artifactfs` command in its own process."""

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

pytest_plugins = ["index_fixtures"]

RAW = ("sqlalche.me", "DatabaseError", "OperationalError", "CommandError", "Can't locate revision", "Traceback")
ARTIFACTFS = shutil.which("artifactfs")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([ARTIFACTFS, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "400"})


def index_file(home: Path) -> Path:
    return home / "data" / "index.db"


def save_one() -> None:
    done = run("artifact", "register", "--copy", "--name", "a", str(Path(__file__)))
    assert done.returncode == 0, done.stderr


def garbage(home: Path, url: str | None) -> None:
    index_file(home).write_bytes(os.urandom(8192))


def truncated(home: Path, url: str | None) -> None:
    data = index_file(home).read_bytes()
    index_file(home).write_bytes(data[: len(data) // 2])


def newer_schema(home: Path, url: str | None) -> None:
    engine = create_engine(url or f"sqlite:///{index_file(home)}")
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    engine.dispose()


CASES = {
    # name: (backend, damage, what the error says, what the way out says)
    "garbage": ("sqlite", garbage, "is not a SQLite database", ["mv ", ".damaged", "artifactfs init", "fsck --adopt"]),
    "truncated": ("sqlite", truncated, "is damaged", ["mv ", ".damaged", "artifactfs init", "fsck --adopt"]),
    "newer-sqlite": ("sqlite", newer_schema, "schema revision '9999_from_the_future'",
                     ["upgrade artifactfs", "mv ", "artifactfs init", "fsck --adopt"]),
    "newer-postgres": ("postgres", newer_schema, "schema revision '9999_from_the_future'",
                       ["upgrade artifactfs", "new, empty database", "artifactfs init", "fsck --adopt"]),
    "full": ("tmpfs", None, "no space left on the device holding it", ["free space", "still work"]),
}


@pytest.fixture
def full_home(tmp_path, monkeypatch):
    """ARTIFACTFS_HOME on a small tmpfs, mounted as root and unmounted at the end."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mountpoint = tmp_path / "small"
    mountpoint.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mountpoint)], check=True)
    try:
        monkeypatch.setenv("ARTIFACTFS_HOME", str(mountpoint / "home"))
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=True)


def fill(device: Path) -> Path:
    """Write a file on ``device`` until it is full; the file."""
    filler = device / "filler"
    with pytest.raises(OSError, match="No space left"):
        with open(filler, "wb") as f:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
    return filler


@pytest.mark.parametrize("case", list(CASES))
def test_unusable_index_says_why_and_the_way_out(case, request, artifactfs_home, monkeypatch):
    backend, damage, says, way_out = CASES[case]
    url = None
    if backend == "postgres":
        url = request.getfixturevalue("postgres_server").create_database(f"t_{uuid.uuid4().hex[:16]}")
        monkeypatch.setenv("ARTIFACTFS_INDEX_URL", url)
    home = request.getfixturevalue("full_home") / "home" if backend == "tmpfs" else artifactfs_home
    assert run("init").returncode == 0
    save_one()

    if backend == "tmpfs":  # fill the device, then: reads work (with a warning), a write names the cause
        fill(home.parent)
        listed = run("artifact", "list")
        assert listed.returncode == 0 and "a " in listed.stdout, listed.stderr
        assert says in listed.stderr and str(home.parent) in listed.stderr and "read only" in listed.stderr
        shown = run("artifact", "show", "a:1")
        assert shown.returncode == 0, shown.stderr
        failed = run("artifact", "tag", "a:1", "keep")
    else:
        damage(home, url)
        failed = run("artifact", "list")
    output = failed.stdout + failed.stderr
    assert failed.returncode == 1, output
    assert says in output and all(step in output for step in way_out), output
    assert not any(raw in output for raw in RAW), output
    if backend == "sqlite":
        assert str(index_file(home)) in output


def test_the_way_out_of_a_garbage_index_works(artifactfs_home):
    """What the hint says, done: move it aside, init, fsck --adopt: the versions are back."""
    run("init")
    save_one()
    path = index_file(artifactfs_home)
    garbage(artifactfs_home, None)
    assert "is not a SQLite database" in run("artifact", "list").stderr
    path.rename(path.with_name("index.db.damaged"))
    assert run("init").returncode == 0
    adopted = run("fsck", "--adopt")
    assert adopted.returncode == 0, adopted.stdout + adopted.stderr
    listed = run("artifact", "versions", "a")
    assert listed.returncode == 0 and "1" in listed.stdout, listed.stderr


def test_a_command_leaves_every_commit_in_the_index_file(artifactfs_home, tmp_path):
    """A command closes the index as it returns, so SQLite folds its
    write-ahead log back: ``index.db`` alone (a copy of it, a backup) holds
    what the command committed, and nothing is left in the log (which a
    full device's read-only opening needs)."""
    save_one()
    log = index_file(artifactfs_home).with_name("index.db-wal")
    assert not log.exists() or log.stat().st_size == 0
    copy = tmp_path / "copy.db"
    shutil.copyfile(index_file(artifactfs_home), copy)
    engine = create_engine(f"sqlite:///{copy}")
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT count(*) FROM artifact_version")) == 1
    engine.dispose()


def test_full_device_reads_then_writes_again_in_one_process(full_home):
    """In one process (a daemon, a notebook) that opens the index on a full device: it reads (read
    only), a write names the device, and once there is space again writes work without a restart."""
    from artifactfs import Client, save_artifact
    from artifactfs.index import get_index, reset_index_cache
    from artifactfs.index.health import IndexFullError

    assert run("init").returncode == 0
    save_one()  # in another process: this one opens the index only once the device is full
    filler = fill(full_home)
    reset_index_cache()
    assert [v.version for v in Client().list_artifact_versions(name="a")] == ["1"]
    assert get_index().full is not None  # opened read only
    with pytest.raises(IndexFullError, match="no space left on the device holding it"):
        get_index().run_write(lambda session: session.execute(text("CREATE TABLE filler (x)")))
    filler.unlink()
    save_artifact(b"second", "a")
    assert sorted(v.version for v in Client().list_artifact_versions(name="a")) == ["1", "2"]
    assert get_index().full is None
    reset_index_cache()


def test_postgres_disk_full_is_named(request, artifactfs_home, monkeypatch, tmp_path):
    """The index database lives in a tablespace on a small tmpfs that fills up: a write says the
    server has no space left, not psycopg's text; reads still work."""
    import tempfile

    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    server = request.getfixturevalue("postgres_server")
    mountpoint = Path(tempfile.mkdtemp(prefix="afs-pgfull-", dir="/tmp"))
    mountpoint.chmod(0o755)  # the postgres user must reach it
    name = f"t_{uuid.uuid4().hex[:16]}"
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m,mode=0755", "tmpfs", str(mountpoint)], check=True)
    try:
        shutil.chown(mountpoint, "postgres", "postgres")
        with server._connect() as conn:
            conn.execute(f"CREATE TABLESPACE {name} LOCATION '{mountpoint}'")
            conn.execute(f"CREATE DATABASE {name} TABLESPACE {name}")
        monkeypatch.setenv("ARTIFACTFS_INDEX_URL", server.url_for(name))
        assert run("init").returncode == 0
        save_one()
        filler = fill(mountpoint)
        many = tmp_path / "many"
        many.mkdir()
        for i in range(3000):  # thousands of manifest rows (about 40 fill a page): the tables must grow, whatever
            # free pages the server holds (300 rows fitted, now and then, once a save wrote fewer index pages)
            (many / f"file-{i:05d}-{'x' * 100}.txt").write_text(str(i))
        failed = run("artifact", "register", "--copy", "--name", "b", str(many))
        output = failed.stdout + failed.stderr
        assert failed.returncode == 1, output
        assert "its server has no space left" in output and "still work" in output, output
        assert not any(raw in output for raw in (*RAW, "psycopg.", "pipeline aborted", "could not extend")), output
        listed = run("artifact", "list")  # reads work while the server can open connections to it
        assert (listed.returncode == 0 and "a " in listed.stdout) or (
            listed.returncode == 1 and "its server has no space left" in listed.stderr), listed.stderr
        filler.unlink()
    finally:
        with server._connect() as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            conn.execute(f"DROP TABLESPACE IF EXISTS {name}")
        subprocess.run(["umount", "-l", str(mountpoint)], check=True)
        mountpoint.rmdir()
