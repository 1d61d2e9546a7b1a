"""The mount through a real FUSE mount, for every store flavor against the
real servers: the tree equals the index, bytes equal the source, common
readers work, writes are refused, the tree follows the index, a failing
store gives EIO in bounded time, and unmounting is clean."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest_plugins = ["store_fixtures"]

import servers  # noqa: E402
from artifactfs import pipeline, step  # noqa: E402
from artifactfs.mount.daemon import daemon_pid  # noqa: E402
from test_mount_helpers import (  # noqa: E402
    Mount,
    condemn,
    is_mounted,
    make_run,
    mounted,
    file_digest,
    skip_without_fuse,
    tree_of,
    wait_for,
)

pytestmark = pytest.mark.fuse

MiB = 1 << 20


def expected_tree(versions: list, runs: dict[str, dict[str, dict]]) -> dict[str, object]:
    """What the mount must show, computed from the index through the API."""
    tree: dict[str, object] = {"artifacts": "d", "pipelines": "d"}
    by_name: dict[str, list] = {}
    for v in versions:
        by_name.setdefault(v.name, []).append(v)

    def payload(prefix: str, v) -> None:
        tree[prefix] = "d"
        for f in v.files:
            parts = f.path.split("/")
            for depth in range(1, len(parts)):
                tree[f"{prefix}/{'/'.join(parts[:depth])}"] = "d"
            tree[f"{prefix}/{f.path}"] = f.size

    for name, found in by_name.items():
        tree[f"artifacts/{name}"] = "d"
        tree[f"artifacts/{name}/latest"] = "l"
        for v in found:
            payload(f"artifacts/{name}/{v.version}", v)
            tree[f"artifacts/{name}/{v.version}.json"] = "json"
    for run_path, steps in runs.items():
        parts = run_path.split("/")
        tree[f"pipelines/{parts[0]}"] = "d"
        tree[f"pipelines/{run_path}"] = "d"
        for step_name, outputs in steps.items():
            tree[f"pipelines/{run_path}/{step_name}"] = "d"
            for output, v in outputs.items():
                payload(f"pipelines/{run_path}/{step_name}/{output}", v)
                tree[f"pipelines/{run_path}/{step_name}/{output}.json"] = "json"
    return tree


def make_content(work: Path) -> dict:
    """Artifacts of several kinds in the active store, and a pipeline run."""
    from artifactfs import register_artifact, save_artifact

    rng = np.random.default_rng(7)
    matrix = rng.normal(size=(200, 50))
    frame = pd.DataFrame({"a": np.arange(5000), "b": [f"row {i}" for i in range(5000)], "c": rng.random(5000)})
    m = save_artifact(matrix, "matrix")
    t = save_artifact(frame, "table")
    source = work / "ckpt-src"
    (source / "optim" / "deep").mkdir(parents=True)
    (source / "model.bin").write_bytes(rng.bytes(3 * MiB + 123))
    (source / "optim" / "state.bin").write_bytes(rng.bytes(MiB + 7))
    (source / "optim" / "deep" / "notes.txt").write_text("hello\n")
    (source / "empty.txt").write_bytes(b"")
    members = {"a.txt": b"alpha\n" * 100, "sub/b.bin": rng.bytes(50_000)}
    with tarfile.open(source / "data.tar", "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    c = register_artifact(source, "ckpt", copy=True)
    make_run("train", "train-1", {"fit": {"model": c, "<inputs>": {"data": m}}, "evaluate": {"metrics": t}})
    return {"matrix": (m, matrix), "table": (t, frame), "ckpt": (c, source), "members": members,
            "runs": {"train/train-1": {"fit": {"model": c}, "evaluate": {"metrics": t}}}}


@pytest.fixture
def content(registered_store, tmp_path):
    return make_content(tmp_path)


@dataclass
class Shared:
    """One mount per flavor shared by the tests that only read it."""

    mount: Mount
    flavor: str
    store: object
    content: dict
    big: bytes  # a 40 MiB payload read by many readers at once
    versions: list  # every version the mount shows


@pytest.fixture(scope="module", params=["local", "s3", "gcs", "azure"])
def shared(request, tmp_path_factory):
    """A home of its own with the content above, a large file and (local)
    files of several modes registered in place, mounted once with
    --allow-other at a path every user may reach."""
    from artifactfs import register_artifact
    from artifactfs.api import register_store, set_active_store
    from store_fixtures import _bucket

    flavor = request.param
    work = tmp_path_factory.mktemp(f"shared-{flavor}")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ARTIFACTFS_HOME", str(work / "home"))
        patch.delenv("ARTIFACTFS_INDEX_URL", raising=False)
        patch.delenv("ARTIFACTFS_STORE", raising=False)
        if flavor == "local":
            (work / "store").mkdir()
            root, options = str(work / "store"), {}
        else:
            root, options = _bucket(request, flavor)
        store = register_store(f"shared-{flavor}", flavor, root, dict(options))
        set_active_store(store.name)
        content = make_content(work)
        big = np.random.default_rng(1).bytes(40 * MiB + 11)
        (work / "big").mkdir()
        (work / "big" / "big.bin").write_bytes(big)
        versions = [content[k][0] for k in ("matrix", "table", "ckpt")]
        versions.append(register_artifact(work / "big", "big", copy=True))
        if flavor == "local":
            versions.append(_modes_in_place(Path(root)))
        public = Path(tempfile.mkdtemp(prefix="artifactfs-shared-"))  # pytest's folders are private to root
        public.chmod(0o755)
        try:
            with mounted(public / "mnt", "--allow-other", cache_dir=work / "cache",
                         log_path=work / "mount.log") as mount:
                yield Shared(mount, flavor, store, content, big, versions)
        finally:
            shutil.rmtree(public, ignore_errors=True)


def _modes_in_place(root: Path):
    """A folder registered in place whose files have their own modes."""
    from artifactfs import register_artifact

    folder = root / "modes"
    folder.mkdir()
    for name, mode, data in (("secret.txt", 0o600, b"root only\n"), ("run.sh", 0o755, b"#!/bin/sh\necho ran\n"),
                             ("public.txt", 0o644, b"anyone\n")):
        (folder / name).write_bytes(data)
        (folder / name).chmod(mode)
    return register_artifact(folder, "modes")


def test_tree_bytes_and_readers(shared, tmp_path):
    """ls -R/find equal the index; stat and du equal the manifest; cp -r out
    equals the source bytes; numpy, pandas and tarfile read through the mount;
    random access; xattrs and the JSON document."""
    content = shared.content
    (_, matrix), (t, frame), (c, source) = content["matrix"], content["table"], content["ckpt"]
    mount = shared.mount
    root = mount.path
    shown = tree_of(root)
    expected = expected_tree(shared.versions, content["runs"])
    assert set(shown) == set(expected)
    for path, kind in expected.items():
        if isinstance(kind, int):
            assert shown[path] == kind, path
    found = subprocess.run(["find", "."], cwd=root, capture_output=True, text=True, timeout=60, check=True)
    assert {p[2:] for p in found.stdout.split("\n") if p not in ("", ".")} == set(expected)
    listed = subprocess.run(["ls", "-R", "artifacts/ckpt/1"], cwd=root, capture_output=True, text=True,
                            timeout=60, check=True)
    assert "model.bin" in listed.stdout and "notes.txt" in listed.stdout
    # Sizes and du from the manifest.
    for f in c.files:
        assert os.stat(root / "artifacts/ckpt/1" / f.path).st_size == f.size
    du = subprocess.run(["du", "-sb", "artifacts/ckpt/1"], cwd=root, capture_output=True, text=True,
                        timeout=60, check=True)
    assert int(du.stdout.split()[0]) == c.size
    du_blocks = subprocess.run(["du", "-sk", "--apparent-size", "pipelines"], cwd=root, capture_output=True,
                               text=True, timeout=60, check=True)
    assert int(du_blocks.stdout.split()[0]) >= (c.size + t.size) // 1024
    # cp -r out of the mount: bytes equal the manifest hashes and the source.
    out = tmp_path / "copied"
    subprocess.run(["cp", "-r", str(root / "artifacts/ckpt/1"), str(out)], check=True, timeout=120)
    for f in c.files:
        assert file_digest(out / f.path) == f.digest, f.path
        assert (out / f.path).read_bytes() == (source / f.path).read_bytes()
    subprocess.run(["cp", "-r", str(root / "pipelines/train/train-1/fit/model"), str(tmp_path / "via-run")],
                   check=True, timeout=120)
    assert file_digest(tmp_path / "via-run/model.bin") == file_digest(source / "model.bin")
    # Third-party readers.
    np.testing.assert_array_equal(np.load(root / "artifacts/matrix/1/array.npy"), matrix)
    pd.testing.assert_frame_equal(pd.read_parquet(root / "artifacts/table/latest/data.parquet"), frame)
    pd.testing.assert_frame_equal(
        pd.read_parquet(root / "pipelines/train/train-1/evaluate/metrics/data.parquet", columns=["c"]),
        frame[["c"]])
    with tarfile.open(root / "artifacts/ckpt/1/data.tar") as tar:
        assert sorted(tar.getnames()) == sorted(content["members"])
        for name, data in content["members"].items():
            assert tar.extractfile(name).read() == data
    # Random access.
    original = (source / "model.bin").read_bytes()
    rng = random.Random(3)
    with open(root / "artifacts/ckpt/1/model.bin", "rb", buffering=0) as f:
        for _ in range(60):
            offset = rng.randrange(len(original))
            length = rng.choice([1, 100, 4096, 70_000, MiB + 5])
            f.seek(offset)
            assert f.read(length) == original[offset:offset + length]
        f.seek(len(original) - 10)
        assert f.read(100) == original[-10:]
        assert f.read(100) == b""
    assert (root / "artifacts/ckpt/1/empty.txt").read_bytes() == b""
    # latest, xattrs and the JSON document beside the folder.
    assert os.readlink(root / "artifacts/ckpt/latest") == "1"
    attrs = {name: os.getxattr(root / "artifacts/ckpt/1", name).decode()
             for name in os.listxattr(root / "artifacts/ckpt/1")}
    assert attrs["user.artifactfs.id"] == c.id and attrs["user.artifactfs.store"] == shared.store.name
    assert attrs["user.artifactfs.uri"] == c.uri and attrs["user.artifactfs.content_hash"] == c.content_hash
    assert attrs["user.artifactfs.producer.step"] == "fit"
    file_attr = os.getxattr(root / "pipelines/train/train-1/fit/model/optim/state.bin", "user.artifactfs.digest")
    assert file_attr.decode() == next(f.digest for f in c.files if f.path == "optim/state.bin")
    for name, code in (("user.artifactfs.nope", errno.ENODATA), ("user.other", errno.ENODATA),
                       ("security.selinux", errno.EOPNOTSUPP), ("system.posix_acl_access", errno.EOPNOTSUPP)):
        with pytest.raises(OSError) as missing:
            os.getxattr(root / "artifacts/ckpt/1", name)
        assert missing.value.errno == code, name
    doc = json.loads((root / "artifacts/ckpt/1.json").read_text())
    assert doc["id"] == c.id and doc["producer"]["run"] == "train-1"
    assert doc["producer"]["inputs"][0]["artifact"] == "matrix"
    assert json.loads((root / "artifacts/matrix/1.json").read_text())["consumers"][0]["step"] == "fit"
    assert os.stat(root / "artifacts/ckpt/1.json").st_size == len((root / "artifacts/ckpt/1.json").read_bytes())
    assert "Traceback" not in mount.log()


def test_concurrent_readers_of_one_large_file(shared):
    """Eight readers of one 40 MiB file, starting at different places, all
    get the right bytes."""
    data = shared.big
    expected = hashlib.sha256(data).hexdigest()
    errors: list = []
    results: dict[int, str] = {}

    def reader(i: int) -> None:
        try:
            digest = hashlib.sha256()
            start = (len(data) // 8) * i
            chunk = [65536, 131072, MiB, 3 * MiB][i % 4]
            with open(shared.mount.path / "artifacts/big/1/big.bin", "rb", buffering=0) as f:
                pieces = {}
                for offset in list(range(start, len(data), chunk)) + list(range(0, start, chunk)):
                    f.seek(offset)
                    pieces[offset] = f.read(min(chunk, (start if offset < start else len(data)) - offset))
            for offset in sorted(pieces):
                digest.update(pieces[offset])
            results[i] = digest.hexdigest()
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    assert results == {i: expected for i in range(8)}


def test_kernel_keeps_pages_and_sends_no_flush(shared):
    """A version file's pages stay in the kernel: reading it again, through
    a new open, sends the daemon no read request. Closing a file sends no
    flush after the first (answered ENOSYS: nothing to flush on a read-only
    mount), so an open and close costs the daemon an open and a release."""
    from artifactfs.mount.daemon import request_counts

    path = shared.mount.path / "artifacts/big/1/big.bin"
    tries = []
    for _ in range(3):  # another process dropping the machine's page cache meanwhile costs a try
        assert path.read_bytes() == shared.big
        before = request_counts(shared.mount.path)
        for _ in range(3):
            assert path.read_bytes() == shared.big
        after = request_counts(shared.mount.path)
        tries.append({op: after.get(op, 0) - before.get(op, 0) for op in ("read", "open", "flush")})
        if tries[-1]["read"] == 0:
            break
    assert tries[-1]["read"] == 0, tries
    assert tries[-1]["open"] == 3 and tries[-1]["flush"] <= 1, tries


@pytest.mark.parametrize("shared", ["local"], indirect=True)
def test_modes_owner_and_allow_other(shared):
    """Each file shows the mode its manifest records and belongs to the
    mounting user: a 0600 file stays 0600 (even with --allow-other, another
    user cannot read it), a 0755 script runs from the mount."""
    folder = shared.mount.path / "artifacts/modes/1"
    shown = subprocess.run(["stat", "-c", "%n %a %u %g", "secret.txt", "run.sh", "public.txt"], cwd=folder,
                           capture_output=True, text=True, check=True, timeout=30).stdout.split("\n")
    assert shown[:3] == [f"secret.txt 600 {os.getuid()} {os.getgid()}", f"run.sh 755 {os.getuid()} {os.getgid()}",
                         f"public.txt 644 {os.getuid()} {os.getgid()}"]
    assert subprocess.run([str(folder / "run.sh")], capture_output=True, text=True, timeout=30).stdout == "ran\n"
    if os.getuid() != 0:
        pytest.skip("reading as another user needs root")
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "cat"]
    public = subprocess.run([*nobody, str(folder / "public.txt")], capture_output=True, text=True, timeout=30)
    assert public.returncode == 0 and public.stdout == "anyone\n", public.stderr
    secret = subprocess.run([*nobody, str(folder / "secret.txt")], capture_output=True, text=True, timeout=30)
    assert secret.returncode != 0 and "Permission denied" in secret.stderr


@pytest.mark.parametrize("shared", ["local"], indirect=True)
def test_another_user_copies_out_and_deletes_the_copy(shared):
    """The README's `cp -rL .../latest ./restored`, as a second Unix user on
    an --allow-other mount: folders show 0755, so the copy's folders are the
    copier's to write and `rm -rf restored` works."""
    from unix_users import second_user

    user = second_user()
    latest = shared.mount.path / "artifacts/ckpt/latest"
    work = user.folder()
    try:
        copied = user.run("cp", "-rL", str(latest), "restored", cwd=work)
        assert copied.returncode == 0, copied.stderr
        assert (work / "restored/optim/deep/notes.txt").read_bytes() == b"hello\n"
        removed = user.run("rm", "-rf", "restored", cwd=work)
        assert removed.returncode == 0 and not (work / "restored").exists(), removed.stderr
        assert stat.S_IMODE(os.stat(latest).st_mode) == 0o755
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.mark.parametrize("shared", ["local"], indirect=True)
def test_statfs_open_append_and_foreign_xattrs(shared):
    """df shows the bytes and files the index holds and the free space under
    the local store; open(O_RDONLY|O_APPEND)
    reads as on a read-only ext4; getfattr finds our names only."""
    from artifactfs.index import get_index
    from artifactfs.index.tree import live_usage

    root = shared.mount.path
    with get_index().read() as session:  # the shared home is this module's environment
        size, files = live_usage(session)
    assert size == sum(v.size for v in shared.versions) and files == sum(len(v.files) for v in shared.versions)
    df = subprocess.run(["df", "-B1", "--output=size,used,avail,itotal,iused", str(root)], capture_output=True,
                        text=True, check=True, timeout=30).stdout.split("\n")[1].split()
    total, used, avail, itotal, iused = (int(x) for x in df)
    assert (used, itotal, iused) == (-(-size // 4096) * 4096, files, files)
    # Available: the free space of the disk under the local store (not "100% used, 0 available").
    store_free = os.statvfs(shared.store.path).f_bavail * os.statvfs(shared.store.path).f_frsize
    assert avail > 0 and abs(avail - store_free) < 256 * MiB and total == used + avail
    fd = os.open(root / "artifacts/ckpt/1/optim/deep/notes.txt", os.O_RDONLY | os.O_APPEND)
    try:
        assert os.read(fd, 100) == b"hello\n"
    finally:
        os.close(fd)
    dumped = subprocess.run(["getfattr", "-d", str(root / "artifacts/ckpt/1")], capture_output=True, text=True,
                            timeout=30)
    assert "user.artifactfs.id=" in dumped.stdout
    foreign = subprocess.run(["getfattr", "-n", "user.other", str(root / "artifacts/ckpt/1")],
                             capture_output=True, text=True, timeout=30)
    assert foreign.returncode != 0 and "No such attribute" in foreign.stderr
    unsupported = subprocess.run(["getfattr", "-n", "security.selinux", str(root / "artifacts/ckpt/1")],
                                 capture_output=True, text=True, timeout=30)
    assert unsupported.returncode != 0 and "Operation not supported" in unsupported.stderr
    # ls -l asks for the security label and ACLs of the first entry only, then knows the mount has none.
    if shutil.which("strace"):
        traced = subprocess.run(["strace", "-e", "trace=getxattr,lgetxattr", "ls", "-la", str(root / "artifacts")],
                                capture_output=True, text=True, timeout=60)
        asked = [line for line in traced.stderr.splitlines() if "xattr(" in line]
        assert traced.returncode == 0 and 0 < len(asked) <= 3, traced.stderr


@pytest.mark.parametrize("shared", ["local"], indirect=True)
def test_writes_fail_with_erofs(shared):
    root = shared.mount.path
    version = root / "artifacts/ckpt/1"
    attempts = {
        "open for writing": lambda: open(version / "model.bin", "r+b"),
        "append": lambda: open(version / "model.bin", "ab"),
        "truncate": lambda: os.truncate(version / "model.bin", 0),
        "create": lambda: open(version / "new.txt", "wb"),
        "create at top": lambda: open(root / "artifacts/new.txt", "wb"),
        "mkdir": lambda: os.mkdir(root / "artifacts/newdir"),
        "rmdir": lambda: os.rmdir(version / "optim/deep"),
        "unlink": lambda: os.unlink(version / "model.bin"),
        "rename": lambda: os.rename(version / "model.bin", version / "moved.bin"),
        "chmod": lambda: os.chmod(version / "model.bin", 0o777),
        "chown": lambda: os.chown(version / "model.bin", 1, 1),
        "utime": lambda: os.utime(version / "model.bin", (1, 1)),
        "symlink": lambda: os.symlink("x", version / "link"),
        "link": lambda: os.link(version / "model.bin", version / "hard"),
        "setxattr": lambda: os.setxattr(version, "user.x", b"1"),
        "removexattr": lambda: os.removexattr(version, "user.artifactfs.id"),
    }
    for what, attempt in attempts.items():
        with pytest.raises(OSError) as refused:
            attempt()
        assert refused.value.errno == errno.EROFS, what
    with pytest.raises(OSError) as missing:
        os.stat(root / "artifacts/nope")
    assert missing.value.errno == errno.ENOENT
    with pytest.raises(OSError) as missing:
        os.stat(version / "nope")
    assert missing.value.errno == errno.ENOENT
    assert (version / "optim/deep/notes.txt").read_text() == "hello\n"  # nothing changed


@pytest.mark.parametrize("store_flavor", ["local"])
def test_local_payloads_registered_in_place(registered_store, tmp_path):
    """Payloads adopted in place are read with pread (their owner may rewrite
    them); one whose size no longer matches its manifest gives EIO."""
    from artifactfs import register_artifact

    root = Path(registered_store.path)
    (root / "runs" / "exp1").mkdir(parents=True)
    data = np.random.default_rng(5).bytes(2 * MiB + 3)
    (root / "runs" / "exp1" / "last.ckpt").write_bytes(data)
    (root / "runs" / "exp1" / "log.txt").write_text("epoch 1\n")
    (root / "runs" / "notes.txt").write_text("single file\n")
    folder = register_artifact(root / "runs" / "exp1", "run-folder")
    single = register_artifact(root / "runs" / "notes.txt", "run-notes")
    assert folder.uri == str(root / "runs" / "exp1")
    with mounted(tmp_path / "mnt") as mount:
        assert (mount.path / "artifacts/run-folder/1/last.ckpt").read_bytes() == data
        assert (mount.path / "artifacts/run-folder/1/log.txt").read_text() == "epoch 1\n"
        assert (mount.path / "artifacts/run-notes/1/notes.txt").read_text() == "single file\n"
        (root / "runs" / "exp1" / "last.ckpt").write_bytes(b"rewritten by its owner")
        with pytest.raises(OSError) as changed:
            (mount.path / "artifacts/run-folder/1/last.ckpt").open("rb").read(10)
        assert changed.value.errno == errno.EIO
        assert "manifest says" in mount.log()
        assert single.file_uri("notes.txt") == str(root / "runs" / "notes.txt")


@pytest.mark.parametrize("store_flavor", ["local"])
def test_live_refresh(content, tmp_path):
    """New versions and runs appear within the refresh interval, latest moves,
    condemned versions vanish even where the kernel cached them for long."""
    from artifactfs import save_artifact

    m, _ = content["matrix"]
    c, _ = content["ckpt"]
    refresh = 0.3
    with mounted(tmp_path / "mnt", refresh=f"{refresh}s") as mount:
        root = mount.path
        artifact = root / "artifacts/matrix"
        assert sorted(os.listdir(artifact)) == ["1", "1.json", "latest"]
        assert not (artifact / "2").exists()  # a negative entry the kernel may cache briefly
        held_dir = os.open(artifact, os.O_RDONLY | os.O_DIRECTORY)  # a folder kept open, read again below
        assert sorted(os.listdir(held_dir)) == ["1", "1.json", "latest"]
        v2 = save_artifact(np.ones(3), "matrix")
        began = time.monotonic()
        wait_for(lambda: (artifact / "2").is_dir(), timeout=5)
        appeared = time.monotonic() - began
        assert appeared <= refresh * 2 + 1.0, appeared
        assert sorted(os.listdir(artifact)) == ["1", "1.json", "2", "2.json", "latest"]
        # listdir(fd) reads the open folder from its offset 0 again (glibc rewinddir): a fresh listing.
        assert sorted(os.listdir(held_dir)) == ["1", "1.json", "2", "2.json", "latest"]
        os.close(held_dir)
        wait_for(lambda: os.readlink(artifact / "latest") == "2", timeout=5)
        np.testing.assert_array_equal(np.load(artifact / "latest/array.npy"), np.ones(3))
        save_artifact([1], "brand-new")
        wait_for(lambda: (root / "artifacts/brand-new/1/data.json").exists(), timeout=5)
        make_run("train", "train-2", {"fit": {"model": c}})
        wait_for(lambda: (root / "pipelines/train/train-2/fit/model/model.bin").exists(), timeout=5)
        # Condemned: gone although the kernel cached these names for a day.
        held = open(root / "artifacts/ckpt/1/model.bin", "rb")
        os.stat(root / "artifacts/ckpt/1/optim/state.bin")
        os.stat(root / "pipelines/train/train-1/fit/model/model.bin")
        condemn(c)
        condemn(v2)
        wait_for(lambda: not (root / "artifacts/ckpt").exists(), timeout=5)
        wait_for(lambda: not (root / "artifacts/ckpt/1/optim/state.bin").exists(), timeout=5)
        wait_for(lambda: not (root / "pipelines/train/train-1/fit/model").exists(), timeout=5)
        wait_for(lambda: not (root / "artifacts/matrix/2").exists(), timeout=5)
        wait_for(lambda: os.readlink(artifact / "latest") == "1", timeout=5)
        assert sorted(os.listdir(root / "pipelines/train/train-1/fit")) == []
        # An open handle keeps reading what it opened (the payload is still there).
        assert len(held.read()) == 3 * MiB + 123
        held.close()


def _store_on(server, name: str, home_bucket: str = "mountfail"):
    from artifactfs.api import register_store, set_active_store

    servers.s3_bucket(server, home_bucket)
    store = register_store(name, "s3", f"s3://{home_bucket}/root", dict(server.options))
    set_active_store(store.name)
    return store


def _one_file_on(server, store: str, tmp_path: Path, data: bytes, name: str = "big.bin"):
    """A version of artifact ``big`` holding one file of ``data``, copied to a store ``store`` on ``server``."""
    from artifactfs import register_artifact

    _store_on(server, store)
    source = tmp_path / "payload"
    source.mkdir()
    (source / name).write_bytes(data)
    return register_artifact(source, "big", copy=True)


@pytest.fixture
def dedicated_moto(artifactfs_home):
    skip_without_fuse()
    try:
        server = servers.start_moto()
    except servers.MissingPrerequisite as exc:
        pytest.skip(str(exc))
    try:
        yield server
    finally:
        if server.running:
            try:
                os.kill(server.pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        server.stop()


def _read_at(path: Path, offset: int, size: int) -> bytes:
    with open(path, "rb", buffering=0) as f:
        f.seek(offset)
        return f.read(size)


def test_failing_store_gives_eio_then_recovers(dedicated_moto, tmp_path):
    """A store that hangs or is killed: EIO within the timeout, one log line
    naming store and object (no secret) per outage, other stores still
    served, and the first read once the store answers again works."""
    from artifactfs import register_artifact, save_artifact

    local = save_artifact({"still": "here"}, "local-one")  # the default local store
    _store_on(dedicated_moto, "flaky")
    source = tmp_path / "payload"
    source.mkdir()
    data = np.random.default_rng(2).bytes(12 * MiB)
    (source / "blob.bin").write_bytes(data)
    register_artifact(source, "remote", copy=True)
    timeout = 3.0
    with mounted(tmp_path / "mnt", timeout=f"{timeout:g}s") as mount:
        blob = mount.path / "artifacts/remote/1/blob.bin"
        assert _read_at(blob, 0, 1000) == data[:1000]  # cached from now on
        os.kill(dedicated_moto.pid, signal.SIGSTOP)  # hangs: connections accepted, never answered
        try:
            began = time.monotonic()
            with pytest.raises(OSError) as failed:
                _read_at(blob, 9 * MiB, 4096)
            took = time.monotonic() - began
            assert failed.value.errno == errno.EIO
            assert timeout - 0.5 < took < timeout + 1.5, took  # --timeout, not twice it
            # Other files and the tree keep working meanwhile.
            assert json.loads((mount.path / "artifacts/local-one/1/data.json").read_text()) == {"still": "here"}
            assert _read_at(blob, 0, 1000) == data[:1000]
            assert os.listdir(mount.path / "artifacts/remote/1") == ["blob.bin"]
        finally:
            time.sleep(0.6)  # a failed block answers EIO at once for 0.5 s only (the kernel asks again at once)
            os.kill(dedicated_moto.pid, signal.SIGCONT)
        assert _read_at(blob, 9 * MiB, 4096) == data[9 * MiB:9 * MiB + 4096]
        dedicated_moto.kill()  # refused connections now
        began = time.monotonic()
        with pytest.raises(OSError) as failed:
            _read_at(blob, 5 * MiB, 4096)
        assert failed.value.errno == errno.EIO
        assert time.monotonic() - began < timeout + 1.5
        log = mount.log()
        lines = [line for line in log.splitlines() if "store flaky: reading" in line]
        assert len(lines) == 2 and all("blob.bin" in line for line in lines), lines  # one per outage
        assert log.count("store flaky is back") == 1, log
        assert "testing" not in log  # moto's key and secret are never logged
        assert local.id  # the local store was served throughout


def test_store_back_after_restart(dedicated_moto, tmp_path):
    """A store server stopped and started again (its objects put back): the
    first read after it is back works, with no wait; while it is down every
    read gives EIO, and the log has one line per object per outage and one
    line each time the store is back."""
    import s3fs
    from artifactfs import register_artifact

    _store_on(dedicated_moto, "flaky")
    rng = np.random.default_rng(5)
    source = tmp_path / "payload"
    source.mkdir()
    data = {name: rng.bytes(12 * MiB) for name in ("a.bin", "b.bin")}
    for name, payload in data.items():
        (source / name).write_bytes(payload)
    version = register_artifact(source, "remote", copy=True)

    def restart() -> None:
        """The server back on its port, with the bucket and objects it lost (moto keeps them in memory)."""
        dedicated_moto.restart()
        servers.s3_bucket(dedicated_moto, "mountfail")
        fs = s3fs.S3FileSystem(skip_instance_cache=True, **dedicated_moto.options)
        for name, payload in data.items():
            fs.pipe_file(version.file_uri(name), payload)

    def eio(fd: int, offset: int) -> None:
        with pytest.raises(OSError) as failed:
            os.pread(fd, 4096, offset)
        assert failed.value.errno == errno.EIO

    with mounted(tmp_path / "mnt", timeout="20s") as mount:  # longer than the outage: no failure may last that long
        # Held open throughout, as a long-running reader does (a failure is remembered per open file).
        a, b = (os.open(mount.path / "artifacts/remote/1" / name, os.O_RDONLY) for name in ("a.bin", "b.bin"))
        try:
            assert os.pread(a, 1000, 0) == data["a.bin"][:1000]
            dedicated_moto.kill()  # outage 1: both objects fail, each read again
            for fd, offset in ((a, 5 * MiB), (a, 5 * MiB), (b, 0), (a, 9 * MiB), (b, 7 * MiB)):
                eio(fd, offset)
            restart()
            assert os.pread(a, 4096, 9 * MiB) == data["a.bin"][9 * MiB:9 * MiB + 4096]  # the first read works
            assert os.pread(b, 4096, 7 * MiB) == data["b.bin"][7 * MiB:7 * MiB + 4096]
            dedicated_moto.kill()  # outage 2: b fails again (at 3 MiB: behind the read-ahead from 7 MiB, not cached)
            eio(b, 3 * MiB)
            eio(b, 3 * MiB)
            restart()
            assert os.pread(b, 4096, 3 * MiB) == data["b.bin"][3 * MiB:3 * MiB + 4096]
        finally:
            os.close(a)
            os.close(b)
        log = mount.log()
    failed = [line for line in log.splitlines() if "store flaky: reading" in line]
    assert [("a.bin" in line, "b.bin" in line) for line in failed] == [(True, False), (False, True), (False, True)], \
        failed  # outage 1: a and b once each; outage 2: b once
    assert log.count("store flaky is back") == 2, log
    assert "testing" not in log


def test_cache_survives_restart(dedicated_moto, tmp_path):
    """Read once; remount with the store gone: served from the disk cache."""
    from artifactfs import register_artifact

    _store_on(dedicated_moto, "cached")
    source = tmp_path / "payload"
    source.mkdir()
    data = np.random.default_rng(4).bytes(6 * MiB + 5)
    (source / "weights.bin").write_bytes(data)
    register_artifact(source, "weights", copy=True)
    cache = tmp_path / "cache"
    with mounted(tmp_path / "mnt", cache_dir=cache) as mount:
        assert (mount.path / "artifacts/weights/1/weights.bin").read_bytes() == data
    dedicated_moto.kill()
    with mounted(tmp_path / "mnt", cache_dir=cache, timeout="2s") as mount:
        assert (mount.path / "artifacts/weights/1/weights.bin").read_bytes() == data
    maps = list(cache.rglob("*.map"))
    assert len(maps) == 1


def test_unmount_during_read(dedicated_moto, tmp_path):
    """SIGTERM with a read waiting on a hung store: the daemon unmounts and
    exits at once; the reader gets an error, not a hang."""
    from artifactfs import register_artifact

    _store_on(dedicated_moto, "hung")
    source = tmp_path / "payload"
    source.mkdir()
    (source / "slow.bin").write_bytes(os.urandom(4 * MiB))
    register_artifact(source, "slow", copy=True)
    outcome: dict = {}
    with mounted(tmp_path / "mnt", timeout="60s") as mount:
        path = mount.path / "artifacts/slow/1/slow.bin"
        os.stat(path)
        os.kill(dedicated_moto.pid, signal.SIGSTOP)

        def read() -> None:
            began = time.monotonic()
            try:
                outcome["data"] = _read_at(path, 0, 4096)
            except OSError as exc:
                outcome["error"] = exc.errno
            outcome["seconds"] = time.monotonic() - began

        thread = threading.Thread(target=read, daemon=True)
        thread.start()
        time.sleep(1.0)
        assert thread.is_alive()  # waiting on the store
        stopped_in = mount.stop()
        assert stopped_in < 10, stopped_in
        thread.join(15)
        assert not thread.is_alive()
        assert "error" in outcome, outcome
        assert not is_mounted(mount.path)
        assert "SIGTERM received: unmounting" in mount.log() and "unmounted" in mount.log()


@pytest.mark.parametrize("store_flavor", ["local"])
def test_cli_background_mount_status_umount(content, tmp_path):
    skip_without_fuse()
    cli = [sys.executable, "-c", "from artifactfs.cli.main import main; main()"]
    mountpoint = tmp_path / "bg"
    mountpoint.mkdir()
    try:
        started = subprocess.run([*cli, "mount", str(mountpoint), "--refresh", "0.5s"], capture_output=True,
                                 text=True, timeout=60)
        assert started.returncode == 0, started.stderr
        assert "Mounted artifactfs at" in started.stdout and "Log:" in started.stdout
        log_path = Path(started.stdout.split("Log:")[1].split()[0])
        assert log_path.exists()
        assert is_mounted(mountpoint)
        assert (mountpoint / "artifacts/ckpt/1/optim/deep/notes.txt").read_text() == "hello\n"
        status = subprocess.run([*cli, "mount", "--status"], capture_output=True, text=True, timeout=30,
                                env={**os.environ, "COLUMNS": "400"})  # the path on one line, however long
        assert status.returncode == 0 and str(mountpoint) in status.stdout, status.stdout
        again = subprocess.run([*cli, "mount", str(mountpoint)], capture_output=True, text=True, timeout=30)
        assert again.returncode == 1 and "already a mountpoint" in again.stderr
        full = tmp_path / "full"
        full.mkdir()
        (full / "x").write_text("x")
        refused = subprocess.run([*cli, "mount", str(full)], capture_output=True, text=True, timeout=30)
        assert refused.returncode == 1 and "not empty" in refused.stderr
        stopped = subprocess.run([*cli, "umount", str(mountpoint)], capture_output=True, text=True, timeout=60)
        assert stopped.returncode == 0, stopped.stderr
        assert not is_mounted(mountpoint)
        not_mounted = subprocess.run([*cli, "umount", str(mountpoint)], capture_output=True, text=True, timeout=30)
        assert not_mounted.returncode == 1 and "not an artifactfs mount" in not_mounted.stderr
    finally:
        from test_mount_helpers import force_unmount

        force_unmount(mountpoint)
        shutil.rmtree(tmp_path / "full", ignore_errors=True)


@pytest.mark.parametrize("store_flavor", ["local"])
def test_umount_in_use_lazy_and_dead(content, tmp_path):
    """umount never detaches a mount in use without saying so: it refuses,
    naming the processes (exit 1); --lazy detaches and the processes keep
    reading. A mount whose daemon was killed is cleaned up by umount even
    with a process inside, and mount offers the same (--clean-dead)."""
    skip_without_fuse()
    cli = [sys.executable, "-c", "from artifactfs.cli.main import main; main()"]
    point = tmp_path / "mnt"
    point.mkdir()

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*cli, *args], capture_output=True, text=True, timeout=60)

    def inside() -> subprocess.Popen:  # a shell whose working directory is in the mount
        return subprocess.Popen(["sleep", "600"], cwd=point / "artifacts/ckpt/1")

    users = []
    try:
        assert run("mount", str(point)).returncode == 0
        pid = daemon_pid(point)
        users.append(inside())
        refused = run("umount", str(point))
        assert refused.returncode == 1 and f"pid {users[-1].pid} (sleep: working directory)" in refused.stderr
        assert "--lazy" in refused.stderr
        assert (point / "artifacts/ckpt/1/optim/deep/notes.txt").read_text() == "hello\n"  # still mounted, served
        lazy = run("umount", "--lazy", str(point))
        assert lazy.returncode == 0 and f"pid {users[-1].pid}" in lazy.stdout
        assert not is_mounted(point)
        notes = Path(f"/proc/{users[-1].pid}/cwd/optim/deep/notes.txt")
        assert notes.read_text() == "hello\n"  # the process inside still reads
        users[-1].kill()
        users[-1].wait()
        wait_for(lambda: not Path(f"/proc/{pid}").exists(), timeout=10)  # its daemon leaves with the last user

        # A killed daemon leaves a dead mount: mount says how to clean it, umount cleans it.
        assert run("mount", str(point)).returncode == 0
        users.append(inside())
        os.kill(daemon_pid(point), signal.SIGKILL)
        wait_for(lambda: daemon_pid(point) is None, timeout=10)
        again = run("mount", str(point))
        assert again.returncode == 1 and "dead artifactfs mount" in again.stderr and "--clean-dead" in again.stderr
        cleaned = run("umount", str(point))
        assert cleaned.returncode == 0 and "dead mount" in cleaned.stdout and f"pid {users[-1].pid}" in cleaned.stdout
        assert not is_mounted(point)
        # ... and mount --clean-dead cleans up and mounts.
        assert run("mount", str(point)).returncode == 0
        os.kill(daemon_pid(point), signal.SIGKILL)
        wait_for(lambda: daemon_pid(point) is None, timeout=10)
        remounted = run("mount", "--clean-dead", str(point))
        assert remounted.returncode == 0, remounted.stderr
        assert (point / "artifacts/ckpt/1/optim/deep/notes.txt").read_text() == "hello\n"
        assert run("umount", str(point)).returncode == 0
    finally:
        for user in users:
            user.kill()
            user.wait()
        from test_mount_helpers import force_unmount

        if daemon_pid(point):
            os.kill(daemon_pid(point), signal.SIGTERM)
        force_unmount(point)


# -- a real pipeline run ----------------------------------------------------------------------------

@step
def make_table(rows: int = 50) -> pd.DataFrame:
    return pd.DataFrame({"x": np.arange(rows), "y": np.arange(rows) * 2.0})


@step
def fit(table: pd.DataFrame) -> np.ndarray:
    return np.polyfit(table["x"], table["y"], 1)


@pipeline
def mount_demo(rows: int = 50) -> None:
    fit(make_table(rows=rows))


@pytest.mark.parametrize("store_flavor", ["local"])
def test_pipeline_runs_through_mount(registered_store, tmp_path):
    """Runs of the real pipeline runner: every step output is a folder with
    its payload; a cached run shows the same files (same inodes); a deleted
    run vanishes from the mount."""
    from artifactfs import Client

    mount_demo()
    mount_demo()  # cached: its steps link the first run's versions
    runs = Client().list_pipeline_runs(pipeline="mount_demo")
    assert len(runs) == 2
    with mounted(tmp_path / "mnt", refresh="0.3s") as mount:
        base = mount.path / "pipelines" / "mount_demo"
        assert sorted(os.listdir(base)) == sorted(r.name for r in runs)
        inodes = {}
        for run in runs:
            for step_name, step_run in run.steps.items():
                folder = base / run.name / step_name
                assert sorted(os.listdir(folder)) == sorted(
                    [*step_run.outputs, *(f"{o}.json" for o in step_run.outputs)])
                for output, version in step_run.outputs.items():
                    for f in version.files:
                        path = folder / output / f.path
                        assert file_digest(path) == f.digest
                        inodes.setdefault((output, f.path), set()).add(os.stat(path).st_ino)
                    doc = json.loads((folder / f"{output}.json").read_text())
                    assert doc["id"] == version.id and doc["producer"]["pipeline"] == "mount_demo"
        assert all(len(found) == 1 for found in inodes.values())  # cached outputs: the same files
        weights = np.load(base / runs[0].name / "fit" / "output" / "array.npy")
        np.testing.assert_allclose(weights, [2.0, 0.0], atol=1e-9)
        Client().delete_pipeline_run(runs[-1].name)
        wait_for(lambda: not (base / runs[-1].name).exists(), timeout=5)
        assert (base / runs[0].name / "fit" / "output").is_dir()


@pytest.mark.parametrize("store_flavor", ["s3"])
def test_remote_reads_fetch_what_is_needed(registered_store, tmp_path):
    """Scattered small reads cache only the blocks they touch; a short
    sequential read streams ahead by a bounded window, not the whole file."""
    from artifactfs import register_artifact
    from artifactfs.mount.cache import BLOCK_SIZE, _read_map

    data = np.random.default_rng(12).bytes(48 * MiB)
    source = tmp_path / "src"
    source.mkdir()
    (source / "random.bin").write_bytes(data)
    (source / "sequential.bin").write_bytes(data)
    register_artifact(source, "ranges", copy=True)
    cache = tmp_path / "cache"
    with mounted(tmp_path / "mnt", cache_dir=cache) as mount:
        folder = mount.path / "artifacts/ranges/1"
        with open(folder / "random.bin", "rb", buffering=0) as f:
            for offset in (3 * MiB + 5, 17 * MiB, 29 * MiB + 100, 41 * MiB, 47 * MiB + 1):
                f.seek(offset)
                assert f.read(4096) == data[offset:offset + 4096]
        with open(folder / "sequential.bin", "rb", buffering=0) as f:
            assert f.read(2 * MiB) == data[:2 * MiB]
        time.sleep(0.5)  # let the stream reach its window
    cached = {}
    for map_path in cache.rglob("*.map"):
        header, bits = _read_map(map_path)
        cached[header["path"]] = sum(bin(b).count("1") for b in bits)
    assert BLOCK_SIZE == MiB
    assert 5 <= cached["random.bin"] <= 10, cached  # each read: its block (and at most a kernel read-ahead)
    assert 2 <= cached["sequential.bin"] <= 2 + 4 + 8 + 1, cached  # read + first window (+ one chunk in flight)


def test_a_seek_stops_the_streamed_read_ahead(dedicated_moto, tmp_path):
    """S3 streams its GETs: once a reader has read 3 MiB in a row, one GET
    runs up to 256 MiB ahead of it; when the reader seeks away (the file
    still open), that GET stops instead of streaming the rest of the object
    into the cache."""
    from artifactfs.mount.cache import _read_map

    data = np.random.default_rng(13).bytes(128 * MiB)
    _one_file_on(dedicated_moto, "seek", tmp_path, data)
    cache = tmp_path / "cache"
    with mounted(tmp_path / "mnt", cache_dir=cache) as mount:
        with open(mount.path / "artifacts/big/1/big.bin", "rb", buffering=0) as f:
            assert f.read(3 * MiB) == data[:3 * MiB]  # a sequential run: the GET of the rest has started
            f.seek(100 * MiB)
            assert f.read(4096) == data[100 * MiB:100 * MiB + 4096]
            time.sleep(2)  # long enough for moto to stream the whole object (0.5 s when idle)
    cached = {_read_map(path)[0]["path"]: sum(bin(b).count("1") for b in _read_map(path)[1])
              for path in cache.rglob("*.map")}
    assert cached["big.bin"] <= 4 + 4 + 8, cached  # the first window, what the seek read, a few pieces


def test_sequential_first_read_asks_few_ranges(dedicated_moto, tmp_path):
    """A sequential first read of a 64 MiB object asks the store for a few
    large ranges (a first window, then pieces sized by what a GET costs),
    counted in moto's own request log, and gets the right bytes."""
    data = np.random.default_rng(9).bytes(64 * MiB)
    version = _one_file_on(dedicated_moto, "seq", tmp_path, data)
    key = version.file_uri("big.bin").removeprefix("s3://")

    def gets() -> int:
        log = dedicated_moto.log_path.read_text(errors="replace")
        return sum(1 for line in log.splitlines() if f"GET /{key} " in line)

    before = gets()
    with mounted(tmp_path / "mnt") as mount:
        digest = hashlib.sha256()
        with open(mount.path / "artifacts/big/1/big.bin", "rb", buffering=0) as f:
            while chunk := f.read(MiB):
                digest.update(chunk)
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()
    asked = gets() - before
    assert 2 <= asked <= 9, asked  # 4 MiB, then 60 MiB in pieces of 8 MiB or more (1 MiB GETs were 20+)
