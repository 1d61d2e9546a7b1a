"""Manifests: the list of payload files of a version with size, mode and
digest, computed from the bytes as they are written (no second read), and
the content hash of a whole version derived from it. The hash algorithm is
the version's (``stores.hashing``; BLAKE3 for new versions).

``RecordingStore`` wraps a store for one version folder: every file opened
for writing through it (or uploaded with ``put``) is hashed on the way, and
recorded with its real mode: the one a local file has, or the one asked for
with ``file_mode`` (a copy keeps its source's; an object store has none).
Making a payload durable is the write protocol's (``api.writing``).

Each version's record also lies beside its payload folder, in
``<root>/<name>/<uuid>.manifest.json`` (``stores.layout.manifest_file``; :func:`write_manifest_file`; for a
path registered in place, in ``<root>/.artifactfs-registered/<uuid>.manifest.json``):
the store's journal of everything the index knows of the version (its
files, tags, metadata, the step runs that wrote and read it), built by one
function (:func:`journal_record`) and sealed, so that a lost or restored
index is rebuilt from the store (``artifactfs fsck --adopt``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import posixpath
import stat as stat_module
from collections import deque
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO, Any

from artifactfs.stores.base import ArtifactStore
from artifactfs.stores.beneath import LinkFound, files_below, open_below
from artifactfs.stores.durable import start_writeback
from artifactfs.stores.hashing import DEFAULT_ALGORITHM, new_hasher
from artifactfs.stores.layout import manifest_file

#: Chunks at least this large are hashed on a helper thread while writing goes on.
PARALLEL_HASH_CHUNK = 1024 * 1024
#: A large buffer is written and hashed in slices of this size, side by side.
HASH_SLICE = 8 * 1024 * 1024
DEFAULT_FILE_MODE = 0o644


@dataclass(frozen=True)
class ManifestEntry:
    path: str  # relative to the version folder, '/'-separated
    size: int
    mode: int
    digest: str


def content_hash(entries: list[ManifestEntry], algorithm: str = DEFAULT_ALGORITHM) -> str:
    """One hash over the sorted (path, size, file digest) of every file, so
    renaming or changing any file changes it."""
    digest = new_hasher(algorithm)
    for entry in sorted(entries, key=lambda e: e.path):
        digest.update(f"{entry.path}\0{entry.size}\0{entry.digest}\n".encode())
    return digest.hexdigest()


class _HashingWriter:
    """A binary or text writer that hashes what passes through it.

    Large writes are hashed on a helper thread while they are written (the
    hashers and the file write release the GIL), so a big payload costs
    max(write, hash) rather than their sum; one worker keeps the order of
    updates. Immutable ``bytes`` may still be hashing when ``write`` returns
    (at most two chunks in flight); any other buffer (a numpy array's memory,
    a bytearray the caller reuses) is hashed in place, slice by slice beside
    its write, and is done with when ``write`` returns: never copied.

    With ``writeback`` (a local file that will be fsynced), every large
    write is handed to the disk at once (``durable.start_writeback``), so
    the file streams to the disk while it is written.
    """

    def __init__(self, raw: IO, on_close, text: bool, encoding: str, algorithm: str,
                 writeback: bool = False) -> None:
        self._raw, self._on_close, self._text, self._encoding = raw, on_close, text, encoding
        self._hash, self._size, self._closed = new_hasher(algorithm, spread=False), 0, False
        self._hasher: ThreadPoolExecutor | None = None
        self._pending: deque[Future] = deque()
        self._writeback = writeback

    def write(self, data) -> int:
        chunk = data.encode(self._encoding) if self._text else data
        if isinstance(chunk, bytes):
            size = len(chunk)
            if size >= PARALLEL_HASH_CHUNK:
                self._hash_later(chunk)
                self._write_large(chunk, self._size)
            else:
                self._hash_now(chunk)
                self._raw.write(chunk)
        else:
            view = memoryview(chunk)
            view = view.cast("B") if view.c_contiguous else memoryview(view.tobytes())  # e.g. a Fortran-order buffer
            size = view.nbytes
            if size >= PARALLEL_HASH_CHUNK:
                self._write_beside_hash(view)
            else:
                self._hash_now(view)
                self._raw.write(view)
        self._size += size
        return len(data) if self._text else size  # a PickleBuffer (pickle protocol 5) has no len()

    def _pool(self) -> ThreadPoolExecutor:
        if self._hasher is None:
            self._hasher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="artifactfs-hash")
        return self._hasher

    def _hash_now(self, data) -> None:
        """Hash a small chunk here, or, while the helper still holds earlier
        ones, behind them there (a copy: the caller may reuse its buffer):
        one order of updates, and never two threads on the hasher at once."""
        if self._pending:
            self._hash_later(data if isinstance(data, bytes) else bytes(data))
        else:
            self._hash.update(data)

    def _hash_later(self, chunk: bytes) -> None:
        while len(self._pending) >= 2:  # bound the memory held by chunks in flight
            self._pending.popleft().result()
        self._pending.append(self._pool().submit(self._hash.update, chunk))

    def _write_beside_hash(self, view: memoryview) -> None:
        """Hash each slice of a caller's buffer while writing it; return only
        once all of it is hashed (the caller may then change the buffer)."""
        for offset in range(0, view.nbytes, HASH_SLICE):
            part = view[offset:offset + HASH_SLICE]
            self._pending.append(self._pool().submit(self._hash.update, part))
            self._write_large(part, self._size + offset)
        while self._pending:
            self._pending.popleft().result()

    def _write_large(self, data, offset: int) -> None:
        self._raw.write(data)
        if self._writeback:
            self._raw.flush()
            start_writeback(self._raw.fileno(), offset, len(data))

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._raw.close()
        finally:
            if self._hasher is not None:
                self._hasher.shutdown(wait=True)
        self._on_close(self._size, self._hash.hexdigest())

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __getattr__(self, name: str) -> Any:  # flush, tell, seekable, ...
        return getattr(self._raw, name)

    @property
    def closed(self) -> bool:
        return self._closed

    def writable(self) -> bool:
        return True


class RecordingStore:
    """The store as seen by a materializer saving one version: same methods,
    and a manifest of everything written below ``folder``."""

    def __init__(self, store: ArtifactStore, folder: str, algorithm: str = DEFAULT_ALGORITHM,
                 durable: bool = False, native: str | None = None, dir_fd: int | None = None) -> None:
        """``native``: ``folder`` already resolved by the caller (saves a
        lookup). ``dir_fd``: a descriptor of the local folder, which the
        caller made: files below it are created from it, no link followed.
        ``durable``: the caller will fsync the files (``api.writing``), so
        large writes start their write-back at once."""
        self.store = store
        self.algorithm = algorithm
        self.durable = durable and store.is_local  # object stores acknowledge a PUT once it is stored
        self.folder = native or store.resolve(folder)
        self.folder_uri = store.flavor.to_uri(self.folder)
        self.dir_fd = dir_fd if store.is_local else None
        self._entries: dict[str, ManifestEntry] = {}
        self._modes: dict[str, int] = {}  # native path -> file_mode asked for, or found when created

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def _inside(self, path: str) -> str | None:
        """``path`` relative to the folder being written when it is a plain
        path below it (no ``..``, no empty part), else None."""
        if path.startswith(self.folder_uri + "/"):
            relative = path[len(self.folder_uri) + 1:]
            parts = relative.split("/")
            if "\x00" not in relative and not any(p in ("", ".", "..") for p in parts):
                return relative
        return None

    def _resolve(self, path: str) -> str:
        """``store.resolve``, without its symlink lookups for a plain path
        inside the folder being written: nothing but this save writes there."""
        relative = self._inside(path)
        return self.folder + "/" + relative if relative is not None else self.store.resolve(path)

    def _relative(self, native: str) -> str | None:
        prefix = self.folder.rstrip("/") + "/"
        return native[len(prefix):] if native.startswith(prefix) else None

    def _record(self, native: str, size: int, digest: str) -> None:
        relative = self._relative(native)
        if relative is not None:
            self._entries[relative] = ManifestEntry(relative, size, self._mode_of(native), digest)

    def _mode_of(self, native: str) -> int:
        if native in self._modes:
            return self._modes[native] & 0o777
        if self.store.is_local:
            return stat_module.S_IMODE(self.store.beneath.lstat(self.store.local_relative(native)).st_mode)
        return DEFAULT_FILE_MODE

    def open(self, path: str, mode: str = "r", file_mode: int | None = None, **kwargs: Any) -> IO:
        native = self._resolve(path)
        if not any(flag in mode for flag in "wax"):
            return self.store.open(path, mode, **kwargs)
        if file_mode is not None:
            self._modes[native] = file_mode
        if "+" in mode or "a" in mode:
            self._entries.pop(self._relative(native) or "", None)  # re-hashed by finish()
            return self.store.open(path, mode, file_mode=file_mode, **kwargs)
        encoding = kwargs.pop("encoding", None) or "utf-8"
        binary_mode = mode.replace("t", "").replace("b", "") + "b"
        relative = self._inside(path) if self.dir_fd is not None else None
        raw: IO
        if self.dir_fd is not None and relative is not None and not kwargs:  # created from the folder's descriptor
            flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if "x" in mode else os.O_TRUNC)
            fd = open_below(self.dir_fd, relative, flags, create=True, file_mode=file_mode)
            if file_mode is None:
                self._modes[native] = os.fstat(fd).st_mode
            raw = open(fd, "wb")  # noqa: SIM115
        elif self.store.is_local and not kwargs:  # a plain file beneath the root's descriptor, folders made, no link followed
            raw = open(native, binary_mode, opener=self.store.fs.opener(native, binary_mode, file_mode))  # noqa: SIM115
        else:
            raw = self.store.fs.open(native, binary_mode, **kwargs)
        return _HashingWriter(raw, lambda size, h: self._record(native, size, h), "b" not in mode, encoding,
                              self.algorithm, writeback=self.durable and isinstance(raw, io.BufferedWriter))

    def put(self, local_path: str, path: str) -> None:
        native = self.store.resolve(path)
        size, digest = hash_local_file(local_path, self.algorithm)
        self.store.put(local_path, path)
        self._record(native, size, digest)

    def finish(self) -> list[ManifestEntry]:
        """The manifest of the folder: recorded hashes for what went through
        this wrapper, a read for anything written by other means. Making it
        durable is the caller's (``api.writing``)."""
        entries = []
        for relative in self._find():  # a missing folder finds nothing
            entry = self._entries.get(relative)
            if entry is None:
                entry = self._hash_existing(relative)
            entries.append(entry)
        return entries

    def _find(self) -> list[str]:
        if not self.store.is_local:
            return self.store.find(self.folder_uri)
        if self.dir_fd is not None:
            return files_below(self.dir_fd)
        # Beneath the root's descriptor; a link is no payload file: it is never followed, and refused.
        return self.store.beneath.files(self.store.local_relative(self.folder), on_link=_refuse_link(self.store))

    def _hash_existing(self, relative: str) -> ManifestEntry:
        native = posixpath.join(self.folder, relative)
        entry = manifest_entry(self.store, native, relative, self.algorithm)
        return ManifestEntry(relative, entry.size, self._mode_of(native), entry.digest)


