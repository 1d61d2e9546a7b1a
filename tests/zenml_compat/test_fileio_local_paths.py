"""``fileio`` and ``io_utils`` on plain local paths, as ZenML users call them.

tests/test_stores.py checks every function on every store flavor; this file
checks the rules a ZenML user's code meets on local paths outside every
store, where ZenML's ``fileio`` is a thin layer over the local file system:
bytes paths, generators, ``mkdir``'s parent rule, the small path helpers of
``io_utils`` and its config directory. Each test is artifactfs's own.
"""

from __future__ import annotations

import os
import types
from pathlib import Path

import pytest

from artifactfs import fileio, io_utils
from artifactfs.settings import ENV_CONFIG_DIR


def _touch(path: Path, text: str = "x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_convert_to_str_decodes_bytes_and_keeps_str(tmp_path):
    assert fileio.convert_to_str(os.fsencode(str(tmp_path))) == str(tmp_path)
    assert fileio.convert_to_str("plain") == "plain"


def test_bytes_paths_work_like_str_paths(tmp_path):
    _touch(tmp_path / "b.txt", "bytes")
    raw = os.fsencode(str(tmp_path / "b.txt"))
    assert fileio.exists(raw)
    assert not fileio.isdir(raw)
    assert fileio.size(raw) == 5
    assert fileio.listdir(os.fsencode(str(tmp_path))) == ["b.txt"]


def test_walk_and_find_files_are_lazy_generators(tmp_path):
    _touch(tmp_path / "one" / "a_file.txt")
    _touch(tmp_path / "two.txt")
    walked = fileio.walk(str(tmp_path))
    assert isinstance(walked, types.GeneratorType)
    top, dirs, files = next(walked)
    assert (top, dirs, files) == (str(tmp_path), ["one"], ["two.txt"])

    found = io_utils.find_files(str(tmp_path), "a_f*.*")
    assert isinstance(found, types.GeneratorType)
    assert list(found) == [str(tmp_path / "one" / "a_file.txt")]
    with pytest.raises(StopIteration):
        next(io_utils.find_files(str(tmp_path), "nothing*"))


def test_listdir_of_a_file_or_missing_path_is_empty_and_glob_gives_full_paths(tmp_path):
    a = _touch(tmp_path / "a.txt")
    assert fileio.listdir(str(a)) == []
    assert fileio.listdir(str(tmp_path / "ghost")) == []
    assert fileio.glob(f"{tmp_path}/*.txt") == [str(a)]


def test_mkdir_needs_its_parent_and_makedirs_does_not(tmp_path):
    with pytest.raises(FileNotFoundError):
        fileio.mkdir(str(tmp_path / "no" / "parent"))
    assert not (tmp_path / "no").exists()
    fileio.makedirs(str(tmp_path / "no" / "parent"))
    assert (tmp_path / "no" / "parent").is_dir()
    fileio.mkdir(str(tmp_path / "no" / "sibling"))
    assert (tmp_path / "no" / "sibling").is_dir()


def test_stat_size_and_remove_of_local_files(tmp_path):
    f = _touch(tmp_path / "d" / "f.txt", "12345")
    _touch(tmp_path / "d" / "sub" / "g.txt", "678")
    assert isinstance(fileio.stat(str(f)), os.stat_result)
    assert fileio.stat(str(f)).st_size == 5
    assert fileio.size(str(tmp_path / "d")) == 8
    assert fileio.size(str(tmp_path / "empty-missing")) == 0
    with pytest.raises(FileNotFoundError):
        fileio.stat(str(tmp_path / "ghost"))
    fileio.remove(str(f))
    assert not f.exists()


def test_copy_and_rename_keep_an_existing_target_unless_told(tmp_path):
    src, dst = _touch(tmp_path / "src.txt", "new"), _touch(tmp_path / "dst.txt", "old")
    with pytest.raises(FileExistsError):
        fileio.copy(str(src), str(dst))
    with pytest.raises(FileExistsError):
        fileio.rename(str(src), str(dst))
    assert dst.read_text() == "old"
    fileio.copy(str(src), str(dst), overwrite=True)
    assert dst.read_text() == "new" and src.exists()
    fileio.rename(str(src), str(tmp_path / "moved.txt"))
    assert not src.exists() and (tmp_path / "moved.txt").read_text() == "new"


def test_rmtree_removes_nested_folders_and_refuses_a_file(tmp_path):
    _touch(tmp_path / "t" / "u" / "v.txt")
    with pytest.raises(TypeError):
        fileio.rmtree(str(tmp_path / "t" / "u" / "v.txt"))
    fileio.rmtree(str(tmp_path / "t"))
    assert not (tmp_path / "t").exists()


def test_is_root_only_for_the_file_system_root(tmp_path):
    assert io_utils.is_root("/") is True
    assert io_utils.is_root(tmp_path) is False
    assert io_utils.is_root(str(tmp_path)) is False


def test_global_config_directory_exists_and_follows_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_CONFIG_DIR, raising=False)
    default = io_utils.get_global_config_directory()
    assert isinstance(default, str) and os.path.isdir(default)
    monkeypatch.setenv(ENV_CONFIG_DIR, str(tmp_path / "cfg"))
    assert io_utils.get_global_config_directory() == str(tmp_path / "cfg")
    assert (tmp_path / "cfg").is_dir()


