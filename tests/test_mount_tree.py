"""The mount's pure parts without FUSE: name escaping, inode numbers, the
tree over a real SQLite index, and the on-disk block cache."""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import pytest

pytest_plugins = ["index_fixtures"]

from test_mount_helpers import condemn, make_run  # noqa: E402

from artifactfs.index import names  # noqa: E402
from artifactfs.mount import inodes  # noqa: E402
from artifactfs.mount.inodes import Kind  # noqa: E402

# -- names -------------------------------------------------------------------------------------

NAMES = [
    "model", "a/b", ".", "..", "100%.txt", "file%20name", "%~", "a%~b", "x" * 300, "é" * 200,
    "latest", "1.json", "a\x00b", "%", "%4", "%A/", "", "\x7f", "tab\there", "y" * 252, "日本語" * 40,
    "pipeline::step::output",
]


@pytest.mark.parametrize("reserved", [False, True])
@pytest.mark.parametrize("name", NAMES)
def test_escape_round_trips(name, reserved):
    shown = names.escape(name, reserved)
    raw = shown.encode()
    assert 0 < len(raw) <= 255 and b"/" not in raw and b"\0" not in raw and shown not in (".", "..")
    decoded = names.unescape(raw, reserved)
    assert decoded is not None and decoded.matches(name)
    if decoded.hashed is None:
        assert decoded.name == name
    doc = names.doc_name(name)
    assert len(doc.encode()) <= 255 and doc.endswith(".json")
    assert names.undoc(doc).matches(name)


def test_escape_is_minimal_and_canonical():
    assert names.escape("model-v1.pt") == "model-v1.pt"
    assert names.escape("pipeline::step::output") == "pipeline::step::output"
    assert names.escape("a/b") == "a%2Fb"
    assert names.escape("100%.txt") == "100%.txt"
    assert names.escape("file%20name") == "file%2520name"
    assert names.escape("latest", reserved=True) == "%6Catest"
    assert names.escape("3.json", reserved=True) == "3%2Ejson"
    assert names.escape("latest") == "latest"  # only reserved where the mount uses the name
    # Another spelling of the same name is not found (one name per object).
    assert names.unescape("%41") is None
    assert names.unescape("latest", reserved=True) is None
    assert names.unescape("x.json", reserved=True) is None
    assert names.unescape(b"\xff\xfe") is None
    long = names.escape("z" * 400)
    assert long.startswith("z" * 200) and "%~" in long
    assert not names.unescape(long).matches("z" * 399)


def test_long_names_differ():
    a, b = "q" * 300 + "a", "q" * 300 + "b"
    assert names.escape(a) != names.escape(b)
    assert names.unescape(names.escape(a)).matches(a)
    assert not names.unescape(names.escape(a)).matches(b)


# -- inodes -------------------------------------------------------------------------------------


def test_inode_scheme():
    seen = set()
    for kind in Kind:
        if kind == Kind.SPECIAL:
            continue
        for payload in (1, 2, 12345, inodes.PAYLOAD_MASK):
            inode = inodes.make(kind, payload)
            assert inodes.split(inode) == (kind, payload)
            assert 0 < inode < 2**63
            seen.add(inode)
    assert len(seen) == 4 * (len(Kind) - 1)
    folder = inodes.folder(Kind.VERSION_DIR, 77, 3)
    assert inodes.split(folder)[0] == Kind.VERSION_DIR
    assert inodes.split_folder(inodes.split(folder)[1]) == (77, 3)
    assert inodes.folder(Kind.VERSION_DIR, 77, 0) == inodes.make(Kind.VERSION, 77)
    assert inodes.folder(Kind.OUTPUT_DIR, 77, 0) == inodes.make(Kind.OUTPUT, 77)
    with pytest.raises(inodes.InodeOverflow):
        inodes.make(Kind.FILE, 1 << 56)
    with pytest.raises(inodes.InodeOverflow):
        inodes.folder(Kind.VERSION_DIR, 5, inodes.MAX_FOLDERS + 1)


