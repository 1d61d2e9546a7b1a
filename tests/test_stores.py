"""Stores: path confinement on every flavor, and every ``fileio`` / ``io_utils``
operation behaving the same on local folders, S3, GCS and Azure (real servers)."""

import os
import uuid

import stat

import pytest

import servers
from artifactfs import fileio, io_utils
from artifactfs.errors import PathEscapeError, StoreError

pytest_plugins = ["store_fixtures"]

OTHER_BUCKET = "artifactfs-other"
_OTHER_MADE: set = set()


# -- helpers -------------------------------------------------------------------


def _join(root: str, rel: str) -> str:
    return f"{root.rstrip('/')}/{rel}" if rel else root


def _write(uri: str, data: bytes) -> None:
    with fileio.open(uri, "wb") as f:
        f.write(data)


def _read(uri: str) -> bytes:
    with fileio.open(uri, "rb") as f:
        return f.read()


def _tree(root: str, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        _write(_join(root, rel), data)


TREE = {"a.txt": b"alpha", "d/b.txt": b"bravo!", "d/e/c.bin": b"\x00\x01\x02"}


@pytest.fixture
def root(registered_store):
    """The root URI of a fresh store of each flavor, registered and active, as
    a plain empty folder (without the marker registration puts in a local root)."""
    from artifactfs.stores.marker import MARKER_NAME

    if registered_store.exists(MARKER_NAME):
        registered_store.remove(MARKER_NAME)
    return registered_store.path


def _new_root(request, flavor: str) -> tuple[str, dict]:
    """(root URI, options) of another fresh, empty root of ``flavor``."""
    if flavor == "local":
        folder = request.getfixturevalue("tmp_path") / f"local-{uuid.uuid4().hex[:8]}"
        folder.mkdir()
        return str(folder), {}
    from store_fixtures import _bucket

    return _bucket(request, flavor)


def _register(request, flavor: str, name: str):
    from artifactfs.api import register_store

    path, options = _new_root(request, flavor)
    return register_store(name, flavor, path, dict(options))


# =============================================================================
# fileio on every flavor (through the registered store whose root holds the URI)
# =============================================================================


def test_open_text_and_binary_roundtrip(root):
    text_uri, bin_uri = _join(root, "notes/hello.txt"), _join(root, "blob.bin")
    with fileio.open(text_uri, "w") as f:
        f.write("héllo\nwörld\n")
    with fileio.open(text_uri, "r") as f:
        assert f.read() == "héllo\nwörld\n"
    payload = bytes(range(256))
    with fileio.open(bin_uri, "wb") as f:
        f.write(payload)
    with fileio.open(bin_uri, "rb") as f:
        assert f.read() == payload
    # Writing again replaces the content.
    with fileio.open(bin_uri, "wb") as f:
        f.write(b"short")
    assert _read(bin_uri) == b"short"


@pytest.mark.parametrize("mode", ["r", "rb"])
def test_open_missing_file_raises_file_not_found(root, mode):
    with pytest.raises(FileNotFoundError):
        fileio.open(_join(root, "missing.txt"), mode)


def test_open_folder_for_reading_or_writing_is_refused(root):
    _tree(root, TREE)
    with pytest.raises(FileNotFoundError):
        fileio.open(_join(root, "d"), "rb")
    with pytest.raises(IsADirectoryError):
        fileio.open(_join(root, "d"), "wb")
    # Nothing was created where the folder is.
    assert fileio.isdir(_join(root, "d"))
    assert stat.S_ISDIR(fileio.stat(_join(root, "d")).st_mode)


def test_exists_and_isdir(root):
    _tree(root, TREE)
    assert fileio.exists(_join(root, "a.txt"))
    assert fileio.exists(_join(root, "d"))
    assert fileio.exists(_join(root, "d/e/c.bin"))
    assert not fileio.exists(_join(root, "nope"))
    assert not fileio.exists(_join(root, "d/nope"))
    assert fileio.isdir(_join(root, "d"))
    assert fileio.isdir(_join(root, "d/e"))
    assert fileio.isdir(root)
    assert not fileio.isdir(_join(root, "a.txt"))
    assert not fileio.isdir(_join(root, "nope"))


def test_empty_store_root_is_an_empty_folder(root):
    assert fileio.exists(root)
    assert fileio.isdir(root)
    assert fileio.listdir(root) == []
    assert fileio.size(root) == 0
    assert list(fileio.walk(root)) == [(root, [], [])]
    assert fileio.glob(_join(root, "*")) == []
    assert stat.S_ISDIR(fileio.stat(root).st_mode)


def test_listdir_returns_sorted_names(root):
    _tree(root, TREE)
    assert fileio.listdir(root) == ["a.txt", "d"]
    assert fileio.listdir(_join(root, "d")) == ["b.txt", "e"]
    assert fileio.listdir(_join(root, "d/e")) == ["c.bin"]
    # ZenML's rule: a path that is no folder lists as empty.
    assert fileio.listdir(_join(root, "nope")) == []
    assert fileio.listdir(_join(root, "a.txt")) == []


def test_glob(root):
    _tree(root, TREE | {"d/z.csv": b"1,2"})
    assert fileio.glob(_join(root, "d/*.txt")) == [_join(root, "d/b.txt")]
    assert fileio.glob(_join(root, "*")) == [_join(root, "a.txt"), _join(root, "d")]
    assert fileio.glob(_join(root, "**/*.txt")) == [_join(root, "a.txt"), _join(root, "d/b.txt")]
    assert fileio.glob(_join(root, "nothing/*")) == []


def test_walk_is_top_down_with_full_uris(root):
    _tree(root, TREE)
    assert list(fileio.walk(root)) == [
        (root, ["d"], ["a.txt"]),
        (_join(root, "d"), ["e"], ["b.txt"]),
        (_join(root, "d/e"), [], ["c.bin"]),
    ]
    assert list(fileio.walk(_join(root, "d/e"))) == [(_join(root, "d/e"), [], ["c.bin"])]


def test_stat_and_size(root):
    _tree(root, TREE)
    info = fileio.stat(_join(root, "d/b.txt"))  # an os.stat_result on every flavor, as ZenML's
    assert stat.S_ISREG(info.st_mode)
    assert info.st_size == len(b"bravo!")
    assert stat.S_ISDIR(fileio.stat(_join(root, "d")).st_mode)
    assert fileio.size(_join(root, "a.txt")) == 5
    assert fileio.size(_join(root, "d")) == 6 + 3  # recursive
    assert fileio.size(root) == 5 + 6 + 3
    with pytest.raises(FileNotFoundError):
        fileio.stat(_join(root, "nope"))
    assert fileio.size(_join(root, "nope")) == 0  # ZenML's rule


def test_makedirs_and_mkdir(root):
    # Object stores have no empty folders: a folder shows once a file is inside.
    fileio.makedirs(_join(root, "x/y/z"))
    fileio.makedirs(_join(root, "x/y/z"))  # idempotent
    _write(_join(root, "x/y/z/f"), b"f")
    assert fileio.isdir(_join(root, "x/y"))
    assert fileio.isdir(_join(root, "x/y/z"))
    fileio.mkdir(_join(root, "m"))
    _write(_join(root, "m/f"), b"f")
    assert fileio.listdir(_join(root, "m")) == ["f"]
    fileio.mkdir(_join(root, "m"))  # an existing folder is fine
    assert fileio.listdir(_join(root, "m")) == ["f"]
    # A file is never turned into a folder.
    _write(_join(root, "file"), b"data")
    with pytest.raises(FileExistsError):
        fileio.mkdir(_join(root, "file"))
    with pytest.raises(FileExistsError):
        fileio.makedirs(_join(root, "file"))
    assert _read(_join(root, "file")) == b"data"


def test_remove(root):
    _tree(root, TREE)
    fileio.remove(_join(root, "d/b.txt"))
    assert not fileio.exists(_join(root, "d/b.txt"))
    assert fileio.exists(_join(root, "d/e/c.bin"))
    with pytest.raises(FileNotFoundError):
        fileio.remove(_join(root, "d/b.txt"))
    with pytest.raises(FileNotFoundError):
        fileio.remove(_join(root, "nope"))
    # remove() takes files only; a folder stays.
    with pytest.raises(FileNotFoundError):
        fileio.remove(_join(root, "d"))
    assert fileio.exists(_join(root, "d/e/c.bin"))


def test_rmtree(root):
    _tree(root, TREE)
    fileio.rmtree(_join(root, "d"))
    assert not fileio.exists(_join(root, "d"))
    assert not fileio.exists(_join(root, "d/e/c.bin"))
    assert fileio.listdir(root) == ["a.txt"]
    with pytest.raises(FileNotFoundError):
        fileio.rmtree(_join(root, "d"))
    with pytest.raises(TypeError):  # ZenML's error for a file
        fileio.rmtree(_join(root, "a.txt"))
    assert _read(_join(root, "a.txt")) == b"alpha"


def test_rename_file(root):
    _tree(root, TREE)
    fileio.rename(_join(root, "a.txt"), _join(root, "moved/a2.txt"))
    assert not fileio.exists(_join(root, "a.txt"))
    assert _read(_join(root, "moved/a2.txt")) == b"alpha"
    # An existing target is kept unless overwrite=True.
    with pytest.raises(FileExistsError):
        fileio.rename(_join(root, "d/b.txt"), _join(root, "moved/a2.txt"))
    assert _read(_join(root, "moved/a2.txt")) == b"alpha"
    assert _read(_join(root, "d/b.txt")) == b"bravo!"
    fileio.rename(_join(root, "d/b.txt"), _join(root, "moved/a2.txt"), overwrite=True)
    assert _read(_join(root, "moved/a2.txt")) == b"bravo!"
    assert not fileio.exists(_join(root, "d/b.txt"))
    with pytest.raises(FileNotFoundError):
        fileio.rename(_join(root, "nope"), _join(root, "nope2"))
    assert not fileio.exists(_join(root, "nope2"))


def test_rename_folder(root):
    _tree(root, TREE | {"other/keep": b"k"})
    fileio.rename(_join(root, "d"), _join(root, "d2"))
    assert not fileio.exists(_join(root, "d"))
    assert _read(_join(root, "d2/b.txt")) == b"bravo!"
    assert _read(_join(root, "d2/e/c.bin")) == b"\x00\x01\x02"
    with pytest.raises(FileExistsError):
        fileio.rename(_join(root, "d2"), _join(root, "other"))
    assert _read(_join(root, "d2/b.txt")) == b"bravo!"
    fileio.rename(_join(root, "d2"), _join(root, "other"), overwrite=True)
    assert sorted(io_utils.find_files(_join(root, "other"), "*")) == [
        _join(root, "other/b.txt"),
        _join(root, "other/e/c.bin"),
    ]
    assert not fileio.exists(_join(root, "d2"))


def test_copy_within_store(root):
    _tree(root, TREE)
    fileio.copy(_join(root, "a.txt"), _join(root, "new/dir/a.txt"))
    assert _read(_join(root, "new/dir/a.txt")) == b"alpha"
    assert _read(_join(root, "a.txt")) == b"alpha"
    with pytest.raises(FileExistsError):
        fileio.copy(_join(root, "d/b.txt"), _join(root, "new/dir/a.txt"))
    assert _read(_join(root, "new/dir/a.txt")) == b"alpha"
    fileio.copy(_join(root, "d/b.txt"), _join(root, "new/dir/a.txt"), overwrite=True)
    assert _read(_join(root, "new/dir/a.txt")) == b"bravo!"
    with pytest.raises(FileNotFoundError):
        fileio.copy(_join(root, "nope"), _join(root, "nope-copy"))
    assert not fileio.exists(_join(root, "nope-copy"))
    # copy() takes one file; a folder is not copied onto, even with overwrite.
    with pytest.raises(IsADirectoryError):
        fileio.copy(_join(root, "a.txt"), _join(root, "d"), overwrite=True)
    assert fileio.isdir(_join(root, "d"))


def test_rename_across_stores_is_refused(request, root, store_flavor):
    other = _register(request, store_flavor, "second")
    _write(_join(root, "f"), b"f")
    with pytest.raises(StoreError, match="different stores"):
        fileio.rename(_join(root, "f"), _join(other.path, "f"))
    assert fileio.exists(_join(root, "f"))
    assert not fileio.exists(_join(other.path, "f"))


# -- copy across stores and flavors -----------------------------------------------

CROSS = [
    ("local", "s3"), ("s3", "local"), ("local", "gcs"), ("gcs", "local"),
    ("local", "azure"), ("azure", "local"), ("s3", "gcs"), ("gcs", "azure"),
    ("azure", "s3"), ("s3", "s3"), ("local", "local"),
]


@pytest.mark.parametrize(("src_flavor", "dst_flavor"), CROSS, ids=[f"{a}-to-{b}" for a, b in CROSS])
def test_copy_across_stores(request, artifactfs_home, src_flavor, dst_flavor):
    src = _register(request, src_flavor, "src").path
    dst = _register(request, dst_flavor, "dst").path
    payload = os.urandom(3000)
    _write(_join(src, "in/data.bin"), payload)
    _write(_join(src, "other.bin"), b"other")

    fileio.copy(_join(src, "in/data.bin"), _join(dst, "out/deep/data.bin"))
    assert _read(_join(dst, "out/deep/data.bin")) == payload
    assert _read(_join(src, "in/data.bin")) == payload

    with pytest.raises(FileExistsError):
        fileio.copy(_join(src, "other.bin"), _join(dst, "out/deep/data.bin"))
    assert _read(_join(dst, "out/deep/data.bin")) == payload
    fileio.copy(_join(src, "other.bin"), _join(dst, "out/deep/data.bin"), overwrite=True)
    assert _read(_join(dst, "out/deep/data.bin")) == b"other"

    with pytest.raises(FileNotFoundError):
        fileio.copy(_join(src, "nope.bin"), _join(dst, "nope.bin"))
    assert not fileio.exists(_join(dst, "nope.bin"))

    # And the folder version.
    _tree(src, {"tree/x": b"x", "tree/sub/y": b"yy"})
    io_utils.copy_dir(_join(src, "tree"), _join(dst, "tree-copy"))
    assert sorted(io_utils.find_files(_join(dst, "tree-copy"), "*")) == [
        _join(dst, "tree-copy/sub/y"),
        _join(dst, "tree-copy/x"),
    ]
    assert _read(_join(dst, "tree-copy/sub/y")) == b"yy"


def test_copy_between_plain_local_files_and_a_store(root, tmp_path):
    """Local paths outside every store are plain files: upload and download."""
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "up.bin").write_bytes(b"upload")
    fileio.copy(str(plain / "up.bin"), _join(root, "up.bin"))
    assert _read(_join(root, "up.bin")) == b"upload"
    fileio.copy(_join(root, "up.bin"), str(plain / "down" / "down.bin"))
    assert (plain / "down" / "down.bin").read_bytes() == b"upload"
    with pytest.raises(FileExistsError):
        fileio.copy(str(plain / "up.bin"), _join(root, "up.bin"))
    with pytest.raises(FileNotFoundError):
        fileio.copy(str(plain / "nope.bin"), _join(root, "nope.bin"))
    assert not fileio.exists(_join(root, "nope.bin"))
    with pytest.raises(FileNotFoundError):
        fileio.copy(_join(root, "nope.bin"), str(plain / "nope.bin"))
    assert not (plain / "nope.bin").exists()