# -- hashing files that already exist --------------------------------------------------


class HashingReader:
    """A binary reader that hashes everything read through it, in order.

    ``readinto`` of a large buffer (numpy reading an array's memory) hashes
    each slice on a helper thread while the next is read, so verifying costs
    max(read, hash) rather than their sum. :meth:`finish` reads whatever is
    left and returns ``(size, hex digest)`` of the whole file; closing calls
    ``check(size, digest)`` with them first, if given. Not seekable.
    """

    def __init__(self, raw: IO[bytes], algorithm: str = DEFAULT_ALGORITHM, check=None) -> None:
        self._raw, self._hash, self._size, self._check = raw, new_hasher(algorithm), 0, check
        self._hasher: ThreadPoolExecutor | None = None

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self._hash.update(data)
        self._size += len(data)
        return data

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        if view.nbytes < PARALLEL_HASH_CHUNK:
            count = self._raw.readinto(view) or 0
            self._hash.update(view[:count])
            self._size += count
            return count
        if self._hasher is None:
            self._hasher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="artifactfs-hash")
        pending, count = [], 0
        while count < view.nbytes:
            got = self._raw.readinto(view[count:count + HASH_SLICE]) or 0
            if not got:
                break
            pending.append(self._hasher.submit(self._hash.update, view[count:count + got]))
            count += got
        for future in pending:  # done with the caller's buffer before returning
            future.result()
        self._size += count
        return count

    def finish(self) -> tuple[int, str]:
        """Read to the end; ``(size, hex digest)`` of everything."""
        if len(self.read(PARALLEL_HASH_CHUNK)) == PARALLEL_HASH_CHUNK:  # a large file: read beside hashing
            buffer = bytearray(4 * HASH_SLICE)
            while self.readinto(buffer):
                pass
        while self.read(PARALLEL_HASH_CHUNK):  # a short read before the end (a pipe, a remote file)
            pass
        if self._hasher is not None:
            self._hasher.shutdown(wait=True)
            self._hasher = None
        return self._size, self._hash.hexdigest()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        check, self._check = self._check, None
        try:
            if check is not None:
                check(*self.finish())
        finally:
            if self._hasher is not None:
                self._hasher.shutdown(wait=True)
            self._raw.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()