# -- the tree ---------------------------------------------------------------------------------


@pytest.fixture
def data(afs_home, tmp_path):
    """Artifacts and a pipeline run in a fresh index (SQLite and PostgreSQL)."""
    from artifactfs import register_artifact, save_artifact

    arr = save_artifact(np.arange(100, dtype=np.int64), "arr")
    cfg = save_artifact({"lr": 0.1}, "arr")
    folder = tmp_path / "ckpt"
    (folder / "optim" / "deep").mkdir(parents=True)
    (folder / "model.bin").write_bytes(b"m" * 1000)
    (folder / "optim" / "state.bin").write_bytes(b"s" * 300)
    (folder / "optim" / "deep" / "x.txt").write_bytes(b"x")
    ckpt = register_artifact(folder, "ckpt", copy=True)
    single = tmp_path / "single.bin"
    single.write_bytes(b"1234567")
    single_v = register_artifact(single, "single", copy=True)
    weird_versions = [save_artifact(i, "weird", version=v) for i, v in enumerate(["latest", "3.json", "é" * 200])]
    ids = make_run("train", "train-1", {"fit": {"model": ckpt, "<inputs>": {"data": arr}}, "eval": {"report": cfg}})
    return {"arr": arr, "cfg": cfg, "ckpt": ckpt, "single": single_v, "weird": weird_versions, "ids": ids}


@pytest.fixture
def tree(data):
    from artifactfs.index import get_index
    from artifactfs.mount.fs import Tree

    return Tree(get_index())


def resolve(tree, path: str):
    node = tree.getattr(inodes.ROOT)
    for part in [p for p in path.split("/") if p]:
        node = tree.lookup(node.inode, part.encode())
    return node


def walk(tree, inode=inodes.ROOT, prefix=""):
    found = {}
    for name, node in tree.listdir(inode):
        path = prefix + name.decode()
        found[path] = node
        if node.is_dir:
            found.update(walk(tree, node.inode, path + "/"))
    return found


def test_tree_shape(tree, data):
    listing = walk(tree)
    assert set(listing) >= {
        "artifacts", "pipelines", "artifacts/arr/1/array.npy", "artifacts/arr/1.json", "artifacts/arr/2/data.json",
        "artifacts/arr/latest", "artifacts/ckpt/1/model.bin", "artifacts/ckpt/1/optim/state.bin",
        "artifacts/ckpt/1/optim/deep/x.txt", "artifacts/single/1/single.bin",
        "pipelines/train/train-1/fit/model/optim/deep/x.txt", "pipelines/train/train-1/fit/model.json",
        "pipelines/train/train-1/eval/report/data.json",
        "artifacts/weird/%6Catest", "artifacts/weird/%6Catest.json", "artifacts/weird/3%2Ejson",
        "artifacts/weird/3%2Ejson.json",
    }
    # Inputs are not outputs: the step folder shows outputs only.
    assert not any(p.startswith("pipelines/train/train-1/fit/data") for p in listing)
    assert listing["artifacts/ckpt/1/model.bin"].size == 1000
    assert listing["artifacts/ckpt/1/optim/state.bin"].size == 300
    assert stat.S_ISLNK(listing["artifacts/arr/latest"].mode)
    assert tree.readlink(listing["artifacts/arr/latest"].inode) == b"2"
    assert tree.readlink(listing["artifacts/weird/latest"].inode) == names.escape("é" * 200, True).encode()
    # Folders are 0755 (a copy out of the mount can be deleted), documents read-only; payload
    # files show the mode their manifest records.
    for path, node in listing.items():
        if stat.S_ISDIR(node.mode):
            assert stat.S_IMODE(node.mode) == 0o755, path
        elif path.endswith(".json") and not path.endswith("data.json"):
            assert stat.S_IMODE(node.mode) == 0o444, path
    for f in data["ckpt"].files:
        assert stat.S_IMODE(listing[f"artifacts/ckpt/1/{f.path}"].mode) == f.mode & 0o777 == 0o644
    # Same file under /artifacts and /pipelines: one inode (hard link); folders differ.
    a, p = listing["artifacts/ckpt/1/model.bin"], listing["pipelines/train/train-1/fit/model/model.bin"]
    assert a.inode == p.inode and a.nlink == 2
    assert listing["artifacts/ckpt/1/optim"].inode != listing["pipelines/train/train-1/fit/model/optim"].inode
    # Sizes come from the manifest.
    manifest = {f.path: f.size for f in data["ckpt"].files}
    for rel, size in manifest.items():
        assert listing[f"artifacts/ckpt/1/{rel}"].size == size


