"""An artifact store: a root URI plus an fsspec filesystem, with every path
confined to the root.

This module owns confinement of URIs and the IO operations that ``fileio``
exposes; flavors only say how to build their filesystem (``flavor.py``). A
local store's filesystem reaches every path from the root's open descriptor
without following links (``beneath.py``): resolving a path here is a check
for messages, never what makes an operation safe.
"""

from __future__ import annotations

import builtins
import functools
import inspect
import os
import posixpath
from collections.abc import Iterator
from functools import cached_property
from typing import IO, Any

import fsspec

from artifactfs.errors import PathEscapeError, StoreError
from artifactfs.stores.beneath import BeneathFileSystem, LinkFound, Root, within
from artifactfs.stores.flavor import Flavor
from artifactfs.stores.localfiles import opener_with_mode
from artifactfs.stores.secrets import merge_secrets, redact, remember_secrets, secret_values


#: Bytes per read when a payload is copied or streamed between stores.
COPY_CHUNK = 8 * 1024 * 1024

_PLAIN_OPEN_ARGS = {"encoding", "errors", "newline", "buffering"}



def _links_refused(method):
    """A link met beneath a local root (``beneath.LinkFound``) re-raised as
    this store's refusal of the path asked for."""
    def refused(self, path, exc: LinkFound, others=()) -> LinkFound:
        for asked in (path, *others):  # the path asked for that leads through the link
            try:
                if isinstance(asked, str) and within(self.confine(asked), exc.path):
                    return LinkFound(exc.path, f"path {asked!r} is refused by store {self.name!r}",
                                     asked_is_link=self.confine(asked) == exc.path)
            except PathEscapeError:
                continue
        return LinkFound(exc.path, f"store {self.name!r} refuses it")

    if inspect.isgeneratorfunction(method):
        @functools.wraps(method)
        def generator(self, path, *args, **kwargs):
            try:
                yield from method(self, path, *args, **kwargs)
            except LinkFound as exc:
                raise refused(self, path, exc, args) from None
        return generator

    @functools.wraps(method)
    def wrapper(self, path, *args, **kwargs):
        try:
            return method(self, path, *args, **kwargs)
        except LinkFound as exc:
            raise refused(self, path, exc, args) from None
    return wrapper


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
        follow_links: bool = False,
    ) -> None:
        """``follow_links``: the machine's own files a user names (never a
        store root): fsspec's plain local filesystem, links followed."""
        self.name = name
        self._follow_links = follow_links
        self.flavor = flavor
        self.root, self.path = flavor.canonical_root(root)
        self.options = dict(options or {})
        self._secrets = dict(secrets or {})
        self.index_id: int | None = None  # its row in the index (set by index.stores.open_store)
        remember_secrets(secret_values(self._secrets))  # masked in every error and log line from now on

    def __repr__(self) -> str:  # never shows secrets
        return f"ArtifactStore(name={self.name!r}, flavor={self.flavor.name!r}, path={self.path!r})"

    def redact(self, text: str) -> str:
        """``text`` with every secret value of this store (and anything else
        that looks secret, ``secrets.redact``) replaced by ``***``."""
        return redact(text, secret_values(self._secrets))

    @cached_property
    def _real_root(self) -> str:
        return os.path.realpath(self.root)

    @cached_property
    def fs(self) -> fsspec.AbstractFileSystem:
        options = merge_secrets(self.options, self._secrets)
        if self._follow_links:
            return self.flavor.filesystem(options)
        return self.flavor.filesystem_at(self.root, options)

    def prepare_client(self) -> None:
        """Build the store's client now (imports, client objects; no request
        sent), so that its first read does not pay for it."""
        self.flavor.prepare(self.fs)

    @property
    def beneath(self) -> Root:
        """The open root of a local store (``beneath.Root``): every path
        operation below it without following links."""
        if not self.holds_root:
            raise StoreError(f"{self.name!r} is not a local store root", "use the store's methods")
        return self.fs.root

    @property
    def holds_root(self) -> bool:
        """A local store whose root is held open (``stores.beneath``): not
        the machine's plain files a user names (``follow_links``)."""
        return self.is_local and isinstance(self.fs, BeneathFileSystem)

    def local_relative(self, path: str) -> str:
        """A local store's path relative to its root, confined lexically
        only (no lookups): for :attr:`beneath`, which follows no link."""
        native = self.confine(path)
        return "" if native == self.root else native[len(self.root.rstrip("/")) + 1 :]

    @property
    def is_local(self) -> bool:
        return self.flavor.protocol == "file"

    # -- confinement -----------------------------------------------------------

    def resolve(self, path: str) -> str:
        """The filesystem-native path of ``path``, proven to lie inside the
        root (on a local store: with every link on the way resolved too)."""
        candidate = self.confine(path)
        if self.is_local and not within(os.path.realpath(candidate), self._real_root):
            raise self._escape(path, "a symlink leads outside the root")
        return candidate

    def confine(self, path: str) -> str:
        """``path`` made native and normalised, refused unless it lies
        lexically inside the root (no lookup of any name: on a local store
        every operation then goes through ``beneath``, which follows no link)."""
        if "\x00" in path:
            raise PathEscapeError(
                f"path {path!r} is refused by store {self.name!r} (root {self.path}): it contains a NUL byte",
                "remove the NUL byte",
            )
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
        if not within(candidate, self.root):
            raise self._escape(path, "it lies outside the root")
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
    #
    # Object stores have no real folders: a folder exists while a file lies
    # below it. Two rules keep the flavors alike anyway: the root of a store
    # is always a folder (empty or not), and nothing creates a file where a
    # folder is (or the other way round).

    def _implicit_root(self, native: str) -> bool:
        """The root of an object store, which exists as a folder even when empty."""
        return native == self.root and not self.is_local

    def _isdir(self, native: str) -> bool:
        return self._implicit_root(native) or self.fs.isdir(native)

    @_links_refused
    def open(self, path: str, mode: str = "r", file_mode: int | None = None, **kwargs: Any) -> IO:
        """fsspec's ``open``. ``file_mode``, when writing a new file, gives it
        those permission bits on a local store (an object store has none): it
        is created owner-only and gets them before anything is written, so a
        copy is never readable by more users than its source."""
        native = self.confine(path)
        if "r" in mode and "+" not in mode and not self.is_local and not self.fs.isfile(native):
            raise FileNotFoundError(f"no file {self._to_uri(native)} in store {self.name!r}")
        if "r" not in mode and self._isdir(native):
            raise IsADirectoryError(f"{self._to_uri(native)} is a folder in store {self.name!r}")
        if self.is_local:
            # A real file object (numpy and pyarrow read it at native speed),
            # opened beneath the root's descriptor without following links.
            plain = {k: v for k, v in kwargs.items() if k in _PLAIN_OPEN_ARGS}
            if self.holds_root:
                opener = self.fs.opener(native, mode, file_mode)
            else:  # the machine's own files a user named: links followed
                if "r" not in mode:
                    os.makedirs(posixpath.dirname(native), exist_ok=True)
                opener = opener_with_mode(file_mode) if file_mode is not None and "r" not in mode else None
            try:
                return builtins.open(native, mode, opener=opener, **plain)
            except (FileNotFoundError, IsADirectoryError) as exc:
                if "r" not in mode or "+" in mode:
                    raise
                raise FileNotFoundError(f"no file {self._to_uri(native)} in store {self.name!r}") from exc
        return self.fs.open(native, mode, **kwargs)



    @_links_refused
    def exists(self, path: str) -> bool:
        native = self.confine(path)
        return self._implicit_root(native) or self.fs.exists(native)

    @_links_refused
    def isdir(self, path: str) -> bool:
        return self._isdir(self.confine(path))

    @_links_refused
    def isfile(self, path: str) -> bool:
        return self.fs.isfile(self.confine(path))

    @_links_refused
    def listdir(self, path: str = "") -> list[str]:
        native = self.confine(path)
        if not self.fs.isdir(native):
            if self._implicit_root(native):
                return []
            raise FileNotFoundError(f"no folder {self._to_uri(native)} in store {self.name!r}")
        entries = self.fs.ls(native, detail=False)
        names = (posixpath.basename(e.rstrip("/")) for e in entries)
        return sorted(n for n in names if n and posixpath.join(native, n) != native)

    @_links_refused
    def glob(self, pattern: str) -> list[str]:
        return sorted(self._to_uri(p) for p in self.fs.glob(self.confine(pattern)))

    @_links_refused
    def walk(self, top: str = "") -> Iterator[tuple[str, list[str], list[str]]]:
        """Like ``os.walk``: ``(folder URI, sub-folder names, file names)``, top-down."""
        native = self.confine(top)
        walked = False
        for folder, dirs, files in self.fs.walk(native):
            walked = True
            yield self._to_uri(folder), sorted(dirs), sorted(files)
        if not walked and self._implicit_root(native):
            yield self._to_uri(native), [], []

    @_links_refused
    def find(self, top: str = "") -> list[str]:
        """Every file below ``top``, as paths relative to ``top``."""
        native = self.confine(top)
        prefix = native.rstrip("/") + "/"
        return sorted(p[len(prefix):] for p in self.fs.find(native) if p.startswith(prefix))

    @_links_refused
    def stat(self, path: str) -> dict[str, Any]:
        """fsspec's ``info``, with ``name`` the full URI, ``type`` "file" or
        "directory", and ``size`` 0 for a folder (``size()`` totals a folder)."""
        native = self.confine(path)
        try:
            info = dict(self.fs.info(native))
        except FileNotFoundError:
            if not self._implicit_root(native):
                raise FileNotFoundError(
                    f"no file or folder {self._to_uri(native)} in store {self.name!r}"
                ) from None
            info = {"type": "directory"}
        info["name"] = self._to_uri(native)
        if info.get("type") != "file":
            info["type"], info["size"] = "directory", 0
        return info

    @_links_refused
    def size(self, path: str) -> int:
        """Bytes of a file, or of every file below a folder."""
        native = self.confine(path)
        if self._isdir(native):
            return int(self.fs.du(native, total=True)) if self.fs.isdir(native) else 0
        return int(self.stat(path)["size"])

    @_links_refused
    def makedirs(self, path: str) -> None:
        native = self.confine(path)
        if self.fs.isfile(native):
            raise FileExistsError(f"{self._to_uri(native)} exists and is a file")
        self.fs.makedirs(native, exist_ok=True)

    def mkdir(self, path: str) -> None:
        self.makedirs(path)

    @_links_refused
    def remove(self, path: str) -> None:
        native = self.confine(path)
        if not self.fs.isfile(native):
            raise FileNotFoundError(f"no file {self._to_uri(native)} in store {self.name!r}")
        self.fs.rm_file(native)

    @_links_refused
    def rmtree(self, path: str) -> None:
        native = self.confine(path)
        if native == self.root:
            raise StoreError(
                f"refusing to delete the root of store {self.name!r} ({path!r} is its root {self.path})",
                "name a folder inside it",
            )
        if not self.fs.isdir(native):
            raise FileNotFoundError(f"no folder {self._to_uri(native)} in store {self.name!r}")
        self.fs.rm(native, recursive=True)

    @_links_refused
    def copy(self, src: str, dst: str, overwrite: bool = False) -> None:
        """Copy a file within this store (``fileio.copy`` handles other stores)."""
        source, target = self.confine(src), self.confine(dst)
        if not self.fs.isfile(source):
            raise FileNotFoundError(f"no file {self._to_uri(source)} in store {self.name!r}")
        self._check_target(target, overwrite, folder_ok=False)
        if source != target:
            self.fs.cp_file(source, target)

    @_links_refused
    def rename(self, src: str, dst: str, overwrite: bool = False) -> None:
        """Move a file or a folder; with ``overwrite`` an existing target is replaced."""
        source, target = self.confine(src), self.confine(dst)
        if source == self.root:
            raise StoreError(f"refusing to move the root of store {self.name!r}", "name a path inside it")
        is_file = self.fs.isfile(source)
        if not is_file and not self.fs.isdir(source):
            raise FileNotFoundError(f"no file or folder {self._to_uri(source)} in store {self.name!r}")
        if source == target:
            return
        if not is_file and within(target, source):
            raise StoreError(f"cannot move folder {self._to_uri(source)} into itself")
        if self._check_target(target, overwrite, folder_ok=not is_file):
            if self.fs.isdir(target):
                self.fs.rm(target, recursive=True)
            else:
                self.fs.rm_file(target)
        if self.is_local:
            self.fs.mv(source, target, recursive=not is_file)
        elif is_file:  # cp + rm: mv of some libraries tries server-side moves emulators lack
            self.fs.cp_file(source, target)
            self.fs.rm_file(source)
        else:  # a prefix holds files only: move each, keys below the source included
            prefix = source.rstrip("/") + "/"
            files = [f for f in self.fs.find(source) if f.startswith(prefix)]
            for name in files:
                self.fs.cp_file(name, target.rstrip("/") + "/" + name[len(prefix):])
            self.fs.rm(files)

    def _check_target(self, target: str, overwrite: bool, folder_ok: bool) -> bool:
        """Whether ``target`` exists; raise unless it may be replaced."""
        if target == self.root:
            raise StoreError(f"refusing to replace the root of store {self.name!r}", "name a path inside it")
        if not self.fs.exists(target):
            return False
        if not overwrite:
            raise FileExistsError(
                f"{self._to_uri(target)} already exists in store {self.name!r}; pass overwrite=True to replace it"
            )
        if not folder_ok and self.fs.isdir(target):
            raise IsADirectoryError(f"{self._to_uri(target)} is a folder in store {self.name!r}")
        return True

    # -- bulk transfer ---------------------------------------------------------

    @_links_refused
    def put(self, local_path: str, path: str) -> None:
        """Upload one local file to ``path``."""
        self.fs.put_file(local_path, self.confine(path))

    @_links_refused
    def get(self, path: str, local_path: str) -> None:
        """Download one file to a local path."""
        self.fs.get_file(self.confine(path), local_path)

    @_links_refused
    def read_bytes(self, path: str, start: int | None = None, end: int | None = None) -> bytes:
        return self.fs.cat_file(self.confine(path), start=start, end=end)

    @property
    def streams_ranges(self) -> bool:
        """Whether :meth:`read_range` reads a range in one request and hands
        its pieces over as they arrive (the flavor's ``stream_range``),
        rather than one request per piece."""
        return self.flavor.streams_ranges and not self.holds_root

    @_links_refused
    def read_range(self, path: str, start: int, end: int, chunk: int = COPY_CHUNK) -> Iterator[bytes]:
        """Bytes ``[start, end)`` of a file, in order, ``chunk`` bytes per
        piece (the last may be shorter), each read only when asked for: a
        caller that stops iterating reads no further, and memory stays one
        piece.

        A flavor that streams (``streams_ranges``) reads the whole range in
        one request of its own client and hands each piece over as soon as
        it has arrived. Any other is read with fsspec's documented ranged
        read (``cat_file(path, start, end)``, one ranged request per piece
        on object stores), so every flavor has it; a local file is read
        with ``os.pread``. A file that ends before ``end`` raises
        ``EOFError`` naming it.
        """
        if not 0 <= start <= end or chunk <= 0:
            raise ValueError(f"bad range [{start}, {end}) or chunk {chunk}")
        native = self.confine(path)
        if self.holds_root:
            yield from self._read_local_range(native, start, end, chunk)
            return
        if self.streams_ranges:
            if start == end:
                return
            offset = start
            pieces = self.flavor.stream_range(self.fs, native, start, end, chunk)
            try:
                for piece in pieces:
                    if len(piece) != min(chunk, end - offset):
                        raise self._short(native, offset + len(piece), end)
                    offset += len(piece)
                    yield piece
            finally:
                pieces.close()
            if offset != end:
                raise self._short(native, offset, end)
            return
        for offset in range(start, end, chunk):
            upto = min(offset + chunk, end)
            piece = self.fs.cat_file(native, start=offset, end=upto)
            if len(piece) != upto - offset:
                raise self._short(native, offset + len(piece), end)
            yield piece

    def _read_local_range(self, native: str, start: int, end: int, chunk: int) -> Iterator[bytes]:
        for offset, piece in self.beneath.read_range(self.local_relative(native), start, end, chunk):
            if len(piece) != min(chunk, end - offset):
                raise self._short(native, offset + len(piece), end)
            yield piece

    def _short(self, native: str, at: int, end: int) -> EOFError:
        return EOFError(f"{self._to_uri(native)} in store {self.name!r} ends at byte {at}, before byte {end}")

