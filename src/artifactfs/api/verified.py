"""Reading a version's payload when its bytes must be the ones its manifest
records: each file is read once, hashed with the version's algorithm while
it is read, compared with its manifest row, and handed out from that same
copy (in memory, or beyond ``SPOOL_MEMORY`` an unlinked temporary file only
this process holds). Bytes swapped in the store after the check are never
read, so a pickle is only ever built from verified bytes. A local file is
opened beneath the store's root descriptor without following links
(``stores.beneath``): a payload file swapped for a link is refused, not read.

:class:`VerifiedReads` is the store a materializer loading such a version
is given (every materializer that may unpickle, and any load with
``verify=True``): its reads are verified, its listings come from the
manifest, and it refuses writes. Containers hand it on to their elements.

A materializer that never unpickles (``stream=True``) reads a large file
as it is hashed instead (``stores.manifest.HashingReader``: one pass,
reading and hashing side by side, numpy filling its array in place), and
the check comes when it closes the file: bytes that fail it never leave
the load, and nothing they held could run code.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Iterable
from typing import IO, TYPE_CHECKING, Any

from artifactfs.errors import ArtifactfsError
from artifactfs.stores.base import COPY_CHUNK, ArtifactStore
from artifactfs.stores.hashing import new_hasher
from artifactfs.stores.manifest import HashingReader

if TYPE_CHECKING:
    from artifactfs.api.artifacts import ArtifactFile, ArtifactVersion

#: Verified bytes of one file are kept in memory up to this size (a value
#: unpickled from them needs about as much memory anyway), beyond it in an
#: unlinked temporary file only this process holds.
SPOOL_MEMORY = 64 * 1024 * 1024


class IntegrityError(ArtifactfsError):
    """A payload's bytes differ from its manifest."""


def missing(version: ArtifactVersion, entry: ArtifactFile) -> IntegrityError:
    """The error for a payload file the manifest lists but the store lacks."""
    return IntegrityError(
        f"{version}: payload file {entry.path!r} is missing from {version.uri}",
        "run `artifactfs fsck` to list damaged versions",
    )


def check(version: ArtifactVersion, entry: ArtifactFile, size: int, digest: str) -> None:
    """Raise :class:`IntegrityError` unless ``(size, digest)`` is what the manifest records."""
    if (size, digest) != (entry.size, entry.digest):
        raise IntegrityError(
            f"{version}: payload file {entry.path!r} changed since it was saved (size {size} vs "
            f"{entry.size}, {version.hash_algorithm} {digest[:12]} vs {(entry.digest or '')[:12]})",
            "the stored bytes were modified outside artifactfs; run `artifactfs fsck`",
        )


def copy_verified(store: ArtifactStore, version: ArtifactVersion, entry: ArtifactFile, out: IO[bytes]) -> int:
    """Copy one payload file into ``out`` while hashing it; raise when the
    bytes copied are not the manifest's. Returns the size."""
    hasher, size = new_hasher(version.hash_algorithm), 0
    try:
        with store.fs.open(store.confine(version.file_uri(entry.path)), "rb") as f:
            while chunk := f.read(COPY_CHUNK):
                hasher.update(chunk)
                out.write(chunk)
                size += len(chunk)
    except FileNotFoundError:
        raise missing(version, entry) from None
    check(version, entry, size, hasher.hexdigest())
    return size


def read_verified(store: ArtifactStore, version: ArtifactVersion, entry: ArtifactFile) -> IO[bytes]:
    """The verified bytes of one payload file, positioned at the start."""
    if entry.size <= SPOOL_MEMORY:  # one read into memory, hashed in place (BLAKE3 on every core)
        try:
            with store.fs.open(store.confine(version.file_uri(entry.path)), "rb") as f:
                data = f.read(SPOOL_MEMORY + 1)
        except FileNotFoundError:
            raise missing(version, entry) from None
        hasher = new_hasher(version.hash_algorithm)
        hasher.update(data)
        check(version, entry, len(data), hasher.hexdigest())
        return io.BytesIO(data)  # shares ``data``: no copy
    buffer = tempfile.TemporaryFile()  # noqa: SIM115 - handed to the caller
    try:
        copy_verified(store, version, entry, buffer)
    except BaseException:
        buffer.close()
        raise
    buffer.seek(0)
    return buffer


