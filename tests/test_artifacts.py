"""The artifact API against real indexes (SQLite and PostgreSQL) and real stores:
save, load, versions, ids, tags, metadata, register, integrity, bad input."""

import blake3
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

pytest_plugins = ["store_fixtures", "index_fixtures"]

import artifactfs  # noqa: E402
from artifactfs import Client, load_artifact, register_artifact, save_artifact  # noqa: E402
from artifactfs.api import verified  # noqa: E402
from artifactfs.api.artifacts import IntegrityError  # noqa: E402
from artifactfs.errors import AlreadyExistsError, ArtifactfsError, NotFoundError  # noqa: E402
from artifactfs.index import get_index  # noqa: E402
from artifactfs.index.artifacts import InvalidNameError  # noqa: E402
from artifactfs.index.models import VersionRow  # noqa: E402


def version_rows():
    with get_index().read() as session:
        return session.scalar(select(func.count()).select_from(VersionRow))


def payload_folders(store_root: Path, name: str) -> list[str]:
    """The payload folders of ``name`` (not the manifest files beside them)."""
    folder = store_root / name
    return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.exists() else []


def default_root() -> Path:
    return Path(artifactfs.get_store().path)


# -- save and load ---------------------------------------------------------------------


def test_save_load_roundtrip_and_numbering(afs_home):
    v1 = save_artifact({"lr": 0.1, "layers": [1, 2]}, "config")
    v2 = save_artifact({"lr": 0.2}, "config")
    assert (v1.version, v2.version) == ("1", "2")
    assert load_artifact("config") == {"lr": 0.2}
    assert load_artifact("config", version=1) == {"lr": 0.1, "layers": [1, 2]}
    assert load_artifact("config", version="1") == {"lr": 0.1, "layers": [1, 2]}
    assert v1.load() == {"lr": 0.1, "layers": [1, 2]}
    # The payload is a plain JSON file a third-party tool can read.
    payload = json.loads((Path(v1.uri) / "data.json").read_text())
    assert payload == {"lr": 0.1, "layers": [1, 2]}
    assert v1.uri.startswith(str(default_root() / "config"))
    assert [f.path for f in v1.files] == ["data.json"]
    assert v1.files[0].digest == blake3.blake3((Path(v1.uri) / "data.json").read_bytes()).hexdigest()
    assert v1.size == (Path(v1.uri) / "data.json").stat().st_size
    assert v1.metadata["storage_size"] == v1.size


def test_explicit_versions(afs_home):
    assert save_artifact(1, "m", version="v1.0").version == "v1.0"
    assert save_artifact(2, "m", version=10).version == "10"
    assert save_artifact(3, "m").version == "11"  # next after the highest number
    with pytest.raises(AlreadyExistsError, match="already has a version '10'"):
        save_artifact(4, "m", version="10")
    assert load_artifact("m", "10") == 2
    assert version_rows() == 3


def test_ids_and_prefixes(afs_home):
    v = save_artifact("x", "ids")
    assert load_artifact(v.id) == "x"
    assert load_artifact(v.id[:8]) == "x"
    assert Client().get_artifact_version(v.id[:6]).version == v.version
    other = save_artifact("y", "ids")
    with get_index().write() as session:  # force two ids to share a prefix
        session.get(VersionRow, v._pk).uuid = "abcd0000-0000-4000-8000-000000000001"
        session.get(VersionRow, other._pk).uuid = "abcd0000-0000-4000-8000-000000000002"
    with pytest.raises(NotFoundError, match="ambiguous"):
        load_artifact("abcd0000")
    assert load_artifact("abcd0000-0000-4000-8000-000000000002") == "y"


def test_unknown_names_versions_ids(afs_home):
    save_artifact(1, "known")
    with pytest.raises(NotFoundError, match="no artifact named 'unknown'"):
        load_artifact("unknown")
    with pytest.raises(NotFoundError, match=r"artifact 'known' has no version '7' \(newest: 1\)"):
        load_artifact("known", 7)
    with pytest.raises(NotFoundError):
        load_artifact("ffffffff-ffff")