def test_relative_paths_are_relative_to_the_working_directory(root, tmp_path, monkeypatch):
    """A relative path is a local file under the current folder, never a path
    inside some store's root."""
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    io_utils.write_file_contents_as_string("rel.txt", "here")
    assert (work / "rel.txt").read_text() == "here"
    assert fileio.exists("rel.txt")
    fileio.copy("rel.txt", _join(root, "rel.txt"))
    assert _read(_join(root, "rel.txt")) == b"here"


# =============================================================================
# io_utils on every flavor
# =============================================================================


def test_read_and_write_file_contents_as_string(root):
    uri = _join(root, "cfg/settings.json")
    io_utils.write_file_contents_as_string(uri, '{"a": "é"}')
    assert io_utils.read_file_contents_as_string(uri) == '{"a": "é"}'
    io_utils.write_file_contents_as_string(uri, "replaced")
    assert io_utils.read_file_contents_as_string(uri) == "replaced"
    with pytest.raises(FileNotFoundError):
        io_utils.read_file_contents_as_string(_join(root, "nope.json"))
    with pytest.raises(TypeError):
        io_utils.write_file_contents_as_string(_join(root, "b.json"), b"bytes")  # type: ignore[arg-type]
    assert not fileio.exists(_join(root, "b.json"))


