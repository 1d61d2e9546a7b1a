"""ZenML-style helpers built on ``fileio``: whole-file text IO, folder copies
across stores, recursive file search, and path checks."""

from __future__ import annotations

import fnmatch
import posixpath
from collections.abc import Iterator

from artifactfs import fileio
from artifactfs.stores.flavor import is_local_uri


def read_file_contents_as_string(file_path: str) -> str:
    if not fileio.exists(file_path):
        raise FileNotFoundError(f"{file_path} does not exist")
    with fileio.open(file_path, "r") as f:
        return f.read()


def write_file_contents_as_string(file_path: str, content: str) -> None:
    if not isinstance(content, str):
        raise TypeError(f"content must be a str, got {type(content).__name__}")
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
    return not is_local_uri(path)


def is_path_within_directory(path: str, directory: str) -> bool:
    """Component-wise: ``/store2/x`` is not within ``/store``; ``..`` is resolved."""
    def parts(p: str) -> list[str]:
        scheme, sep, rest = p.partition("://")
        prefix = [scheme.lower() + sep] if sep else []
        return prefix + [c for c in posixpath.normpath("/" + (rest if sep else p)).split("/") if c]

    inner, outer = parts(path), parts(directory)
    return inner[: len(outer)] == outer