def test_lookups_match_listing_and_inodes_are_stable(tree, data):
    from artifactfs.index import get_index
    from artifactfs.mount.fs import Tree

    listing = walk(tree)
    for path, node in listing.items():
        assert resolve(tree, path).inode == node.inode, path
        assert tree.getattr(node.inode).size == node.size
    fresh = Tree(get_index())  # a restarted daemon: same numbers, answered from the index
    for path, node in listing.items():
        if inodes.split(node.inode)[0] != Kind.SPECIAL:  # those carry the mount's start time
            assert fresh.getattr(node.inode) == node, path
    inode_kinds = {inodes.split(n.inode)[0] for n in listing.values()}
    assert inode_kinds >= {Kind.ARTIFACT, Kind.VERSION, Kind.VERSION_DOC, Kind.LATEST, Kind.FILE, Kind.VERSION_DIR,
                           Kind.PIPELINE, Kind.RUN, Kind.STEP, Kind.OUTPUT, Kind.OUTPUT_DOC, Kind.OUTPUT_DIR}
    assert len({n.inode for n in listing.values()}) == len(listing) - 4  # hard links: 4 files shown twice


def test_not_found_and_not_dir(tree):
    from artifactfs.mount.fs import NotADir, NotFound

    version = resolve(tree, "artifacts/ckpt/1")
    with pytest.raises(NotFound) as miss:
        tree.lookup(version.inode, b"nope")
    assert miss.value.stable  # a version folder never changes
    with pytest.raises(NotFound) as miss:
        tree.lookup(inodes.ARTIFACTS, b"nope")
    assert not miss.value.stable
    for bad in (b"%41rr", b"1%2Ejson", b"latest.json", b"\xff"):
        with pytest.raises(NotFound):
            tree.lookup(resolve(tree, "artifacts/arr").inode, bad)
    with pytest.raises(NotADir):
        tree.lookup(resolve(tree, "artifacts/ckpt/1/model.bin").inode, b"x")
    with pytest.raises(NotFound):
        tree.getattr(inodes.make(Kind.VERSION, 99999))
    with pytest.raises(NotFound):
        tree.getattr((15 << 56) | 1)


def test_long_names_resolve(tree):
    long = "é" * 200  # 200 characters, 400 bytes: too long for a file name
    shown = names.escape(long, reserved=True)
    assert "%~" in shown
    node = resolve(tree, f"artifacts/weird/{shown}")
    assert node.is_dir
    assert (shown.encode(), node) in tree.listdir(resolve(tree, "artifacts/weird").inode)
    doc = resolve(tree, f"artifacts/weird/{names.doc_name(long)}")
    assert json.loads(tree.open(doc.inode).data)["version"] == long


def test_open_targets(tree, data):
    from artifactfs.mount.fs import Document, IsADir, Payload

    target = tree.open(resolve(tree, "artifacts/ckpt/1/optim/state.bin").inode)
    assert isinstance(target, Payload)
    assert target.uri == data["ckpt"].uri + "/optim/state.bin" and target.size == 300
    assert target.version_uuid == data["ckpt"].id
    single = tree.open(resolve(tree, "artifacts/single/1/single.bin").inode)
    assert single.uri == data["single"].file_uri("single.bin")
    doc = tree.open(resolve(tree, "artifacts/arr/1.json").inode)
    assert isinstance(doc, Document)
    with pytest.raises(IsADir):
        tree.open(resolve(tree, "artifacts/arr/1").inode)