def test_copy_dir_within_store(root):
    _tree(root, TREE)
    io_utils.copy_dir(root + "/d", _join(root, "copy"))
    assert sorted(io_utils.find_files(_join(root, "copy"), "*")) == [
        _join(root, "copy/b.txt"),
        _join(root, "copy/e/c.bin"),
    ]
    assert _read(_join(root, "copy/e/c.bin")) == b"\x00\x01\x02"
    with pytest.raises(FileExistsError):
        io_utils.copy_dir(_join(root, "d"), _join(root, "copy"))
    _write(_join(root, "d/b.txt"), b"changed")
    io_utils.copy_dir(_join(root, "d"), _join(root, "copy"), overwrite=True)
    assert _read(_join(root, "copy/b.txt")) == b"changed"


def test_copy_dir_to_and_from_plain_local_folder(root, tmp_path):
    local = tmp_path / "tree"
    (local / "sub").mkdir(parents=True)
    (local / "one").write_bytes(b"1")
    (local / "sub" / "two").write_bytes(b"22")
    io_utils.copy_dir(str(local), _join(root, "up"))
    assert _read(_join(root, "up/sub/two")) == b"22"
    io_utils.copy_dir(_join(root, "up"), str(tmp_path / "down"))
    assert (tmp_path / "down" / "one").read_bytes() == b"1"
    assert (tmp_path / "down" / "sub" / "two").read_bytes() == b"22"


