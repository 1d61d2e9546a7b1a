"""Symlinks and permissions, tried as an attacker and a careless user would:
a link another user plants in a watched or registered folder is never
followed out of it (nor one swapped in between a check and the copy);
copies keep their source's mode; what artifactfs creates for itself is
private to its owner whatever the umask."""

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

pytest_plugins = ["index_fixtures"]

from artifactfs import Client, get_artifact_version, register_artifact, save_artifact  # noqa: E402
from artifactfs.cli.main import cli  # noqa: E402
from artifactfs.errors import ArtifactfsError, PathEscapeError  # noqa: E402
from artifactfs.faults import fault_action  # noqa: E402

SECRET = "root:$6$planted-secret-hash:19000:0:99999:7:::"
as_root = pytest.mark.skipif(os.geteuid() != 0 and not os.environ.get("CI"),
                             reason="plays an attacker against root: run as root")


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.fixture
def secret_file(tmp_path):
    """A file only root can read, like /etc/shadow."""
    folder = tmp_path / "root-only"
    folder.mkdir(mode=0o700)
    path = folder / "shadow"
    path.write_text(SECRET)
    path.chmod(0o600)
    return path


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def nothing_holds_the_secret(*roots: Path) -> None:
    for root in roots:
        for path in Path(root).rglob("*"):
            if path.is_file() and not path.is_symlink() and path.suffix not in (".db", ".db-wal", ".db-shm"):
                assert SECRET not in path.read_text(errors="replace"), f"{path} holds the secret"


def age(path: Path) -> None:
    past = time.time() - 60
    os.utime(path, (past, past), follow_symlinks=False)


# -- item 12: links ---------------------------------------------------------------------------------


@as_root
def test_watch_copy_as_root_never_follows_a_planted_link(sqlite_home, tmp_path, secret_file):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)  # everybody may write checkpoints here
    (shared / "epoch=1.ckpt").symlink_to(secret_file)  # planted by another user
    (shared / "epoch=2.ckpt").write_bytes(b"real checkpoint")
    for entry in shared.iterdir():
        age(entry)

    out = CliRunner().invoke(cli, ["watch", str(shared), "--name", "c", "--copy", "--settle", "0s", "--once"])
    assert out.exit_code == 1, out.output
    assert f"{shared / 'epoch=1.ckpt'} is a symlink to {secret_file}, outside the watched folder" in out.output
    assert "1 registered, 0 already registered, 1 failed" in out.output
    found = Client().list_artifact_versions(name="c")
    assert [v.metadata["epoch"] for v in found] == [2]
    nothing_holds_the_secret(sqlite_home)

    # register_artifact(copy=True) itself refuses, for a file and for a folder holding the link
    with pytest.raises(PathEscapeError, match="leads outside"):
        register_artifact(shared / "epoch=1.ckpt", "c", copy=True)
    folder = shared / "checkpoint-3"
    folder.mkdir()
    (folder / "model.bin").write_bytes(b"weights")
    (folder / "optimizer.pt").symlink_to(secret_file)
    with pytest.raises(ArtifactfsError, match="outside"):
        register_artifact(folder, "c", copy=True)
    nothing_holds_the_secret(sqlite_home)


@as_root
@pytest.mark.parametrize("swap", ["file", "folder"])
def test_copy_refuses_a_link_swapped_in_after_the_check(sqlite_home, tmp_path, secret_file, swap):
    """The attacker replaces a checked file (or the folder holding it) by a link
    between the check and the copy: the copy opens nothing outside the tree."""
    source = tmp_path / "shared" / "checkpoint-7"
    (source / "sub").mkdir(parents=True)
    (source / "sub" / "optimizer.pt").write_bytes(b"optimizer state")
    (source / "model.bin").write_bytes(b"weights")

    def attacker() -> None:  # runs before each file is opened: strikes once
        if (source / "sub").is_symlink() or (source / "sub" / "optimizer.pt").is_symlink():
            return
        if swap == "file":
            (source / "sub" / "optimizer.pt").unlink()
            (source / "sub" / "optimizer.pt").symlink_to(secret_file)
        else:
            (source / "sub" / "optimizer.pt").unlink()
            (source / "sub").rmdir()
            (source / "sub").symlink_to(secret_file.parent)
            (secret_file.parent / "optimizer.pt").symlink_to(secret_file)

    with fault_action("copy_into_open", attacker), pytest.raises(PathEscapeError, match="leads outside"):
        register_artifact(source, "c", copy=True)
    assert Client().list_artifact_versions(name="c") == []
    nothing_holds_the_secret(sqlite_home)


def test_register_copy_follows_links_that_stay_inside(sqlite_home, tmp_path):
    folder = tmp_path / "ckpts"
    (folder / "run").mkdir(parents=True)
    (folder / "run" / "epoch=3.ckpt").write_bytes(b"three")
    (folder / "latest.ckpt").symlink_to("run/epoch=3.ckpt")  # Lightning's save_last="link"
    version = register_artifact(folder / "latest.ckpt", "c", copy=True)
    assert [(f.path, f.size) for f in version.files] == [("latest.ckpt", 5)]
    version = register_artifact(folder, "d", copy=True)
    assert sorted(f.path for f in version.files) == ["latest.ckpt", "run/epoch=3.ckpt"]


