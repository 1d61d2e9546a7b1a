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
from collections.abc import Iterator
from typing import IO, Any

from artifactfs.api.stores import store_or_local
from artifactfs.errors import StoreError
from artifactfs.stores.base import COPY_CHUNK



def _located(path: str):
    """``(store, path)``: the store that holds ``path``, and the path made
    absolute when it is a relative local one (relative to the working folder,
    never to some store's root)."""
    path = os.fspath(path)
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


def listdir(path: str) -> list[str]:
    """Names (not paths) of the entries of a folder."""
    store, path = _located(path)
    return store.listdir(path)


def glob(pattern: str) -> list[str]:
    store, pattern = _located(pattern)
    return store.glob(pattern)


def walk(top: str) -> Iterator[tuple[str, list[str], list[str]]]:
    store, top = _located(top)
    return store.walk(top)


def stat(path: str) -> dict[str, Any]:
    store, path = _located(path)
    return store.stat(path)


def size(path: str) -> int:
    """Bytes of a file, or the total of every file below a folder."""
    store, path = _located(path)
    return store.size(path)


def makedirs(path: str) -> None:
    store, path = _located(path)
    store.makedirs(path)


def mkdir(path: str) -> None:
    store, path = _located(path)
    store.mkdir(path)


def remove(path: str) -> None:
    store, path = _located(path)
    store.remove(path)


def rmtree(path: str) -> None:
    store, path = _located(path)
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
    if source.is_local:
        target.put(source.resolve(src), dst)
    elif target.is_local:
        target.makedirs(posixpath.dirname(target.resolve(dst)))
        source.get(src, target.resolve(dst))
    else:
        with source.open(src, "rb") as fin, target.open(dst, "wb") as fout:
            shutil.copyfileobj(fin, fout, COPY_CHUNK)