def test_find_files(root):
    _tree(root, TREE | {"d/e/deep.txt": b"t"})
    assert sorted(io_utils.find_files(root, "*.txt")) == [
        _join(root, "a.txt"),
        _join(root, "d/b.txt"),
        _join(root, "d/e/deep.txt"),
    ]
    assert list(io_utils.find_files(root, "*.bin")) == [_join(root, "d/e/c.bin")]
    assert list(io_utils.find_files(root, "*.nothing")) == []


def test_create_dir_and_file_if_not_exists(root):
    io_utils.create_dir_if_not_exists(_join(root, "newdir"))
    io_utils.create_file_if_not_exists(_join(root, "newdir/conf.json"))
    assert io_utils.read_file_contents_as_string(_join(root, "newdir/conf.json")) == "{}"
    assert fileio.isdir(_join(root, "newdir"))
    # An existing file is left alone.
    io_utils.write_file_contents_as_string(_join(root, "newdir/conf.json"), '{"k": 1}')
    io_utils.create_file_if_not_exists(_join(root, "newdir/conf.json"), "overwritten?")
    assert io_utils.read_file_contents_as_string(_join(root, "newdir/conf.json")) == '{"k": 1}'
    io_utils.create_dir_if_not_exists(_join(root, "newdir"))
    assert fileio.listdir(_join(root, "newdir")) == ["conf.json"]
    io_utils.create_file_if_not_exists(_join(root, "other.txt"), "content")
    assert io_utils.read_file_contents_as_string(_join(root, "other.txt")) == "content"