def verify_payload(version: ArtifactVersion, store: ArtifactStore, entries: Iterable[ArtifactFile] | None = None) -> None:
    """Re-read payload files (all by default) and compare them with the manifest."""
    for entry in version.files if entries is None else entries:
        copy_verified(store, version, entry, _Discard())


class _Discard:
    def write(self, data: bytes) -> int:
        return len(data)


class VerifiedReads:
    """A store for loading one version: reads verified, listings from the
    manifest, writes refused; anything else is the store's."""

    def __init__(self, store: ArtifactStore, version: ArtifactVersion, stream: bool = False) -> None:
        self.store, self.version, self.stream = store, version, stream
        self._entries = {store.confine(version.file_uri(e.path)): e for e in version.files}
        self._read: set[str] = set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def _entry(self, path: str) -> tuple[str, ArtifactFile]:
        native = self.store.confine(path)
        entry = self._entries.get(native)
        if entry is None:
            raise IntegrityError(
                f"{self.version}: {self.store.flavor.to_uri(native)} is not in the version's manifest",
                "the payload holds a file it was not saved with; run `artifactfs fsck`",
            )
        return native, entry

    def open(self, path: str, mode: str = "r", encoding: str | None = None, errors: str | None = None,
             newline: str | None = None, **_: Any) -> IO:
        """A payload file for reading, its bytes checked against the manifest
        as they are read; a mode that writes is refused."""
        if any(flag in mode for flag in "wax+"):
            raise ArtifactfsError(f"{self.version} is being loaded: its payload cannot be written ({path})",
                                  "a materializer's load() must only read")
        native, entry = self._entry(path)
        if self.stream and "b" in mode and entry.size > SPOOL_MEMORY:
            return self._streamed(native, entry)
        data = read_verified(self.store, self.version, entry)
        self._read.add(native)
        if "b" in mode:
            return data
        return io.TextIOWrapper(data, encoding=encoding or "utf-8", errors=errors, newline=newline)

    def _streamed(self, native: str, entry: ArtifactFile) -> HashingReader:
        """The file as it is read, checked whole when closed."""
        def checked(size: int, digest: str) -> None:
            check(self.version, entry, size, digest)
            self._read.add(native)

        try:
            raw = self.store.fs.open(native, "rb")
        except FileNotFoundError:
            raise missing(self.version, entry) from None
        return HashingReader(raw, self.version.hash_algorithm, checked)

    def read_bytes(self, path: str, start: int | None = None, end: int | None = None) -> bytes:
        """A payload file's bytes (``start``/``end``: a slice of them), checked."""
        with self.open(path, "rb") as f:
            return f.read()[slice(start, end)]

    def get(self, path: str, local_path: str) -> None:
        """Download one file, verified on the way; nothing is left on a mismatch."""
        native, entry = self._entry(path)
        try:
            with open(local_path, "wb") as out:
                copy_verified(self.store, self.version, entry, out)
        except BaseException:
            if os.path.exists(local_path):
                os.unlink(local_path)
            raise
        self._read.add(native)

    # -- listings: the manifest's, never the store's ---------------------------------------

    def find(self, top: str = "") -> list[str]:
        """The manifest's files below ``top``, relative to it, sorted (the manifest, not a listing)."""
        prefix = self.store.confine(top).rstrip("/") + "/"
        return sorted(native[len(prefix):] for native in self._entries if native.startswith(prefix))

    def isfile(self, path: str) -> bool:
        """Whether the manifest lists ``path`` as a file."""
        return self.store.confine(path) in self._entries

    def isdir(self, path: str) -> bool:
        """Whether the manifest lists files below ``path``."""
        return bool(self.find(path))

    def exists(self, path: str) -> bool:
        """Whether ``path`` is a file or a folder of the manifest."""
        return self.isfile(path) or self.isdir(path)

    def listdir(self, path: str = "") -> list[str]:
        """The names directly below ``path``, from the manifest."""
        return sorted({relative.split("/", 1)[0] for relative in self.find(path)})

    def verify_rest(self) -> None:
        """Check the manifest files that the load did not read (``verify=True``)."""
        verify_payload(self.version, self.store, [e for n, e in self._entries.items() if n not in self._read])


__all__ = ["SPOOL_MEMORY", "IntegrityError", "VerifiedReads", "check", "copy_verified", "read_verified",
           "missing", "verify_payload"]