def hash_stream(f: IO[bytes], algorithm: str = DEFAULT_ALGORITHM) -> tuple[int, str]:
    """``(size, hex digest)`` of what is left to read in a binary file object
    (reading and hashing side by side)."""
    return HashingReader(f, algorithm).finish()


def hash_local_file(path: str, algorithm: str = DEFAULT_ALGORITHM) -> tuple[int, str]:
    with open(path, "rb") as f:
        return hash_stream(f, algorithm)


def hash_store_file(store: ArtifactStore, native: str, algorithm: str = DEFAULT_ALGORITHM) -> tuple[int, str]:
    with store.fs.open(native, "rb") as f:
        return hash_stream(f, algorithm)


def manifest_entry(store: ArtifactStore, native: str, relative: str,
                   algorithm: str = DEFAULT_ALGORITHM) -> ManifestEntry:
    """The manifest row of an existing file: read once; on a local store
    opened beneath the root without following links, with the mode of
    what was opened."""
    if store.is_local:
        size, digest, mode = store.beneath.hash_file(store.local_relative(native), algorithm)
        return ManifestEntry(relative, size, mode, digest)
    size, digest = hash_store_file(store, native, algorithm)
    return ManifestEntry(relative, size, DEFAULT_FILE_MODE, digest)


def _refuse_link(store: ArtifactStore):
    """An ``on_link`` for walks of a payload: a link in it is refused, naming it."""
    def refuse(relative: str) -> None:
        raise LinkFound(store.beneath.full(relative))
    return refuse