def test_is_remote(root, store_flavor):
    assert io_utils.is_remote(_join(root, "x")) == (store_flavor != "local")
    assert not io_utils.is_remote("/tmp/x")
    assert not io_utils.is_remote("relative/x")
    assert not io_utils.is_remote("file:///tmp/x")
    assert io_utils.is_remote("s3://bucket/x")
    assert io_utils.is_remote("gs://bucket/x")
    assert io_utils.is_remote("az://container/x")


def test_is_path_within_directory(root):
    assert io_utils.is_path_within_directory(_join(root, "a/b"), root)
    assert io_utils.is_path_within_directory(_join(root, "a/b"), _join(root, "a"))
    assert io_utils.is_path_within_directory(root, root)
    assert not io_utils.is_path_within_directory(root + "2/x", root)  # sibling prefix
    assert not io_utils.is_path_within_directory(_join(root, "../x"), root)
    assert not io_utils.is_path_within_directory(_join(root, "a/../../x"), root)
    assert io_utils.is_path_within_directory(_join(root, "a/../b"), root)
    assert not io_utils.is_path_within_directory(root, _join(root, "a"))
    assert not io_utils.is_path_within_directory("s3://bucket/p/x", "gs://bucket/p")


# =============================================================================
# Confinement: every flavor refuses paths that lead out of its root
# =============================================================================