def test_documents_and_xattrs(tree, data):
    doc = json.loads(tree.open(resolve(tree, "artifacts/ckpt/1.json").inode).data)
    ckpt = data["ckpt"]
    assert doc["id"] == ckpt.id and doc["name"] == "ckpt" and doc["version"] == "1" and doc["uri"] == ckpt.uri
    assert doc["content_hash"] == ckpt.content_hash and doc["size"] == 1301
    assert doc["producer"]["pipeline"] == "train" and doc["producer"]["step"] == "fit"
    assert doc["producer"]["inputs"] == [{"name": "data", "artifact": "arr", "version": "1", "id": data["arr"].id}]
    arr_doc = json.loads(tree.open(resolve(tree, "artifacts/arr/1.json").inode).data)
    assert arr_doc["consumers"][0]["step"] == "fit" and arr_doc["producer"] is None
    same = tree.open(resolve(tree, "pipelines/train/train-1/fit/model.json").inode).data
    assert json.loads(same) == doc
    data_bytes = tree.open(resolve(tree, "artifacts/ckpt/1.json").inode).data
    assert resolve(tree, "artifacts/ckpt/1.json").size == len(data_bytes)
    assert data_bytes.decode().splitlines()[1] == f'  "id": "{ckpt.id}",'  # one top-level key per line
    attrs = tree.xattrs(resolve(tree, "artifacts/ckpt/1").inode)
    expected = {"id": ckpt.id, "name": "ckpt", "version": "1", "store": ckpt.store, "uri": ckpt.uri,
                "content_hash": ckpt.content_hash, "producer.pipeline": "train", "producer.run": "train-1",
                "producer.step": "fit", "producer.output": "model", "data_type": "pathlib.Path"}
    for key, value in expected.items():
        assert attrs[f"user.artifactfs.{key}"] == value.encode(), key
    assert attrs["user.artifactfs.created"].decode().startswith(ckpt.created_at.strftime("%Y-%m-%d"))
    file_attrs = tree.xattrs(resolve(tree, "pipelines/train/train-1/fit/model/optim/state.bin").inode)
    assert file_attrs["user.artifactfs.path"] == b"optim/state.bin"
    assert file_attrs["user.artifactfs.digest"] == next(f.digest for f in ckpt.files if f.path == "optim/state.bin").encode()
    assert tree.xattrs(inodes.ARTIFACTS) == {}
    assert tree.getxattr(resolve(tree, "artifacts/ckpt/1").inode, b"user.artifactfs.id") == ckpt.id.encode()


def test_foreign_xattr_names_need_nothing(tree, data):
    """Names that are not ours (ls asks for security.selinux and ACLs on
    every file) are answered from the name alone, nothing looked up or
    built: ENODATA in the user namespace, EOPNOTSUPP in namespaces the
    mount does not implement."""
    from artifactfs.mount.fs import NoAttr, Unsupported

    fresh_inode = inodes.make(Kind.FILE, 10**9)  # no such file: only a lookup would notice
    with tree.memory_only():
        for name in (b"user.other", b"user.artifactfsx"):
            with pytest.raises(NoAttr):
                tree.getxattr(fresh_inode, name)
        for name in (b"security.selinux", b"system.posix_acl_access", b"system.posix_acl_default", b"trusted.x"):
            with pytest.raises(Unsupported):
                tree.getxattr(fresh_inode, name)
    folder = resolve(tree, "artifacts/ckpt/1").inode
    with pytest.raises(NoAttr):
        tree.getxattr(folder, b"user.artifactfs.nope")
    first = tree.xattrs(folder)
    with tree.memory_only():  # built once per version, then served from memory
        assert tree.xattrs(folder) == first
        assert tree.getxattr(folder, b"user.artifactfs.producer.step") == b"fit"


