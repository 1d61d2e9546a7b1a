"""ZenML-style file operations on any URI: the registered store whose root
holds the URI does the work, so every path stays confined to a store root.
Plain local paths outside every store are ordinary local files.

    from artifactfs import fileio
    with fileio.open("s3://bucket/prefix/data.csv", "w") as f: ...
    fileio.copy("/tmp/model.pt", "s3://bucket/prefix/model.pt")
"""

from __future__ import annotations

import posixpath
import shutil
from collections.abc import Iterator
from typing import IO, Any

from artifactfs.api.stores import store_or_local
from artifactfs.errors import StoreError

COPY_CHUNK = 8 * 1024 * 1024


def open(path: str, mode: str = "r", **kwargs: Any) -> IO:  # noqa: A001 - ZenML's name
    return store_or_local(path).open(path, mode, **kwargs)


def exists(path: str) -> bool:
    return store_or_local(path).exists(path)


def isdir(path: str) -> bool:
    return store_or_local(path).isdir(path)


def listdir(path: str) -> list[str]:
    """Names (not paths) of the entries of a folder."""
    return store_or_local(path).listdir(path)


def glob(pattern: str) -> list[str]:
    return store_or_local(pattern).glob(pattern)


def walk(top: str) -> Iterator[tuple[str, list[str], list[str]]]:
    return store_or_local(top).walk(top)


def stat(path: str) -> dict[str, Any]:
    return store_or_local(path).stat(path)


def size(path: str) -> int:
    """Bytes of a file, or the total of every file below a folder."""
    return store_or_local(path).size(path)


def makedirs(path: str) -> None:
    store_or_local(path).makedirs(path)


def mkdir(path: str) -> None:
    store_or_local(path).mkdir(path)


def remove(path: str) -> None:
    store_or_local(path).remove(path)


def rmtree(path: str) -> None:
    store_or_local(path).rmtree(path)


def rename(src: str, dst: str, overwrite: bool = False) -> None:
    store = store_or_local(src)
    if store_or_local(dst).name != store.name:
        raise StoreError(
            f"cannot rename {src!r} to {dst!r}: they are in different stores",
            "use fileio.copy, then fileio.remove",
        )
    store.rename(src, dst, overwrite=overwrite)


def copy(src: str, dst: str, overwrite: bool = False) -> None:
    """Copy one file, within a store or across stores and flavors."""
    source, target = store_or_local(src), store_or_local(dst)
    if source.name == target.name:
        source.copy(src, dst, overwrite=overwrite)
        return
    if not overwrite and target.exists(dst):
        raise FileExistsError(f"{dst} already exists; pass overwrite=True to replace it")
    if source.is_local:
        target.put(source.resolve(src), dst)
    elif target.is_local:
        target.makedirs(posixpath.dirname(target.resolve(dst)))
        source.get(src, target.resolve(dst))
    else:
        with source.open(src, "rb") as fin, target.open(dst, "wb") as fout:
            shutil.copyfileobj(fin, fout, COPY_CHUNK)