def _other_bucket(request, flavor):
    """An existing second bucket (so that an escape into it would succeed)."""
    make, fixture = {
        "s3": (servers.s3_bucket, "moto_server"),
        "gcs": (servers.gcs_bucket, "gcs_server"),
        "azure": (servers.azure_container, "azurite_server"),
    }[flavor]
    server = request.getfixturevalue(fixture)
    if (id(server), OTHER_BUCKET) not in _OTHER_MADE:
        make(server, OTHER_BUCKET)
        _OTHER_MADE.add((id(server), OTHER_BUCKET))


@pytest.fixture
def jail(request, flavor_store, tmp_path):
    """(store, attacks): every attack is a path outside the store's root that
    names an existing place, so a confinement bug would really reach it."""
    store = flavor_store
    if store.is_local:
        root = store.path
        sibling = root + "2"  # '/…/store2' beside '/…/store'
        os.makedirs(sibling)
        outside = tmp_path / "outside"
        outside.mkdir()
        (outside / "sentinel").write_bytes(b"SENTINEL")
        attacks = {
            "dotdot": "../outside/sentinel",
            "dotdot-nested": "a/../../outside/sentinel",
            "absolute": str(outside / "sentinel"),
            "absolute-dotdot": root + "/../outside/sentinel",
            "sibling-prefix": sibling + "/x",
            "file-uri": f"file://{outside}/sentinel",
            "other-scheme": "s3://artifactfs-test/x",
            "nul": "a\x00b",
        }
    else:
        _other_bucket(request, store.flavor.name)
        scheme, rest = store.path.split("://", 1)
        bucket, prefix = rest.split("/", 1)
        other_scheme = {"s3": "gs", "gs": "az", "az": "s3"}[scheme]
        attacks = {
            "dotdot": f"../{prefix}2/x",
            "dotdot-nested": "a/../../x",
            "absolute": f"/{bucket}/{prefix}/x",
            "uri-dotdot": f"{store.path}/../{prefix}2/x",
            "sibling-prefix": f"{store.path}2/x",
            "other-bucket": f"{scheme}://{OTHER_BUCKET}/{prefix}/x",
            "other-scheme": f"{other_scheme}://{bucket}/{prefix}/x",
            "nul": "a\x00b",
        }
    return store, attacks


def _outside_untouched(store, tmp_path):
    """Nothing appeared outside the root: the sentinel is intact, no object
    was written to the sibling prefix or the other bucket."""
    if store.is_local:
        assert (tmp_path / "outside" / "sentinel").read_bytes() == b"SENTINEL"
        assert sorted(p.name for p in (tmp_path / "outside").iterdir()) == ["sentinel"]
        assert os.listdir(store.path + "2") == []
        assert sorted(os.listdir(tmp_path)) == ["outside", "store", "store2"]
        return
    bucket, prefix = store.root.split("/", 1)
    fs = store.fs
    fs.invalidate_cache()
    assert not fs.exists(f"{bucket}/{prefix}2/x")
    assert not fs.exists(f"{bucket}/x")
    assert fs.find(f"{OTHER_BUCKET}/{prefix}") == []


def _assert_refused(store, path, call):
    with pytest.raises(PathEscapeError) as caught:
        call()
    message = str(caught.value)
    assert repr(store.name) in message, message
    assert repr(path) in message, message


ATTACKS = ["dotdot", "dotdot-nested", "absolute", "sibling-prefix", "other-scheme", "nul"]