def test_copy_refuses_special_files(sqlite_home, tmp_path):
    folder = tmp_path / "f"
    folder.mkdir()
    os.mkfifo(folder / "pipe.ckpt")  # would block a reader forever
    with pytest.raises(ArtifactfsError, match="not a regular file"):
        register_artifact(folder / "pipe.ckpt", "c", copy=True)


# -- item 13: permissions ----------------------------------------------------------------------------


def test_register_copy_keeps_modes(sqlite_home, tmp_path, umask_022):
    folder = tmp_path / "job"
    folder.mkdir()
    (folder / "secret.key").write_bytes(b"k")
    (folder / "secret.key").chmod(0o600)
    (folder / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (folder / "run.sh").chmod(0o755)
    (folder / "data.csv").write_text("a\n")
    (folder / "data.csv").chmod(0o640)
    out = CliRunner().invoke(cli, ["artifact", "register", str(folder), "--name", "job", "--copy"])
    assert out.exit_code == 0, out.output
    version = get_artifact_version("job")
    expected = {"secret.key": 0o600, "run.sh": 0o755, "data.csv": 0o640}
    assert {f.path: f.mode for f in version.files} == expected  # the manifest
    assert {name: mode(Path(version.uri) / name) for name in expected} == expected  # the copy
    assert subprocess.run([str(Path(version.uri) / "run.sh")], capture_output=True).stdout == b"hi\n"

    out = CliRunner().invoke(cli, ["artifact", "export", "job:1", str(tmp_path / "exported")])
    assert out.exit_code == 0, out.output
    assert {name: mode(tmp_path / "exported" / name) for name in expected} == expected  # exported as recorded

    single = register_artifact(folder / "secret.key", "key", copy=True)
    assert [f.mode for f in single.files] == [0o600] and mode(Path(single.uri) / "secret.key") == 0o600


def test_saved_payloads_record_their_real_mode(sqlite_home, tmp_path, umask_022):
    script = tmp_path / "train.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o750)
    path_version = save_artifact(script, "script")
    assert [f.mode for f in path_version.files] == [0o750]
    assert mode(Path(path_version.uri) / "train.sh") == 0o750
    value_version = save_artifact({"lr": 0.1}, "params")
    for entry in value_version.files:
        assert entry.mode == mode(Path(value_version.uri) / entry.path)


def test_default_home_is_private_under_umask_022(tmp_path, monkeypatch, umask_022):
    from artifactfs.index import reset_index_cache
    from artifactfs.mount import daemon
    from artifactfs.settings import get_settings

    home = tmp_path / "fresh" / "home"  # nothing exists yet
    monkeypatch.setenv("ARTIFACTFS_HOME", str(home))
    monkeypatch.delenv("ARTIFACTFS_INDEX_URL", raising=False)
    reset_index_cache()
    try:
        out = CliRunner().invoke(cli, ["init"])
        assert out.exit_code == 0, out.output
        save_artifact([1, 2, 3], "numbers")
        assert CliRunner().invoke(cli, ["store", "set-active", "default"]).exit_code == 0  # writes the config
        settings = get_settings()
        for folder in (home, settings.config_dir, settings.data_dir, settings.default_store_root):
            assert mode(folder) == 0o700, folder
        for db_file in settings.data_dir.glob("index.db*"):
            assert mode(db_file) == 0o600, db_file
        assert (settings.data_dir / "index.db-wal").exists()

        mountpoint = tmp_path / "mnt"
        log_path = daemon.log_path_for(mountpoint)
        proc = daemon.spawn([sys.executable, "-c", "print('mount log line')"], mountpoint, log_path)
        assert proc.wait(30) == 0
        assert mode(log_path) == 0o600 and mode(log_path.parent) == 0o700
        assert "mount log line" in log_path.read_text()
    finally:
        reset_index_cache()

    # XDG folders created by artifactfs are 0700 too (the XDG specification asks it)
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME"):
        monkeypatch.setenv(name, str(tmp_path / "xdg" / name.lower()))
    monkeypatch.delenv("ARTIFACTFS_HOME")
    reset_index_cache()
    try:
        assert CliRunner().invoke(cli, ["init"]).exit_code == 0
        assert CliRunner().invoke(cli, ["store", "set-active", "default"]).exit_code == 0
        settings = get_settings()
        for folder in (settings.config_dir, settings.data_dir, settings.default_store_root):
            assert mode(folder) == 0o700 and mode(folder.parent) == 0o700, folder
        assert mode(settings.data_dir / "index.db") == 0o600
    finally:
        reset_index_cache()


def test_register_in_place_refuses_a_link_out_of_its_folder(sqlite_home, tmp_path):
    from artifactfs import register_store

    root = tmp_path / "store"
    (root / "shared").mkdir(parents=True)
    (root / "private").mkdir()
    (root / "private" / "notes.txt").write_text("mine")
    (root / "shared" / "epoch=1.ckpt").symlink_to(root / "private" / "notes.txt")
    register_store("s", "local", str(root))
    with pytest.raises(PathEscapeError, match="is a symbolic link, and no link under a store root is ever followed"):
        register_artifact(root / "shared" / "epoch=1.ckpt", "c")