def test_memory_only_answers_from_cache(tree):
    from artifactfs.mount.fs import NeedsIndex

    with tree.memory_only(), pytest.raises(NeedsIndex):
        tree.lookup(inodes.ARTIFACTS, b"arr")
    node = resolve(tree, "artifacts/ckpt/1/optim/state.bin")
    with tree.memory_only():
        assert resolve(tree, "artifacts/ckpt/1/optim/state.bin") == node
        assert tree.getattr(node.inode) == node


def test_refresh_new_versions_condemned_and_latest(tree, data):
    from artifactfs import save_artifact
    from artifactfs.mount.fs import NotFound

    # On PostgreSQL any transaction in the cluster (autovacuum's ANALYZE, another
    # database) may report a change that is none (index/generation.py): a spurious
    # refresh is allowed, a refresh that invalidates something is not.
    for _ in range(2):  # the baseline, then nothing moved
        changes = tree.refresh()
        assert changes is None or not (changes.entries or changes.inodes), changes
    arr_folder = resolve(tree, "artifacts/arr")
    assert tree.readlink(resolve(tree, "artifacts/arr/latest").inode) == b"2"
    with pytest.raises(NotFound):
        tree.lookup(arr_folder.inode, b"3")
    v3 = save_artifact([1, 2, 3], "arr")
    changes = tree.refresh()
    assert changes is not None and inodes.make(Kind.LATEST, arr_folder.inode & inodes.PAYLOAD_MASK) in changes.inodes
    assert resolve(tree, "artifacts/arr/3").is_dir
    assert tree.readlink(resolve(tree, "artifacts/arr/latest").inode) == b"3"
    # Condemned: gone from /artifacts and from the step that showed it; latest moves back.
    ckpt_folder = resolve(tree, "artifacts/ckpt")
    condemn(data["ckpt"])
    condemn(v3)
    changes = tree.refresh()
    step = inodes.make(Kind.STEP, data["ids"]["steps"]["fit"])
    assert (ckpt_folder.inode, b"1") in changes.entries and (ckpt_folder.inode, b"1.json") in changes.entries
    assert (step, b"model") in changes.entries and (step, b"model.json") in changes.entries
    assert (arr_folder.inode, b"3") in changes.entries
    with pytest.raises(NotFound):
        resolve(tree, "artifacts/ckpt")  # no live version left: the artifact is gone too
    with pytest.raises(NotFound):
        resolve(tree, "pipelines/train/train-1/fit/model")
    with pytest.raises(NotFound):
        tree.getattr(inodes.make(Kind.VERSION, data["ckpt"]._pk))
    assert tree.readlink(resolve(tree, "artifacts/arr/latest").inode) == b"2"
    assert "ckpt" not in [n.decode() for n, _ in tree.listdir(inodes.ARTIFACTS)]
    # New runs appear after a refresh.
    make_run("train", "train-2", {"fit": {"model": data["cfg"]}})
    assert tree.refresh() is not None
    assert resolve(tree, "pipelines/train/train-2/fit/model/data.json").size > 0


def test_manifest_folders_with_odd_paths():
    from artifactfs.index.tree import FileRecord
    from artifactfs.mount.records import Manifest

    files = [FileRecord(1, 9, "a", 1, 0o644, None), FileRecord(2, 9, "a/b", 2, 0o644, None),
             FileRecord(3, 9, "x/../y", 3, 0o755, None), FileRecord(4, 9, "c//d", 4, 0o644, None)]
    manifest = Manifest(files)
    numbers = dict(enumerate(sorted([(), ("a",), ("c",), ("c", ""), ("x",), ("x", "..")])))
    number = {key: n for n, key in numbers.items()}
    top = manifest.folders[0].children
    assert top[b"a"] == (True, number[("a",)])
    assert (False, 1) in top.values()  # the file "a" shown under another name, not lost
    assert b"x" in top and b"%2E%2E" in manifest.folders[number[("x",)]].children
    assert len(manifest.folders) == 6  # top, a, c, c/'', x, x/..: sorted and numbered