@pytest.mark.parametrize("attack", ATTACKS + ["flavor-specific"])
def test_resolve_refuses_escapes(jail, attack, tmp_path):
    store, attacks = jail
    names = [k for k in attacks if k not in ATTACKS] if attack == "flavor-specific" else [attack]
    for name in names:
        path = attacks[name]
        _assert_refused(store, path, lambda: store.resolve(path))
        assert not store.contains(path)


def _io_calls(store, path):
    inside = "inside.bin"
    return {
        "open-r": lambda: store.open(path, "rb"),
        "open-w": lambda: store.open(path, "wb"),
        "open-w-text": lambda: store.open(path, "w"),
        "exists": lambda: store.exists(path),
        "isdir": lambda: store.isdir(path),
        "isfile": lambda: store.isfile(path),
        "listdir": lambda: store.listdir(path),
        "glob": lambda: store.glob(path),
        "walk": lambda: list(store.walk(path)),
        "find": lambda: store.find(path),
        "stat": lambda: store.stat(path),
        "size": lambda: store.size(path),
        "makedirs": lambda: store.makedirs(path),
        "mkdir": lambda: store.mkdir(path),
        "remove": lambda: store.remove(path),
        "rmtree": lambda: store.rmtree(path),
        "copy-to": lambda: store.copy(inside, path, overwrite=True),
        "copy-from": lambda: store.copy(path, "stolen.bin", overwrite=True),
        "rename-to": lambda: store.rename(inside, path, overwrite=True),
        "rename-from": lambda: store.rename(path, "stolen.bin", overwrite=True),
        "read-bytes": lambda: store.read_bytes(path),
        "read-range": lambda: list(store.read_range(path, 0, 1)),
        "put": lambda: store.put(__file__, path),
        "get": lambda: store.get(path, os.devnull),
        "uri": lambda: store.uri(path),
        "relpath": lambda: store.relpath(path),
    }


IO_METHODS = list(_io_calls(None, "x"))


@pytest.mark.parametrize("method", IO_METHODS)
def test_io_methods_refuse_escapes(jail, method, tmp_path):
    store, attacks = jail
    with store.open("inside.bin", "wb") as f:
        f.write(b"inside")
    for path in attacks.values():
        _assert_refused(store, path, _io_calls(store, path)[method])
    _outside_untouched(store, tmp_path)
    assert store.read_bytes("inside.bin") == b"inside"
    assert not store.exists("stolen.bin")


def test_read_range_in_pieces(flavor_store):
    """The ranged, streamed read every flavor has: any range, in order, in
    pieces of at most ``chunk`` bytes; a range past the end names the file."""
    store = flavor_store
    data = os.urandom(300_000)
    with store.open("blob.bin", "wb") as f:
        f.write(data)
    for start, end, chunk in ((0, len(data), 65_536), (1000, 1001, 10), (123, 250_123, 100_000), (5, 5, 7)):
        pieces = list(store.read_range("blob.bin", start, end, chunk))
        assert b"".join(pieces) == data[start:end]
        assert all(len(p) <= chunk for p in pieces) and all(len(p) == chunk for p in pieces[:-1])
    stream = store.read_range(store.uri("blob.bin"), 0, len(data), 100_000)
    assert next(stream) == data[:100_000]  # taken one piece at a time
    stream.close()
    with pytest.raises(EOFError, match="blob.bin.*ends at byte 300000"):
        list(store.read_range("blob.bin", 250_000, 400_000, 1 << 20))


@pytest.mark.parametrize("store_flavor", ["s3"])
def test_streamed_range_is_one_request(flavor_store):
    """A flavor that streams (S3) reads a range in ONE GetObject of its own
    client and hands it over in pieces of ``chunk`` bytes; counted with
    botocore's documented event hooks on s3fs's client."""
    store = flavor_store
    data = os.urandom(3 * 100_000 + 5)
    with store.open("blob.bin", "wb") as f:
        f.write(data)
    assert store.streams_ranges
    store.prepare_client()
    gets = []
    store.fs.s3.meta.events.register("before-send.s3.GetObject", lambda request, **_: gets.append(request))
    pieces = list(store.read_range("blob.bin", 3, len(data), 100_000))
    assert b"".join(pieces) == data[3:] and [len(p) for p in pieces] == [100_000, 100_000, 100_000, 2]
    assert len(gets) == 1 and gets[0].headers["Range"] == f"bytes=3-{len(data) - 1}".encode()
    with pytest.raises(FileNotFoundError):  # errors as the filesystem gives them
        list(store.read_range("missing.bin", 0, 10, 4))