# -- the manifest file beside a payload folder: the store's journal of the index ----------

#: 2: the complete journal (tags, metadata, producers, consumers, a seal); 1 is still read.
MANIFEST_FILE_FORMAT = 2
READABLE_FORMATS = (1, 2)
#: Where the manifest files of versions registered in place lie (a registered
#: folder is the user's: nothing of ours goes into it or beside it).
REGISTERED_JOURNAL = ".artifactfs-registered"
#: The version facts a manifest file carries, in this order.
VERSION_FIELDS = ("uuid", "name", "version", "version_number", "payload_kind", "materializer", "data_type",
                  "artifact_type", "hash_algorithm", "content_hash", "save_type", "visualizations", "created_at",
                  "in_place")


class JournalError(ValueError):
    """A manifest file that cannot be trusted: unreadable, of an unknown
    format, or changed since artifactfs wrote it (its seal does not match)."""


def journal_folder(store: ArtifactStore, uri: str, uuid: str) -> str:
    """The folder (relative to the store root) whose manifest file is the
    journal of version ``uuid`` at ``uri``: its own payload folder
    ``<name>/<uuid>``, or, for a path registered in place,
    ``.artifactfs-registered/<uuid>``."""
    relative = store.relpath(uri).rstrip("/")
    if relative.rpartition("/")[2] == uuid:
        return relative
    return f"{REGISTERED_JOURNAL}/{uuid}"


def journal_record(version: Any, name: str, number: str | None, created_at: Any, *,
                   in_place: str | None = None, tags: Iterable[str] = (),
                   metadata: Iterable[tuple[str, Any, str]] = (), producers: Iterable[dict] = (),
                   consumers: Iterable[dict] = ()) -> dict[str, Any]:
    """THE record a manifest file keeps of a version (one builder: the
    commit and every later update write this shape). ``version``: anything
    with the version's attributes (a ``NewVersion`` or a version row);
    ``metadata``: ``(key, stored value, type)`` as the index keeps them, in
    order; ``producers``/``consumers``: :func:`link_record` of the step runs
    that wrote or read it. Nothing secret is in the index, so nothing secret
    is here: store options and credentials never are."""
    number_value = None if number is None else (int(number) if str(number).isdigit() and len(str(number)) < 19
                                                else None)
    stamp = _stamp(created_at)
    return {
        "uuid": version.uuid, "name": name, "version": number, "version_number": number_value,
        "payload_kind": version.payload_kind, "materializer": version.materializer, "data_type": version.data_type,
        "artifact_type": version.artifact_type, "hash_algorithm": version.hash_algorithm,
        "content_hash": version.content_hash, "save_type": version.save_type,
        "visualizations": list(getattr(version, "visualizations", None) or []), "created_at": stamp,
        "in_place": in_place,
        "tags": sorted(set(tags)),
        "metadata": [[key, value, kind] for key, value, kind in metadata],
        "producers": list(producers), "consumers": list(consumers),
    }