def test_create_file_if_not_exists_never_overwrites(tmp_path):
    target = tmp_path / "deep" / "cfg.json"
    io_utils.create_file_if_not_exists(str(target))
    assert target.read_text() == "{}"  # ZenML's default content
    target.write_text("mine")
    io_utils.create_file_if_not_exists(str(target), file_contents="other")
    assert target.read_text() == "mine"


def test_create_dir_helpers(tmp_path):
    io_utils.create_dir_if_not_exists(str(tmp_path / "a"))
    io_utils.create_dir_if_not_exists(str(tmp_path / "a"))  # twice is fine
    io_utils.create_dir_recursive_if_not_exists(str(tmp_path / "b" / "c" / "d"))
    assert (tmp_path / "a").is_dir() and (tmp_path / "b" / "c" / "d").is_dir()


def test_resolve_relative_path_is_against_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert io_utils.resolve_relative_path(".") == str(tmp_path)
    assert io_utils.resolve_relative_path("x/y") == str(tmp_path / "x" / "y")
    assert io_utils.resolve_relative_path("gs://bucket/x") == "gs://bucket/x"  # remote: untouched


def test_move_moves_files_and_folders(tmp_path):
    _touch(tmp_path / "f.txt", "f")
    io_utils.move(str(tmp_path / "f.txt"), str(tmp_path / "g.txt"))
    assert not (tmp_path / "f.txt").exists() and (tmp_path / "g.txt").read_text() == "f"
    _touch(tmp_path / "folder" / "inner.txt", "i")
    io_utils.move(str(tmp_path / "folder"), str(tmp_path / "moved"))
    assert not (tmp_path / "folder").exists()
    assert (tmp_path / "moved" / "inner.txt").read_text() == "i"


def test_copy_dir_copies_into_a_new_folder_inside_the_source(tmp_path):
    _touch(tmp_path / "new_file.txt", "n")
    _touch(tmp_path / "sub" / "inner.txt", "i")
    io_utils.copy_dir(str(tmp_path), str(tmp_path / "copy"))
    assert (tmp_path / "copy" / "new_file.txt").read_text() == "n"
    assert (tmp_path / "copy" / "sub" / "inner.txt").read_text() == "i"
    assert not (tmp_path / "copy" / "inner.txt").exists()
    assert not (tmp_path / "copy" / "copy").exists()


def test_parent_and_grandparent_are_folder_names(tmp_path):
    deep = tmp_path / "new_dir" / "new_dir2"
    deep.mkdir(parents=True)
    assert io_utils.get_parent(str(deep)) == "new_dir"
    assert io_utils.get_grandparent(str(deep)) == tmp_path.name
    with pytest.raises(ValueError):
        io_utils.get_parent(str(tmp_path / "ghost"))


@pytest.mark.parametrize("prefix", io_utils.REMOTE_FS_PREFIX)
def test_every_remote_prefix_is_remote(prefix):
    assert io_utils.is_remote(f"{prefix}bucket/key")


@pytest.mark.parametrize("path", ["", "/tmp/x", "relative/s3://x", "file:///x", "s3:/one-slash", "S3://upper"])
def test_other_paths_are_not_remote(path):
    assert io_utils.is_remote(path) is False


def test_zenmls_remote_prefixes_are_all_there():
    assert {"gs://", "hdfs://", "s3://", "az://", "abfs://"} <= set(io_utils.REMOTE_FS_PREFIX)


def test_sanitize_remote_path_turns_backslashes_only_in_remote_paths():
    assert io_utils.sanitize_remote_path("s3://bucket\\a\\b") == "s3://bucket/a/b"
    assert io_utils.sanitize_remote_path("C:\\local\\x") == "C:\\local\\x"