def test_flat_manifests_answer_like_full_ones():
    """A few files and no folder: the compact form gives the same answers."""
    from artifactfs.index.tree import FileRecord
    from artifactfs.mount.records import FlatManifest, Manifest, make_manifest

    files = [FileRecord(7, 9, "b.bin", 2, 0o644, None), FileRecord(5, 9, "a%20.txt", 1, 0o600, "d"),
             FileRecord(6, 9, "..", 3, 0o644, None)]
    flat, full = make_manifest(files), Manifest(files)
    assert isinstance(flat, FlatManifest) and not FlatManifest.fits(files + [FileRecord(8, 9, "x/y", 1, 0, None)])
    assert list(flat.children(0, 1)) == list(full.children(0, 1))
    for name, _ in full.children(0, 1):
        assert flat.child(0, 1, name) == full.child(0, 1, name)
    assert flat.child(0, 1, b"nope") is None and flat.file(5) == full.file(5) and flat.file(99) is None
    assert flat.subfolders(0, 1) == full.subfolders(0, 1) == 0 and flat.folder_count == full.folder_count == 1


# -- the block cache -----------------------------------------------------------------------------


def test_cache_blocks_persist_and_verify(tmp_path):
    from artifactfs.mount.cache import BlockCache, CacheInUse, CacheKey

    size = 5 * 1024 + 100
    cache = BlockCache(tmp_path / "c", capacity=1 << 30, block_size=1024)
    key = CacheKey("0123abcd-uuid", "deep/file.bin")
    payload = os.urandom(size)
    f = cache.open(key, size)
    assert f.blocks == 6 and f.missing(0, 10) == [0, 1, 2, 3, 4, 5]
    f.write(1024, payload[1024:3072])
    f.write(5120, payload[5120:])
    with pytest.raises(ValueError):
        f.write(100, b"x")
    assert f.missing(0, 5) == [0, 3, 4] and f.pread(1024, 2048) == payload[1024:3072]
    assert cache.open(key, size) is f  # shared by every open
    cache.release(f)
    cache.release(f)
    cache.close()
    again = BlockCache(tmp_path / "c", capacity=1 << 30, block_size=1024)
    again.scan()
    assert again.total_bytes == 2048 + 100
    f2 = again.open(key, size)
    assert f2.missing(0, 5) == [0, 3, 4] and f2.pread(5120, 100) == payload[5120:]
    for block in (0, 3, 4):
        f2.write(block * 1024, payload[block * 1024:(block + 1) * 1024])
    assert f2.complete and f2.pread(0, size) == payload and bytes(f2.view()) == payload
    again.release(f2)
    # One process per cache folder.
    with pytest.raises(CacheInUse):
        BlockCache(tmp_path / "c", capacity=1 << 30, block_size=1024)
    again.close()
    stem = key.stem(tmp_path / "c")
    # A map vouches only for the data file it was written with.
    saved_map = stem.with_suffix(".map").read_bytes()
    stem.with_suffix(".data").unlink()
    fresh = BlockCache(tmp_path / "c", capacity=1 << 30, block_size=1024)
    f3 = fresh.open(key, size)
    assert f3.missing(0, 5) == [0, 1, 2, 3, 4, 5]
    fresh.release(f3)
    fresh.close()
    # A map that does not parse is not trusted either.
    stem.with_suffix(".map").write_bytes(b"garbage")
    third = BlockCache(tmp_path / "c", capacity=1 << 30, block_size=1024)
    f4 = third.open(key, size)
    assert f4.missing(0, 5) == [0, 1, 2, 3, 4, 5] and saved_map != b"garbage"
    third.release(f4)
    third.close()
    # A data file left without a map (a crash before its first save) is removed at the next start.
    orphan = CacheKey("feedbeef-uuid", "x").stem(tmp_path / "c").with_suffix(".data")
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"partial")
    os.utime(orphan, (1, 1))
    fourth = BlockCache(tmp_path / "c", capacity=1 << 30, block_size=1024)
    fourth.scan()
    assert not orphan.exists() and not orphan.parent.exists()
    fourth.close()