def link_record(name: str, step: dict[str, Any], seq: int | None = None) -> dict[str, Any]:
    """One link of a version's journal: the step run (:func:`step_record`)
    that wrote or read it under ``name``; ``seq`` keeps the order links were
    made in (the index's link id, None before the commit)."""
    return {"name": name, "seq": seq, "step": step}


def step_record(uuid: str, name: str, status: str, *, code_hash: str | None, cache_key: str | None,
                parameters: Any, start_time: Any, end_time: Any, original: str | None, seq: int | None,
                metadata: Iterable[tuple[str, Any, str]], run: dict[str, Any]) -> dict[str, Any]:
    """A step run as the journal keeps it: enough to rebuild its row."""
    return {"uuid": uuid, "name": name, "status": status, "code_hash": code_hash, "cache_key": cache_key,
            "parameters": parameters, "start_time": _stamp(start_time), "end_time": _stamp(end_time),
            "original": original, "seq": seq, "metadata": [[k, v, t] for k, v, t in metadata], "run": run}


def run_record(uuid: str, name: str, pipeline: str, status: str, *, parameters: Any, start_time: Any,
               end_time: Any, seq: int | None, metadata: Iterable[tuple[str, Any, str]]) -> dict[str, Any]:
    """A pipeline run as the journal keeps it: enough to rebuild its row."""
    return {"uuid": uuid, "name": name, "pipeline": pipeline, "status": status, "parameters": parameters,
            "start_time": _stamp(start_time), "end_time": _stamp(end_time), "seq": seq,
            "metadata": [[k, v, t] for k, v, t in metadata]}


def _stamp(value: Any) -> str | None:
    """A time as ISO 8601 text, UTC (a naive time, as SQLite returns them, is UTC)."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo is not None else value.replace(tzinfo=dt.timezone.utc)).isoformat()
    return str(value)


def seal(body: str) -> str:
    """A digest of a manifest file's content (its JSON text without the
    seal, as ``json.dumps`` writes it): an edit by hand or a torn write shows
    as a seal that does not match."""
    return hashlib.sha256(body.encode()).hexdigest()


def manifest_text(entries: list[ManifestEntry], record: dict[str, Any]) -> str:
    """The whole content of a manifest file: format, record, files, then the
    seal of all that (one serialization: saves write one per version)."""
    data = {"format": MANIFEST_FILE_FORMAT, **record,
            "files": [{"path": e.path, "size": e.size, "mode": e.mode, "digest": e.digest} for e in entries]}
    body = json.dumps(data, default=str)  # key order kept: parameters read back as given
    return f'{body[:-1]}, "seal": "{seal(body)}"}}'


def manifest_bytes(entries: list[ManifestEntry], record: dict[str, Any]) -> bytes:
    """:func:`manifest_text` as the bytes a writer puts in the file."""
    return manifest_text(entries, record).encode()


def write_manifest_file(store: ArtifactStore, folder: str, entries: list[ManifestEntry],
                        meta: dict[str, Any]) -> str:
    """Write ``<folder>.manifest.json``: the version's record (``meta``, from
    :func:`journal_record`) and its files, sealed. Returns the file's URI.
    It goes through the store's ``open`` (object stores too)."""
    target = manifest_file(folder)
    with store.open(target, "w") as f:
        f.write(manifest_text(entries, meta))
    return store.uri(target)


def parse_manifest(raw: bytes) -> tuple[dict[str, Any], list[ManifestEntry]]:
    """``(record, files)`` of a manifest file's bytes; :class:`JournalError`
    when it cannot be trusted (format 1 files have no seal)."""
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise JournalError(f"it is not JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") not in READABLE_FORMATS:
        raise JournalError(f"unknown manifest file format {data.get('format') if isinstance(data, dict) else data!r}")
    if data["format"] >= 2:
        sealed = data.pop("seal", None)
        if sealed != seal(json.dumps(data)):
            raise JournalError("its content does not match its seal: it was changed after artifactfs wrote it")
    try:
        files = [ManifestEntry(str(f["path"]), int(f["size"]), int(f["mode"]), str(f["digest"]))
                 for f in data.pop("files")]
    except (KeyError, TypeError, ValueError) as exc:
        raise JournalError(f"its file list cannot be read ({type(exc).__name__}: {exc})") from None
    data.pop("seal", None)
    return data, files


def read_manifest_file(store: ArtifactStore, folder: str) -> tuple[dict[str, Any], list[ManifestEntry]]:
    """``(record, files)`` of a payload folder's manifest file.
    FileNotFoundError when there is none; :class:`JournalError` (a
    ValueError) when it cannot be read or trusted."""
    return parse_manifest(store.read_bytes(manifest_file(folder)))