def test_rmtree_of_the_root_is_refused(flavor_store):
    store = flavor_store
    with store.open("keep/me.txt", "wb") as f:
        f.write(b"keep")
    for path in ["", ".", "keep/..", store.path, store.path + "/", "a/b/../.."]:
        with pytest.raises(StoreError) as caught:
            store.rmtree(path)
        assert repr(store.name) in str(caught.value)
        assert repr(path) in str(caught.value)
        assert store.read_bytes("keep/me.txt") == b"keep"
    with pytest.raises(StoreError):
        store.rename("", "elsewhere")
    assert store.read_bytes("keep/me.txt") == b"keep"


def test_paths_inside_the_root_are_accepted(flavor_store):
    store = flavor_store
    assert store.resolve("") == store.root
    assert store.resolve("a/../b") == store.root + "/b"
    assert store.resolve(store.path + "/x/y") == store.root + "/x/y"
    assert store.uri("x/y") == store.path + "/x/y"
    assert store.relpath(store.path + "/x/y") == "x/y"
    assert store.relpath("") == ""
    assert store.contains(store.path + "/deep/er")
    assert not store.contains(store.path + "2/x")


def test_local_symlink_out_of_the_root_is_refused(tmp_path):
    from artifactfs.stores import ArtifactStore, get_flavor

    root = tmp_path / "store"
    (root / "ok").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "sentinel").write_bytes(b"SENTINEL")
    (root / "link").symlink_to(outside)
    (root / "filelink").symlink_to(outside / "sentinel")
    (root / "inner").symlink_to(root / "ok")  # a link that stays inside is not followed either
    store = ArtifactStore("jail", get_flavor("local"), str(root))

    for path in ["link/sentinel", "link/new", "filelink", str(root / "link" / "sentinel")]:
        _assert_refused(store, path, lambda: store.resolve(path))
        for method, call in _io_calls(store, path).items():
            if method in ("copy-to", "rename-to"):
                (root / "inside.bin").write_bytes(b"inside")
            _assert_refused(store, path, call)
    assert sorted(p.name for p in outside.iterdir()) == ["sentinel"]
    assert (outside / "sentinel").read_bytes() == b"SENTINEL"

    for path in ["inner/f.txt", "inner"]:  # a link that stays inside the root is not followed either
        for method, call in _io_calls(store, path).items():
            if method in ("uri", "relpath", "glob"):
                continue  # names only: nothing is read, written or deleted
            if method in ("copy-to", "rename-to"):
                (root / "inside.bin").write_bytes(b"inside")
            _assert_refused(store, path, call)
    assert list((root / "ok").iterdir()) == [] and (root / "inner").is_symlink()


@pytest.mark.parametrize("store_flavor", ["s3"])
def test_prepare_client_builds_the_s3_client_before_the_first_request(flavor_store, monkeypatch):
    """The mount prepares every store's client before it mounts
    (``prepare_client``). s3fs builds its botocore client on its first
    request unless ``connect`` is called: 0.13-0.2 s of CPU that the first
    read through a fresh mount paid (10-20% of a 256 MiB read on moto)."""
    import s3fs

    connected = []
    connect = s3fs.S3FileSystem.connect

    def spy(self, *args, **kwargs):
        connected.append(self)
        return connect(self, *args, **kwargs)

    monkeypatch.setattr(s3fs.S3FileSystem, "connect", spy, raising=True)
    store = flavor_store
    store.prepare_client()
    assert connected == [store.fs]
    with store.open("blob.bin", "wb") as f:  # the prepared client is the one that reads and writes
        f.write(b"prepared")
    assert b"".join(store.read_range("blob.bin", 0, 8)) == b"prepared"
    assert connected == [store.fs]