@pytest.mark.parametrize(
    "name, problem",
    [("a/b", "slash"), ("", "empty"), ("x" * 300, "300 bytes"), ("é" * 200, "400 bytes long in UTF-8"),
     ("\udcff", "lone surrogate"), ("..", "'.' or '..'"), ("bad\x00name", "control"), (" padded", "white space")],
)
def test_bad_names_write_nothing(sqlite_home, name, problem):
    with pytest.raises(InvalidNameError, match=problem):
        save_artifact(1, name)
    assert version_rows() == 0
    marker = ".artifactfs-store.json"  # the store's own marker, written at init
    assert not [p for p in default_root().iterdir() if p.name != marker] if default_root().exists() else True


def test_wrong_types(sqlite_home):
    with pytest.raises(InvalidNameError, match="must be a string"):
        save_artifact(1, 42)
    with pytest.raises(InvalidNameError, match="version must be a string or an integer"):
        save_artifact(1, "n", version=1.5)
    with pytest.raises(ArtifactfsError, match="materializer must be a BaseMaterializer subclass"):
        save_artifact(1, "n", materializer=dict)


def test_unserializable_value_for_json_materializer(sqlite_home):
    from artifactfs.materializers import registry

    json_materializer = registry.lookup(int)
    with pytest.raises(ArtifactfsError, match="cannot save"):  # not a type it handles: refused before writing
        save_artifact(object(), "cfg", materializer=json_materializer)
    assert version_rows() == 0
    assert payload_folders(default_root(), "cfg") == []


def test_bad_metadata_leaves_nothing(afs_home):
    with pytest.raises(ArtifactfsError, match="metadata 'when' is not JSON-serializable"):
        save_artifact([1, 2], "meta", metadata={"when": object()})
    assert version_rows() == 0
    assert payload_folders(default_root(), "meta") == []


def test_duplicate_version_removes_fresh_payload(afs_home):
    save_artifact(1, "dup", version="a")
    before = payload_folders(default_root(), "dup")
    with pytest.raises(AlreadyExistsError):
        save_artifact(2, "dup", version="a")
    assert payload_folders(default_root(), "dup") == before


def test_tags_metadata_and_listing(afs_home):
    v = save_artifact(np.arange(6).reshape(2, 3), "arr", tags=["keep", "best"], metadata={"acc": 0.9, "nan": float("nan")})
    save_artifact(np.zeros(2), "arr")
    assert sorted(v.tags) == ["best", "keep"]
    meta = v.metadata
    assert meta["acc"] == 0.9 and np.isnan(meta["nan"])
    assert meta["shape"] in ([2, 3], (2, 3))
    v.add_tags(["prod"])
    v.remove_tags(["best"])
    assert v.tags == ["keep", "prod"]
    client = Client()
    assert [x.version for x in client.list_artifact_versions("arr")] == ["2", "1"]
    assert [x.version for x in client.list_artifact_versions(tag="prod")] == ["1"]
    summary = {s.name: s for s in client.list_artifacts()}
    assert summary["arr"].version_count == 2 and summary["arr"].newest == "2"
    assert list(summary["arr"].versions) == ["1", "2"]  # ZenML's ArtifactResponse.versions, by version


def test_save_to_every_flavor(registered_store):
    v = save_artifact({"a": [1, 2, 3]}, "remote")
    assert v.store == registered_store.name
    assert v.uri.startswith(registered_store.path + "/remote/")
    assert [f.path for f in v.files] == ["data.json"]
    data = registered_store.read_bytes(v.uri + "/data.json")
    assert v.files[0].digest == blake3.blake3(data).hexdigest()
    assert load_artifact("remote") == {"a": [1, 2, 3]}
    arr = np.random.default_rng(0).normal(size=(64, 8))
    assert np.array_equal(save_artifact(arr, "remote-arr").load(verify=True), arr)


def test_saved_folder_with_one_file_loads_as_folder(sqlite_home, tmp_path):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "model.bin").write_bytes(b"m" * 100)
    loaded = save_artifact(folder, "one-file-folder").load()
    assert loaded.is_dir() and (loaded / "model.bin").read_bytes() == b"m" * 100
    single = tmp_path / "weights.pt"
    single.write_bytes(b"w")
    loaded = save_artifact(single, "one-file").load()
    assert loaded.is_file() and loaded.name == "weights.pt"


# -- integrity ----------------------------------------------------------------------------------


def test_verify_detects_tampering(sqlite_home):
    v = save_artifact({"a": 1}, "tamper")
    (Path(v.uri) / "data.json").write_text('{"a": 2}')
    assert load_artifact("tamper") == {"a": 2}  # JSON is not verified unless asked
    with pytest.raises(IntegrityError, match="changed since it was saved"):
        load_artifact("tamper", verify=True)


