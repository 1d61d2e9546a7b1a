"""ZenML-style helpers built on ``fileio`` (ZenML's ``zenml.utils.io_utils``):
whole-file text IO, folder copies across stores, recursive file search,
moves, and path checks."""

from __future__ import annotations

import fnmatch
import ntpath
import os
import posixpath
from collections.abc import Iterator
from pathlib import Path

from artifactfs import fileio
from artifactfs.errors import ArtifactfsError
from artifactfs.fileio import convert_to_str
from artifactfs.settings import get_settings

#: What counts as a remote path (``is_remote``): ZenML's list, then the
#: other schemes artifactfs's store flavors accept.
REMOTE_FS_PREFIX = ["gs://", "hdfs://", "s3://", "az://", "abfs://", "gcs://", "s3a://", "abfss://"]


class ContentTypeError(ArtifactfsError, TypeError, ValueError):
    """Text was expected (ZenML raises ValueError, earlier artifactfs TypeError)."""


def is_root(path: str | os.PathLike) -> bool:
    """Whether ``path`` has no parent (``/``)."""
    return Path(path).parent == Path(path)


def get_global_config_directory() -> str:
    """The folder of artifactfs's config (``ARTIFACTFS_CONFIG_DIR`` when set),
    created if missing."""
    folder = get_settings().config_dir
    folder.mkdir(parents=True, exist_ok=True)
    return str(folder)


def create_dir_recursive_if_not_exists(dir_path: str) -> None:
    if not fileio.isdir(dir_path):
        fileio.makedirs(dir_path)


def resolve_relative_path(path: str) -> str:
    """A local path made absolute (symlinks resolved); remote ones unchanged."""
    return path if is_remote(path) else str(Path(path).resolve())


def move(source: str, destination: str, overwrite: bool = False) -> None:
    fileio.rename(source, destination, overwrite)


def get_grandparent(dir_path: str) -> str:
    """The name of the folder two levels up; the path must exist."""
    _must_exist(dir_path)
    return Path(dir_path).parent.parent.stem


def get_parent(dir_path: str) -> str:
    """The name of the folder one level up; the path must exist."""
    _must_exist(dir_path)
    return Path(dir_path).parent.stem


def _must_exist(path: str) -> None:
    if not os.path.exists(path):
        raise ValueError(f"Path '{path}' does not exist.")


def sanitize_remote_path(path: str) -> str:
    """A remote path with Windows separators turned into ``/``."""
    return path.replace(ntpath.sep, posixpath.sep) if is_remote(path) else path


def read_file_contents_as_string(file_path: str) -> str:
    if not fileio.exists(file_path):
        raise FileNotFoundError(f"{file_path} does not exist")
    with fileio.open(file_path, "r") as f:
        return f.read()


def write_file_contents_as_string(file_path: str, content: str) -> None:
    if not isinstance(content, str):
        raise ContentTypeError(f"content must be a str, got {type(content).__name__}", "convert it with str() first")
    with fileio.open(file_path, "w") as f:
        f.write(content)


def create_dir_if_not_exists(dir_path: str) -> None:
    if not fileio.isdir(dir_path):
        fileio.makedirs(dir_path)


def create_file_if_not_exists(file_path: str, file_contents: str = "{}") -> None:
    if not fileio.exists(file_path):
        write_file_contents_as_string(file_path, file_contents)


def find_files(dir_path: str, pattern: str) -> Iterator[str]:
    """Every file below ``dir_path`` whose name matches the glob ``pattern``."""
    for folder, _, files in fileio.walk(dir_path):
        for name in fnmatch.filter(files, pattern):
            yield posixpath.join(folder, name)


def copy_dir(source_dir: str, destination_dir: str, overwrite: bool = False) -> None:
    """Copy a folder tree, within a store or across stores."""
    source, source_dir = fileio._located(source_dir)
    base = source.relpath(source_dir)
    for folder, _, files in source.walk(source_dir):
        relative = posixpath.relpath(source.relpath(folder) or ".", base or ".")
        target = destination_dir if relative == "." else posixpath.join(destination_dir, relative)
        create_dir_if_not_exists(target)
        for name in files:
            fileio.copy(posixpath.join(folder, name), posixpath.join(target, name), overwrite=overwrite)


def is_remote(path: str) -> bool:
    """ZenML's rule: the path starts with a remote scheme of REMOTE_FS_PREFIX."""
    return any(convert_to_str(path).startswith(prefix) for prefix in REMOTE_FS_PREFIX)


def is_path_within_directory(path: str, directory: str) -> bool:
    """Component-wise: ``/store2/x`` is not within ``/store``; ``..`` is resolved."""
    def parts(p: str) -> list[str]:
        scheme, sep, rest = p.partition("://")
        prefix = [scheme.lower() + sep] if sep else []
        return prefix + [c for c in posixpath.normpath("/" + (rest if sep else p)).split("/") if c]

    inner, outer = parts(path), parts(directory)
    return inner[: len(outer)] == outer
