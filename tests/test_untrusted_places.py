"""Round three of "never lose" (issue 24's four classes) in the code paths
the first fixes did not reach: what artifactfs writes into a folder a user
named (an export's destination, the mount's cache folder) is never written
through a link another user planted there, and what it deletes of a folder
registered in place is only what the version's manifest lists, whoever
deletes it (the pruner or a migration)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

pytest_plugins = ["index_fixtures"]

from artifactfs import register_artifact, register_store, save_artifact  # noqa: E402
from artifactfs.cli.main import cli  # noqa: E402
from artifactfs.errors import ArtifactfsError  # noqa: E402
from link_swaps import as_attacker, attacker, require_root, root_only_secret  # noqa: E402


@pytest.fixture
def scratch():
    """A folder the second user owns, at a path it can reach (a shared
    scratch folder, a teammate's folder): it may plant anything in it."""
    user = attacker()
    base = Path(tempfile.mkdtemp(prefix="artifactfs-scratch-"))
    base.chmod(0o755)
    os.chown(base, user.pw_uid, user.pw_gid)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def attackers_folder(base: Path, name: str = "out") -> Path:
    """A sub-folder of ``scratch`` the second user made."""
    done = as_attacker("mkdir", str(base / name))
    assert done.returncode == 0, done.stderr
    return base / name


def plant_link(link: Path, target: Path) -> None:
    """The second user plants ``link -> target``."""
    done = as_attacker("ln", "-s", str(target), str(link))
    assert done.returncode == 0, done.stderr


# -- export: writes into the user's destination --------------------------------------------------


def test_export_never_writes_through_a_link_planted_in_the_destination(sqlite_home, tmp_path, scratch):
    """Root exports into a folder another user can write. That user plants
    links where the export will write (the partial file's name, a
    sub-folder): no byte and no mode bit of a file outside the destination
    changes, and the export either refuses naming the link or writes real files."""
    require_root()
    version = save_artifact({"weights": [1, 2, 3]}, "model")
    name = version.files[0].path
    secret = tmp_path / "root-only" / "shadow"
    secret_bytes = root_only_secret(secret, 64)
    outside = tmp_path / "root-only" / "elsewhere"
    outside.mkdir()
    dest = attackers_folder(scratch)
    plant_link(dest / f".{name}.partial", secret)
    result = CliRunner().invoke(cli, ["artifact", "export", f"model:{version.version}", str(dest)])
    assert secret.read_bytes() == secret_bytes, result.output
    assert (secret.stat().st_mode & 0o777) == 0o600, result.output
    assert not any(outside.iterdir())
    if result.exit_code == 0:
        assert not (dest / name).is_symlink() and (dest / name).read_bytes() == (Path(version.uri) / name).read_bytes()
    else:
        assert "symbolic link" in result.output, result.output


def test_export_never_follows_a_sub_folder_link_out_of_the_destination(sqlite_home, tmp_path, scratch):
    """A version with a sub-folder; the destination's sub-folder of that name
    is a link another user planted to a root-only folder: nothing is written there."""
    require_root()
    source = tmp_path / "src"
    (source / "sub").mkdir(parents=True)
    (source / "sub" / "part.bin").write_bytes(b"payload")
    version = register_artifact(source, "tree", copy=True)
    outside = tmp_path / "root-only" / "etc"
    outside.mkdir(parents=True)
    outside.chmod(0o700)
    dest = attackers_folder(scratch)
    plant_link(dest / "sub", outside)
    result = CliRunner().invoke(cli, ["artifact", "export", f"tree:{version.version}", str(dest)])
    assert list(outside.iterdir()) == [], result.output
    assert result.exit_code != 0 and "symbolic link" in result.output, result.output


def test_export_never_replaces_a_file_that_appears_meanwhile(sqlite_home, tmp_path, monkeypatch):
    """"Never overwrites an existing file" holds even when the file appears
    after the check (another writer, another export): the one put there stays."""
    version = save_artifact({"weights": [1, 2, 3]}, "model")
    name = version.files[0].path
    dest = tmp_path / "out"
    from artifactfs.api import export

    real_open = export.ArtifactVersion.open_store

    def open_store_then_race(self):
        (dest).mkdir(exist_ok=True)
        (dest / name).write_text("someone else's file")
        return real_open(self)

    monkeypatch.setattr(export.ArtifactVersion, "open_store", open_store_then_race)
    result = CliRunner().invoke(cli, ["artifact", "export", f"model:{version.version}", str(dest)])
    assert (dest / name).read_text() == "someone else's file"
    assert result.exit_code != 0 and "already exists" in result.output, result.output


# -- the mount's cache folder: cached payloads are their owner's alone -----------------------------


UUID = "0b6f1a3e-8c1d-4a7e-9f00-123456789abc"


def test_a_cache_folder_another_user_can_write_is_never_used(tmp_path, scratch):
    """``mount --cache-dir`` names a folder another user made (shared
    scratch): that user planted a link where a cached file's data goes, to a
    root-only file. The root-only file keeps every byte, and the cache
    refuses the folder, saying whose it is."""
    from artifactfs.mount.cache import DATA_SUFFIX, BlockCache, CacheKey

    secret = tmp_path / "root-only" / "shadow"
    secret_bytes = root_only_secret(secret, 4096)
    blocks = attackers_folder(scratch, "cache")
    key = CacheKey(UUID, "model.bin")
    stem = key.stem(blocks)
    assert as_attacker("mkdir", "-p", str(stem.parent)).returncode == 0
    plant_link(stem.with_suffix(DATA_SUFFIX), secret)
    try:
        cache = BlockCache(blocks, capacity=1 << 30, block_size=1024)
    except ArtifactfsError as exc:
        assert "another user" in str(exc) and str(blocks) in str(exc), exc
    else:
        try:
            cache.open(key, 100)
        except OSError:
            pass
        finally:
            cache.close()
    assert secret.read_bytes() == secret_bytes


def test_a_cache_folder_another_user_seeded_serves_none_of_its_blocks(tmp_path, scratch):
    """That user wrote a cached file and its block map vouching for it:
    the mount would serve its bytes as the payload's. The folder is refused
    (or no block of it is trusted)."""
    from artifactfs.mount.cache import DATA_SUFFIX, MAP_SUFFIX, BlockCache, CacheKey, FORMAT

    blocks = attackers_folder(scratch, "cache")
    key = CacheKey(UUID, "model.bin")
    stem = key.stem(blocks)
    data = stem.with_suffix(DATA_SUFFIX)
    assert as_attacker("mkdir", "-p", str(stem.parent)).returncode == 0
    assert as_attacker("sh", "-c", f"printf 'forged!!' > {data}").returncode == 0
    info = data.stat()
    header = json.dumps({"format": FORMAT, "path": key.path, "size": 8, "block": 1024,
                         "data": [info.st_dev, info.st_ino]})
    assert as_attacker("sh", "-c", f"printf '%s\\n\\001' '{header}' > {stem.with_suffix(MAP_SUFFIX)}").returncode == 0
    try:
        cache = BlockCache(blocks, capacity=1 << 30, block_size=1024)
    except ArtifactfsError as exc:
        assert "another user" in str(exc), exc
        return
    try:
        cached = cache.open(key, 8)
        assert not cached.has(0), "the mount would serve another user's bytes as the payload"
    finally:
        cache.close()


# -- a folder registered in place loses only what its manifest lists, whoever deletes it ----------


def test_migrate_delete_source_leaves_what_a_folder_registered_in_place_gained(afs_home, tmp_path):
    """A folder registered in place gets a file after its registration (the
    trainer's next log, a user's notes). ``migrate --delete-source`` moves
    the version and deletes the files its manifest lists, never the new one
    nor the folder holding it; a single file registered in place goes."""
    from artifactfs.api.migrate import migrate
    from artifactfs.index import reset_index_cache  # noqa: F401

    local = tmp_path / "shared-store"
    (local / "runs" / "r1").mkdir(parents=True)
    (local / "runs" / "r1" / "model.bin").write_bytes(b"weights")
    register_store("shared", "local", str(local))
    register_store("target", "local", str(tmp_path / "target"))
    version = register_artifact(local / "runs" / "r1", "run1")
    (local / "runs" / "r1" / "notes.txt").write_text("added after the registration")
    (local / "runs" / "single.ckpt").write_bytes(b"one file")
    single = register_artifact(local / "runs" / "single.ckpt", "single")
    report = migrate("target", from_store="shared", delete_source=True)
    assert sorted(report.moved) == sorted([f"run1:{version.version}", f"single:{single.version}"]), report
    assert (local / "runs" / "r1" / "notes.txt").read_text() == "added after the registration"
    assert not (local / "runs" / "r1" / "model.bin").exists()
    assert not (local / "runs" / "single.ckpt").exists()


# -- an index restored from a backup: what it lacks still protects -------------------------------


def sqlite_copy(source, target) -> None:
    """A consistent copy of a SQLite database (WAL included), as a backup tool makes."""
    import sqlite3

    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()


def restore(backup: Path) -> None:
    from artifactfs.index import reset_index_cache
    from artifactfs.settings import get_settings

    index_db = get_settings().data_dir / "index.db"
    reset_index_cache()
    for path in index_db.parent.glob("index.db*"):
        path.unlink()
    sqlite_copy(backup, index_db)
    reset_index_cache()


def snapshot(request, index_backend: str, tmp_path: Path):
    """A backup of the index now; returns what restores it (SQLite: the file
    copied back; PostgreSQL: the index URL pointed at a copy made with
    ``CREATE DATABASE ... TEMPLATE``)."""
    import uuid

    from artifactfs.api import stores as api_stores
    from artifactfs.index import reset_index_cache
    from artifactfs.settings import get_settings

    if index_backend != "postgres":
        sqlite_copy(get_settings().data_dir / "index.db", tmp_path / "backup.db")
        return lambda: restore(tmp_path / "backup.db")
    monkeypatch = request.getfixturevalue("monkeypatch")
    server = request.getfixturevalue("postgres_server")
    reset_index_cache()  # nobody may be connected to a template
    current = os.environ["ARTIFACTFS_INDEX_URL"].rsplit("/", 1)[1]
    url = server.create_database(f"t_{uuid.uuid4().hex[:16]}", template=current)

    def back() -> None:
        reset_index_cache()
        monkeypatch.setenv("ARTIFACTFS_INDEX_URL", url)
        reset_index_cache()
        api_stores.forget_opened(None)

    return back


def read_after_the_backup(version, back) -> None:
    """A pipeline's step reads ``version``, then the index is restored
    (``back``, from :func:`snapshot`) to before that run."""
    from artifactfs import Client, pipeline, step

    @step
    def read_it(data: dict) -> int:
        return data["n"]

    @pipeline
    def reader():
        read_it(Client().get_artifact_version(version.id))

    reader()
    back()


def test_a_keep_tag_added_after_the_backup_still_protects(afs_home, tmp_path, request, index_backend):
    """The index is restored from a copy taken before ``x:1`` was tagged
    keep (no payload was saved since, so no orphan tells). The manifest file
    beside the payload says keep: the pass condemns nothing the store's
    journal protects, and says the index is older than the store."""
    from artifactfs import Client
    from gc_helpers import backdate_all

    first = save_artifact({"n": 1}, "x")
    save_artifact({"n": 2}, "x")
    backdate_all()
    back = snapshot(request, index_backend, tmp_path)
    Client().update_artifact_version(first.id, add_tags=["keep"])
    back()
    result = CliRunner().invoke(cli, ["gc", "-y", "--grace", "1h"])
    assert "Traceback" not in result.output, result.output
    assert Path(first.uri).is_dir(), result.output
    assert "older than store 'default'" in result.output and "x:1" in result.output, result.output
    result = CliRunner().invoke(cli, ["fsck"])
    assert result.exit_code == 1 and "index-behind" in result.output, result.output
    result = CliRunner().invoke(cli, ["fsck", "--repair"])  # never "rewrite it from the index"
    result = CliRunner().invoke(cli, ["fsck", "--adopt"])
    assert result.exit_code == 0 and "gave x:1 back" in result.output, result.output
    assert Client().get_artifact_version(first.id).tags == ["keep"]
    assert CliRunner().invoke(cli, ["fsck"]).exit_code == 0


def test_a_link_made_after_the_backup_still_protects(afs_home, tmp_path, request, index_backend):
    """A step run read ``x:1`` after the copy the index is restored from:
    the pass leaves it (its manifest file names the run) and ``fsck --adopt``
    rebuilds the run and the link."""
    from gc_helpers import backdate_all

    first = save_artifact({"n": 1}, "x")
    save_artifact({"n": 2}, "x")
    backdate_all()
    back = snapshot(request, index_backend, tmp_path)
    read_after_the_backup(first, back)
    result = CliRunner().invoke(cli, ["gc", "-y", "--grace", "1h"])
    assert "Traceback" not in result.output, result.output
    assert Path(first.uri).is_dir(), result.output
    assert "older than store 'default'" in result.output and "link" in result.output, result.output
    result = CliRunner().invoke(cli, ["fsck", "--adopt"])
    assert result.exit_code == 0 and "gave x:1 back" in result.output, result.output
    after = CliRunner().invoke(cli, ["fsck"])
    assert after.exit_code == 0, after.output


def test_the_sweep_reads_a_manifest_file_the_plan_could_not(sqlite_home, tmp_path, monkeypatch):
    """The plan cannot read ``x:1``'s manifest file (its store failed for a
    moment): it is condemned as the index says, and the sweep, reading it
    right before deleting, keeps the payload its keep tag protects."""
    from artifactfs import Client
    from artifactfs.index import journal
    from gc_helpers import backdate_all, states

    first = save_artifact({"n": 1}, "x")
    save_artifact({"n": 2}, "x")
    backdate_all()
    back = snapshot(None, "sqlite", tmp_path)
    Client().update_artifact_version(first.id, add_tags=["keep"])
    back()
    real = journal.read_manifest_file
    calls = []

    def fails_once(store, folder):
        calls.append(folder)
        if len(calls) == 1:
            raise ConnectionError("the store did not answer")
        return real(store, folder)

    monkeypatch.setattr(journal, "read_manifest_file", fails_once)
    result = CliRunner().invoke(cli, ["gc", "-y", "--grace", "1h"])
    assert len(calls) == 2, result.output
    assert Path(first.uri).is_dir(), result.output
    assert states()[first.id] == "condemned" and "its payload is not deleted" in result.output, result.output


# -- quiet time: measured on the clock that stamps files, never this process's own ----------------


@pytest.mark.parametrize("jump", ["+2d", "-2d"])
def test_a_jumped_clock_never_makes_a_fresh_checkpoint_look_settled(sqlite_home, tmp_path, jump):
    """A raw checkpoint written a moment ago by a trainer that closes it
    between pieces: ``watch --once`` with this host's clock two days off
    (libfaketime) waits for it as the real clock would, and registers nothing."""
    import subprocess
    import sys

    if shutil.which("faketime") is None:
        pytest.skip("faketime is not installed (apt-get install faketime)")
    folder = tmp_path / "ckpt"
    folder.mkdir()
    with open(folder / "last.bin", "ab") as piece:  # the first piece; the trainer comes back later
        piece.write(os.urandom(4096))
    done = subprocess.run(["faketime", "-f", jump, sys.executable, "-c", "from artifactfs.cli.main import main; main()",
                           "watch", str(folder), "--name", "ckpt", "--pattern", "*.bin", "--copy", "--once",
                           "--settle", "120s"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 registered" in done.stdout and "still being written" in done.stdout + done.stderr, done.stdout


# -- orphans: decided from write intents read after the listing, never before ----------------------


def test_a_save_that_begins_while_the_pass_lists_is_never_an_orphan(afs_home, tmp_path, monkeypatch):
    """A save records its write intent and writes its payload between the
    pass's look at the intents and its listing of the store, its files
    carrying old modification times (a materializer that copies with
    ``shutil.copy2``/``copytree`` keeps its sources' times). The pass never
    takes that payload for an orphan."""
    import artifactfs
    from artifactfs.api.writing import WriteBatch
    from artifactfs.gc import orphans
    from gc_helpers import backdate_tree

    save_artifact({"n": 1}, "other")
    real = orphans.scan_layout
    batch = WriteBatch(artifactfs.get_store())
    begun = []

    def a_save_begins_first(*args, **kwargs):
        if not begun:
            payload, = batch.begin([("inflight", None)])  # step 1: the intent, then the folder
            folder = Path(payload.native)
            (folder / "weights.bin").write_bytes(b"w" * 1000)
            backdate_tree(folder, hours=72)
            begun.append(folder)
        return real(*args, **kwargs)

    monkeypatch.setattr(orphans, "scan_layout", a_save_begins_first)
    try:
        result = CliRunner().invoke(cli, ["gc", "-y", "--grace", "1h", "--orphan-grace", "1h"])
        assert "Traceback" not in result.output, result.output
        assert begun, "the pass never listed the store"
        assert (begun[0] / "weights.bin").is_file(), result.output
    finally:
        batch.__exit__(RuntimeError, RuntimeError("the test's save ends here"), None)


def test_prune_artifacts_keeps_what_a_step_read_after_the_backup(afs_home, tmp_path, request, index_backend):
    """``Client().prune_artifacts`` deletes versions no step run links; the
    restored index does not know the run that read ``x:1``, its manifest file
    does: ``x:1`` is not unused, and keeps its payload."""
    from artifactfs import Client

    first = save_artifact({"n": 1}, "x")
    back = snapshot(request, index_backend, tmp_path)
    read_after_the_backup(first, back)
    Client().prune_artifacts(delete_from_artifact_store=True)
    assert Path(first.uri).is_dir()
    assert Client().get_artifact_version(first.id).version == "1"


def test_run_prune_rewrites_the_manifest_files_of_what_its_runs_linked(sqlite_home):
    """``run prune`` deletes runs: the manifest files of the versions they
    wrote and read stop naming them (else each would look ahead of the
    index, and hold its version forever); ``fsck`` finds nothing."""
    import datetime as dt

    from sqlalchemy import update

    from artifactfs.index import get_index
    from artifactfs.index.models import PipelineRun, utcnow
    from gc_helpers import chain

    chain(n=1)
    chain(n=2)
    with get_index().write() as session:
        session.execute(update(PipelineRun).values(start_time=utcnow() - dt.timedelta(days=40)))
    result = CliRunner().invoke(cli, ["run", "prune", "--older-than", "30d", "-y"])
    assert result.exit_code == 0 and "Deleted 2 run(s)" in result.output, result.output
    after = CliRunner().invoke(cli, ["fsck"])
    assert after.exit_code == 0, after.output


def test_a_running_mount_follows_an_index_restored_under_it(sqlite_home, tmp_path):
    """The index is restored (in place, as SQLite's backup API does) under a
    running mount, and a new ``x:2`` is saved: its version id and name are
    those of the ``x:2`` the restore forgot, whose bytes the kernel cached.
    The mount never shows the forgotten bytes again: it stops, saying why."""
    from artifactfs.settings import get_settings
    from test_mount_helpers import mounted

    save_artifact({"v": 1}, "x")
    index_db = get_settings().data_dir / "index.db"
    sqlite_copy(index_db, tmp_path / "backup.db")
    save_artifact({"v": "forgotten"}, "x")
    with mounted(tmp_path / "mnt") as mount:
        shown = mount.path / "artifacts" / "x" / "2" / "data.json"
        assert json.loads(shown.read_text()) == {"v": "forgotten"}
        sqlite_copy(tmp_path / "backup.db", index_db)  # in place: the daemon's connection sees it
        again = save_artifact({"v": "new two"}, "x")
        assert again.version == "2"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and mount.proc.poll() is None:
            time.sleep(0.2)
        try:
            seen = json.loads(shown.read_text())
        except OSError:
            seen = None  # unmounted
        assert seen in (None, {"v": "new two"}), mount.log()
        assert "the index under this mount went back" in mount.log()