def test_cache_lru_never_evicts_open_files(tmp_path):
    from artifactfs.mount.cache import BlockCache, CacheKey

    cache = BlockCache(tmp_path / "c", capacity=4096, block_size=1024)
    keys = [CacheKey(f"uuid-{i}", "f") for i in range(4)]
    files = [cache.open(k, 2048) for k in keys[:2]]
    for f in files:
        f.write(0, b"a" * 2048)
    assert cache.total_bytes == 4096
    cache.release(files[0])  # closed: may go
    third = cache.open(keys[2], 2048)
    third.write(0, b"b" * 2048)
    assert cache.total_bytes == 4096
    assert not keys[0].stem(cache.root).with_suffix(".data").exists()  # the least recently used, closed one
    assert files[1].pread(0, 2048) == b"a" * 2048
    fourth = cache.open(keys[3], 2048)
    fourth.write(0, b"c" * 2048)  # everything is open: over the bound rather than evict
    assert cache.total_bytes == 6144
    for f in (files[1], third, fourth):
        cache.release(f)
    assert cache.total_bytes <= 4096
    assert keys[3].stem(cache.root).with_suffix(".data").exists()


def test_repointed_versions_are_followed(tree, data, tmp_path):
    """A migration may re-point a live version (store, uri): the next refresh
    forgets the old record, and ``reopen`` reads it afresh at once."""
    from sqlalchemy import update

    from artifactfs.index import bump_generation, get_index
    from artifactfs.index.models import VersionRow

    tree.refresh()
    node = resolve(tree, "artifacts/ckpt/1/model.bin")
    old = tree.open(node.inode)
    with get_index().write() as session:
        session.execute(update(VersionRow).where(VersionRow.id == data["ckpt"]._pk).values(
            uri=str(tmp_path / "moved")))
        bump_generation(session)
    assert tree.open(node.inode).uri == old.uri  # still the cached record
    assert tree.reopen(node.inode).uri == str(tmp_path / "moved" / "model.bin")
    with get_index().write() as session:
        session.execute(update(VersionRow).where(VersionRow.id == data["ckpt"]._pk).values(
            uri=str(tmp_path / "again")))
        bump_generation(session)
    assert tree.refresh() is not None
    assert tree.open(node.inode).uri == str(tmp_path / "again" / "model.bin")
    assert tree.getattr(node.inode) == node  # nothing the kernel sees changed


# -- the disk reader threads ---------------------------------------------------------------------


def test_disk_pool_serves_calls_at_once_and_hands_back_their_outcome():
    """Four reads waiting on the disk at once are in flight together (each
    call here returns only when all four run); an error is raised in the
    caller; a cancelled caller waits for its call to end."""
    import threading
    import time

    import trio

    from artifactfs.mount.diskpool import DiskPool

    pool = DiskPool(4)
    together = threading.Barrier(4, timeout=10)

    def read(i: int) -> int:
        together.wait()  # BrokenBarrierError unless four calls run at once
        return i

    async def main() -> None:
        results = []

        async def one(i: int) -> None:
            results.append(await pool.run(read, i))

        async with trio.open_nursery() as nursery:
            for i in range(4):
                nursery.start_soon(one, i)
        assert sorted(results) == [0, 1, 2, 3]
        with pytest.raises(FileNotFoundError):
            await pool.run(os.stat, "/nonexistent/payload.bin")
        done = threading.Event()
        with trio.move_on_after(0.05):
            await pool.run(lambda: (time.sleep(0.3), done.set()))
        assert done.is_set()  # the call ended before its caller went on
        assert pool.waiting == 0

    try:
        trio.run(main)
    finally:
        pool.close()
