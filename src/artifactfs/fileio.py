"""ZenML-style file operations on any URI: the registered store whose root
holds the URI does the work, so every path stays confined to a store root.
Plain local paths outside every store are ordinary local files.

    from artifactfs import fileio
    with fileio.open("s3://bucket/prefix/data.csv", "w") as f: ...
    fileio.copy("/tmp/model.pt", "s3://bucket/prefix/model.pt")
"""

from __future__ import annotations

import os
import posixpath
import shutil
import stat as _stat
from collections.abc import Iterator
from typing import IO, Any

from artifactfs.api.stores import store_or_local
from artifactfs.errors import ArtifactfsError, StoreError
from artifactfs.stores.base import COPY_CHUNK


class NotAFolderError(ArtifactfsError, TypeError):
    """``rmtree`` of a file (ZenML raises TypeError there)."""



def convert_to_str(path: str | bytes | os.PathLike) -> str:
    """A path as text (bytes are UTF-8), as ZenML accepts bytes paths."""
    path = os.fspath(path)
    return path if isinstance(path, str) else path.decode("utf-8")


def _located(path: str | bytes | os.PathLike):
    """``(store, path)``: the store that holds ``path``, and the path made
    absolute when it is a relative local one (relative to the working folder,
    never to some store's root)."""
    path = convert_to_str(path)
    if "://" not in path:
        path = os.path.abspath(os.path.expanduser(path))
    return store_or_local(path), path


def open(path: str, mode: str = "r", **kwargs: Any) -> IO:  # noqa: A001 - ZenML's name
    store, path = _located(path)
    return store.open(path, mode, **kwargs)


def exists(path: str) -> bool:
    store, path = _located(path)
    return store.exists(path)


def isdir(path: str) -> bool:
    store, path = _located(path)
    return store.isdir(path)


def listdir(path: str, only_file_names: bool = True) -> list[str]:
    """Names (or, with ``only_file_names=False``, paths) of the entries of a
    folder; ``[]`` for a path that is no folder, as ZenML does."""
    store, path = _located(path)
    try:
        names = store.listdir(path)
    except OSError:
        return []
    return names if only_file_names else [posixpath.join(path, n) for n in names]


def glob(pattern: str) -> list[str]:
    store, pattern = _located(pattern)
    return store.glob(pattern)


def walk(top: str) -> Iterator[tuple[str, list[str], list[str]]]:
    store, top = _located(top)
    return store.walk(top)


def stat(path: str) -> os.stat_result:
    """An ``os.stat_result`` (ZenML returns the local one): the real one for
    a local path, one built from the store's ``info`` (mode, size, mtime)
    for an object store."""
    store, path = _located(path)
    if store.holds_root:  # beneath the root's descriptor: a link is stat'ed, never followed
        return store.beneath.lstat(store.local_relative(path))
    if store.is_local:
        return os.stat(store.resolve(path))
    info = store.stat(path)
    mode = _stat.S_IFDIR | 0o755 if info["type"] == "directory" else _stat.S_IFREG | 0o644
    mtime = _mtime(info)
    return os.stat_result((mode, 0, 0, 1, 0, 0, int(info.get("size") or 0), mtime, mtime, mtime))


def _mtime(info: dict[str, Any]) -> float:
    for key in ("mtime", "LastModified", "last_modified", "updated", "created"):
        value = info.get(key)
        if isinstance(value, (int, float)):
            return float(value)
        timestamp = getattr(value, "timestamp", None)  # a datetime
        if callable(timestamp):
            return float(timestamp())
    return 0.0


def size(path: str) -> int:
    """Bytes of a file, or the total of every file below a folder; 0 for a
    path that does not exist (ZenML's rule)."""
    store, path = _located(path)
    if not store.exists(path):
        return 0
    return store.size(path)


def makedirs(path: str) -> None:
    store, path = _located(path)
    store.makedirs(path)


def mkdir(path: str) -> None:
    """One folder; its parent must exist (``makedirs`` creates parents)."""
    store, path = _located(path)
    parent = posixpath.dirname(path.rstrip("/"))
    if store.is_local and not store.isdir(parent):
        raise FileNotFoundError(f"cannot create {path}: its parent folder {parent} does not exist")
    store.mkdir(path)


def remove(path: str) -> None:
    store, path = _located(path)
    store.remove(path)


def rmtree(path: str) -> None:
    store, path = _located(path)
    if store.exists(path) and not store.isdir(path):
        raise NotAFolderError(f"{path} is a file, not a folder", "use fileio.remove for a file")
    store.rmtree(path)


def rename(src: str, dst: str, overwrite: bool = False) -> None:
    store, src = _located(src)
    target, dst = _located(dst)
    if target.name != store.name:
        raise StoreError(
            f"cannot rename {src!r} to {dst!r}: they are in different stores",
            "use fileio.copy, then fileio.remove",
        )
    store.rename(src, dst, overwrite=overwrite)


def copy(src: str, dst: str, overwrite: bool = False) -> None:
    """Copy one file, within a store or across stores and flavors."""
    (source, src), (target, dst) = _located(src), _located(dst)
    if source.name == target.name:
        source.copy(src, dst, overwrite=overwrite)
        return
    if not source.isfile(src):
        raise FileNotFoundError(f"no file {src} in store {source.name!r}")
    if target.exists(dst):
        if not overwrite:
            raise FileExistsError(f"{dst} already exists; pass overwrite=True to replace it")
        if target.isdir(dst):
            raise IsADirectoryError(f"{dst} is a folder in store {target.name!r}")
    if source.is_local and not source.holds_root:  # the user's own file
        target.put(source.resolve(src), dst)
    elif target.is_local and not target.holds_root:
        target.makedirs(posixpath.dirname(target.resolve(dst)))
        source.get(src, target.resolve(dst))
    else:
        with source.open(src, "rb") as fin, target.open(dst, "wb") as fout:
            shutil.copyfileobj(fin, fout, COPY_CHUNK)
