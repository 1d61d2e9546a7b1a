"""An artifact store: a root URI plus an fsspec filesystem, with every path
confined to the root.

This module owns confinement and the IO operations that ``fileio`` exposes;
flavors only say how to build their filesystem (``flavor.py``).
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Iterator
from functools import cached_property
from typing import IO, Any

import fsspec

from artifactfs.errors import PathEscapeError, StoreError
from artifactfs.stores.flavor import Flavor


# Pieces of connection strings and signed URLs that are credentials.
_SECRET_PARTS = re.compile(r"(AccountKey|SharedAccessSignature|sig|X-Amz-Signature|X-Amz-Credential)=[^;&\s]+", re.I)


class ArtifactStore:
    """A named root in some filesystem.

    Paths given to the methods are either relative to the root or full URIs
    (absolute paths for a local store) that lie inside it. Anything else,
    ``..`` that climbs out, another bucket, another scheme, a symlink leading
    out of a local root, is refused with :class:`PathEscapeError`.
    Methods return full URIs, except ``listdir`` which returns names.
    """

    def __init__(
        self,
        name: str,
        flavor: type[Flavor],
        root: str,
        options: dict[str, Any] | None = None,
        secrets: dict[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.flavor = flavor
        self.root, self.path = flavor.canonical_root(root)
        self.options = dict(options or {})
        self._secrets = dict(secrets or {})

    def __repr__(self) -> str:  # never shows secrets
        return f"ArtifactStore(name={self.name!r}, flavor={self.flavor.name!r}, path={self.path!r})"

    def redact(self, text: str) -> str:
        """``text`` with every secret value of this store replaced by ``***``."""
        for value in self._secrets.values():
            if isinstance(value, str) and len(value) >= 4:
                text = text.replace(value, "***")
        return _SECRET_PARTS.sub(r"\1=***", text)

    @cached_property
    def fs(self) -> fsspec.AbstractFileSystem:
        return self.flavor.filesystem({**self.options, **self._secrets})

    @property
    def is_local(self) -> bool:
        return self.flavor.protocol == "file"

    # -- confinement -----------------------------------------------------------

    def resolve(self, path: str) -> str:
        """The filesystem-native path of ``path``, proven to lie inside the root."""
        if "\x00" in path:
            raise PathEscapeError(f"path {path!r} contains a NUL byte", "remove it")
        scheme, native = self.flavor.split_uri(path) if "://" in path else (None, path)
        if scheme is not None and scheme not in self.flavor.schemes:
            raise self._escape(path, f"it is a {scheme}:// URI")
        if scheme is None and not (self.is_local and path.startswith("/")):
            if path.startswith("/"):
                raise self._escape(path, "absolute paths are not inside a remote store")
            native = posixpath.join(self.root, path)
        candidate = posixpath.normpath(native) if native else self.root
        if candidate.startswith("//"):  # normpath keeps a leading '//' verbatim
            candidate = "/" + candidate.lstrip("/")
        if not _within(candidate, self.root):
            raise self._escape(path, "it lies outside the root")
        if self.is_local and not _within(os.path.realpath(candidate), os.path.realpath(self.root)):
            raise self._escape(path, "a symlink leads outside the root")
        return candidate

    def _escape(self, path: str, why: str) -> PathEscapeError:
        return PathEscapeError(
            f"path {path!r} is refused by store {self.name!r} (root {self.path}): {why}",
            "use a path relative to the store root, without '..'",
        )

    def contains(self, uri: str) -> bool:
        try:
            self.resolve(uri)
        except PathEscapeError:
            return False
        return True

    def uri(self, path: str = "") -> str:
        """The full URI of a path in this store."""
        return self.flavor.to_uri(self.resolve(path))

    def relpath(self, path: str) -> str:
        """The path relative to the root ('' for the root itself)."""
        native = self.resolve(path)
        return "" if native == self.root else native[len(self.root.rstrip("/")) + 1 :]

    def _to_uri(self, native: str) -> str:
        return self.flavor.to_uri(native.rstrip("/") or native)

    # -- IO operations (same semantics on every flavor) -----------------------

    def open(self, path: str, mode: str = "r", **kwargs: Any) -> IO:
        native = self.resolve(path)
        if "r" in mode and "+" not in mode and not self.fs.isfile(native):
            raise FileNotFoundError(f"no file {self._to_uri(native)} in store {self.name!r}")
        return self.fs.open(native, mode, **kwargs)

    def exists(self, path: str) -> bool:
        return self.fs.exists(self.resolve(path))

    def isdir(self, path: str) -> bool:
        return self.fs.isdir(self.resolve(path))

    def isfile(self, path: str) -> bool:
        return self.fs.isfile(self.resolve(path))

    def listdir(self, path: str = "") -> list[str]:
        native = self.resolve(path)
        if not self.fs.isdir(native):
            raise FileNotFoundError(f"no folder {self._to_uri(native)} in store {self.name!r}")
        entries = self.fs.ls(native, detail=False)
        names = (posixpath.basename(e.rstrip("/")) for e in entries)
        return sorted(n for n in names if n and posixpath.join(native, n) != native)

    def glob(self, pattern: str) -> list[str]:
        return sorted(self._to_uri(p) for p in self.fs.glob(self.resolve(pattern)))

    def walk(self, top: str = "") -> Iterator[tuple[str, list[str], list[str]]]:
        """Like ``os.walk``: ``(folder URI, sub-folder names, file names)``, top-down."""
        for folder, dirs, files in self.fs.walk(self.resolve(top)):
            yield self._to_uri(folder), sorted(dirs), sorted(files)

    def find(self, top: str = "") -> list[str]:
        """Every file below ``top``, as paths relative to ``top``."""
        native = self.resolve(top)
        prefix = native.rstrip("/") + "/"
        return sorted(p[len(prefix):] for p in self.fs.find(native) if p.startswith(prefix))

    def stat(self, path: str) -> dict[str, Any]:
        native = self.resolve(path)
        try:
            return self.fs.info(native)
        except FileNotFoundError:
            raise FileNotFoundError(f"no file or folder {self._to_uri(native)} in store {self.name!r}") from None

    def size(self, path: str) -> int:
        """Bytes of a file, or of every file below a folder."""
        native = self.resolve(path)
        if self.fs.isdir(native):
            return int(self.fs.du(native, total=True))
        return int(self.stat(path)["size"])

    def makedirs(self, path: str) -> None:
        self.fs.makedirs(self.resolve(path), exist_ok=True)

    def mkdir(self, path: str) -> None:
        native = self.resolve(path)
        if self.fs.isfile(native):
            raise FileExistsError(f"{self._to_uri(native)} exists and is a file")
        self.fs.makedirs(native, exist_ok=True)

    def remove(self, path: str) -> None:
        native = self.resolve(path)
        if not self.fs.isfile(native):
            raise FileNotFoundError(f"no file {self._to_uri(native)} in store {self.name!r}")
        self.fs.rm_file(native)

    def rmtree(self, path: str) -> None:
        native = self.resolve(path)
        if native == self.root:
            raise StoreError(f"refusing to delete the root of store {self.name!r}", "name a folder inside it")
        if not self.fs.isdir(native):
            raise FileNotFoundError(f"no folder {self._to_uri(native)} in store {self.name!r}")
        self.fs.rm(native, recursive=True)

    def copy(self, src: str, dst: str, overwrite: bool = False) -> None:
        """Copy a file within this store (``fileio.copy`` handles other stores)."""
        source, target = self.resolve(src), self.resolve(dst)
        self._check_target(target, overwrite)
        if not self.fs.isfile(source):
            raise FileNotFoundError(f"no file {self._to_uri(source)} in store {self.name!r}")
        self.fs.cp_file(source, target)

    def rename(self, src: str, dst: str, overwrite: bool = False) -> None:
        source, target = self.resolve(src), self.resolve(dst)
        self._check_target(target, overwrite)
        if not self.fs.exists(source):
            raise FileNotFoundError(f"no file or folder {self._to_uri(source)} in store {self.name!r}")
        self.fs.mv(source, target, recursive=self.fs.isdir(source))

    def _check_target(self, target: str, overwrite: bool) -> None:
        if not overwrite and self.fs.exists(target):
            raise FileExistsError(
                f"{self._to_uri(target)} already exists in store {self.name!r}; pass overwrite=True to replace it"
            )

    # -- bulk transfer ---------------------------------------------------------

    def put(self, local_path: str, path: str) -> None:
        """Upload one local file to ``path``."""
        self.fs.put_file(local_path, self.resolve(path))

    def get(self, path: str, local_path: str) -> None:
        """Download one file to a local path."""
        self.fs.get_file(self.resolve(path), local_path)

    def read_bytes(self, path: str, start: int | None = None, end: int | None = None) -> bytes:
        return self.fs.cat_file(self.resolve(path), start=start, end=end)


def _within(path: str, root: str) -> bool:
    """Component-wise containment: '/store2' is not inside '/store'."""
    root_parts = [p for p in root.split("/") if p]
    parts = [p for p in path.split("/") if p]
    return parts[: len(root_parts)] == root_parts and path.startswith("/") == root.startswith("/")