@pytest.mark.parametrize("damage", ["flipped", "appended", "cut"])
def test_verify_checks_a_large_array_as_it_is_read(sqlite_home, damage, monkeypatch):
    monkeypatch.setattr(verified, "SPOOL_MEMORY", 1024 * 1024)  # files above it stream, hashed as read
    array = np.random.default_rng(2).random(3_000_000)  # 24 MB: read and hashed in slices
    v = save_artifact(array, "big")
    assert np.array_equal(load_artifact("big", verify=True), array)
    path = Path(v.uri) / "array.npy"
    data = bytearray(path.read_bytes())
    if damage == "flipped":
        data[len(data) // 2] ^= 1
    elif damage == "appended":
        data += b"\0" * 8
    path.write_bytes(bytes(data[:-8] if damage == "cut" else data))
    with pytest.raises(ArtifactfsError, match="changed since it was saved|ends after"):
        load_artifact("big", verify=True)


def test_pickles_are_always_verified(sqlite_home):
    class Opaque:
        def __init__(self):
            self.x = 1

    v = save_artifact(Opaque(), "pickled")
    assert v.load().x == 1
    pkl = next(Path(v.uri).glob("*.pkl"))
    pkl.write_bytes(pkl.read_bytes() + b"tampered")
    with pytest.raises(IntegrityError):
        load_artifact("pickled")


def test_pickles_inside_containers_are_verified(sqlite_home):
    class Opaque:
        pass

    v = save_artifact({"weights": np.ones(3), "extra": Opaque()}, "mixed")
    assert np.array_equal(v.load()["weights"], np.ones(3))
    pkl = next(Path(v.uri).rglob("*.pkl"))
    pkl.write_bytes(pkl.read_bytes() + b"tampered")
    with pytest.raises(IntegrityError):
        load_artifact("mixed")


# -- register -----------------------------------------------------------------------------------


def make_checkpoint(folder: Path) -> dict[str, bytes]:
    files = {"model.bin": os.urandom(5000), "optim/state.bin": os.urandom(300), "meta.json": b'{"epoch": 3}'}
    for rel, data in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    return files


def test_register_folder_in_place(afs_home):
    ckpt = default_root() / "runs" / "epoch=3"
    files = make_checkpoint(ckpt)
    v = register_artifact(ckpt, "ckpt", tags=["best"])
    assert v.uri == str(ckpt) and v.save_type == "preexisting"  # ZenML's name (index: registered)
    assert sorted(f.path for f in v.files) == sorted(files)
    assert v.size == sum(len(b) for b in files.values())
    path = v.load()
    assert isinstance(path, Path) and path != ckpt and not path.is_relative_to(default_root())  # a private copy
    assert all((path / rel).read_bytes() == data for rel, data in files.items())
    v.verify()
    with pytest.raises(AlreadyExistsError, match="already owned"):
        register_artifact(ckpt, "ckpt2")
    # Adopted paths may nest, as in ZenML (a folder, then a file in it): the
    # pruner and migrate keep whatever a live version overlaps.
    inner = register_artifact(ckpt / sorted(files)[0], "ckpt3")
    assert inner.uri == str(ckpt / sorted(files)[0])
    outer = register_artifact(ckpt.parent, "ckpt4")
    assert outer.uri == str(ckpt.parent)
    saved = save_artifact([1, 2], "saved")  # a payload folder artifactfs made is never adopted
    with pytest.raises(AlreadyExistsError, match="already owned"):
        register_artifact(saved.uri, "saved-adopted")


def test_register_single_file(sqlite_home):
    target = default_root() / "weights.pt"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(b"w" * 1000)
    v = register_artifact(str(target), "weights")
    assert v.payload_kind == "file" and [f.path for f in v.files] == ["weights.pt"]
    loaded = v.load()
    assert loaded.name == "weights.pt" and loaded != target and loaded.read_bytes() == target.read_bytes()


def test_register_outside_store_needs_copy(sqlite_home, tmp_path):
    outside = tmp_path / "elsewhere"
    files = make_checkpoint(outside)
    with pytest.raises(ArtifactfsError, match="copy=True"):
        register_artifact(outside, "ext")
    assert version_rows() == 0
    seen = []
    v = register_artifact(outside, "ext", copy=True, progress=lambda total: (seen.append(total), seen.append)[1])
    assert seen[0] == sum(len(b) for b in files.values()) and sum(seen[1:]) == seen[0]
    assert v.uri.startswith(str(default_root()))
    assert all((Path(v.uri) / rel).read_bytes() == data for rel, data in files.items())
    assert (outside / "model.bin").exists()  # the source is left alone


def test_register_refuses_escaping_symlink(sqlite_home, tmp_path):
    ckpt = default_root() / "linked"
    make_checkpoint(ckpt)
    secret = tmp_path / "secret.txt"
    secret.write_text("s")
    (ckpt / "leak").symlink_to(secret)
    with pytest.raises(ArtifactfsError, match="leak is a symbolic link"):
        register_artifact(ckpt, "linked")
    assert version_rows() == 0


def test_register_remote_and_load_downloads(registered_store):
    store = registered_store
    with store.open("ckpts/step=10/model.bin", "wb") as f:
        f.write(b"m" * 2048)
    with store.open("ckpts/step=10/extra/cfg.json", "wb") as f:
        f.write(b"{}")
    v = register_artifact(store.uri("ckpts/step=10"), "remote-ckpt")
    assert sorted(f.path for f in v.files) == ["extra/cfg.json", "model.bin"]
    local = v.load(verify=True)
    assert (local / "model.bin").read_bytes() == b"m" * 2048
    assert (local / "extra" / "cfg.json").read_bytes() == b"{}"


def test_register_refuses_tar_slip_keys(moto_server, artifactfs_home):
    import servers

    from artifactfs.index import reset_index_cache

    reset_index_cache()
    fs = servers.s3_bucket(moto_server, "slip-bucket")
    fs.pipe("slip-bucket/root/ckpt/ok.bin", b"ok")
    fs.pipe("slip-bucket/root/ckpt/../../evil.bin", b"evil")  # a key, not a path, in S3
    artifactfs.register_store("slip", "s3", "s3://slip-bucket/root", dict(moto_server.options))
    with pytest.raises(ArtifactfsError, match="unsafe relative path"):
        register_artifact("s3://slip-bucket/root/ckpt", "slip")
    assert version_rows() == 0


# -- failures ---------------------------------------------------------------------------------


def test_store_down_during_save_records_nothing(artifactfs_home):
    import servers

    from artifactfs.index import reset_index_cache

    reset_index_cache()
    server = servers.start_moto()
    try:
        servers.s3_bucket(server, "downbucket")
        artifactfs.register_store("flaky", "s3", "s3://downbucket/x", dict(server.options))
        save_artifact(1, "ok", store="flaky")
        server.kill()
        started = time.monotonic()
        with pytest.raises(Exception) as info:
            save_artifact({"a": 1}, "lost", store="flaky")
        assert time.monotonic() - started < 60
        assert "testing" not in str(info.value)  # no secret in the message
        assert version_rows() == 1
    finally:
        server.stop()


KILLED_WRITER = textwrap.dedent(
    """
    import numpy as np
    from artifactfs import save_artifact
    save_artifact(np.ones(1000), "victim")
    """
)


def test_killed_writer_leaves_no_row(sqlite_home):
    save_artifact(1, "victim")
    env = {**os.environ, "ARTIFACTFS_FAULT": "before_commit"}
    proc = subprocess.run([sys.executable, "-c", KILLED_WRITER], env=env, capture_output=True, timeout=120)
    assert proc.returncode == -9
    assert version_rows() == 1
    folders = payload_folders(default_root(), "victim")
    assert len(folders) == 2  # the committed one and the orphan the pruner will sweep
    assert [v.version for v in Client().list_artifact_versions("victim")] == ["1"]


CONCURRENT_SAVER = textwrap.dedent(
    """
    import sys
    from artifactfs import save_artifact
    print(save_artifact(int(sys.argv[1]), "shared").version)
    """
)


def test_concurrent_savers_get_distinct_versions(afs_home):
    save_artifact(0, "shared")  # migrate once so the race is about versions
    procs = [
        subprocess.Popen([sys.executable, "-c", CONCURRENT_SAVER, str(i)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for i in range(8)
    ]
    results = [p.communicate(timeout=180) for p in procs]
    assert all(p.returncode == 0 for p in procs), [r[1].decode()[-500:] for r in results]
    versions = sorted(int(out.decode().strip()) for out, _ in results)
    assert versions == list(range(2, 10))
    values = {load_artifact("shared", v) for v in versions}
    assert values == set(range(8))
