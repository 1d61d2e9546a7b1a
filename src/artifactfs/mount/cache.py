"""The persistent block cache of remote payload files: which blocks of which
file are on local disk, reading and writing them, and keeping the whole
cache under its size bound (LRU, never evicting a file that is open).

Payloads never change once committed, so a cached block is valid forever.
A file is keyed by its version's id (uuid) and its manifest path and lives
at ``<root>/<uuid[:2]>/<uuid>/<sha256(path)[:32]>``: ``.data`` is a sparse
file of the payload's size, ``.map`` a small sidecar: one JSON header line
(format, path, size, block size) then one bit per block. A block's bit is
saved only after the data file was synced (:meth:`CachedFile.persist`), so
after a crash or a restart the map never claims a block that is not on disk.

Fetching blocks from stores, read-ahead and timeouts are ``reader.py``'s job;
this module does local IO only and is safe to call from worker threads.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import mmap
import os
import stat
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from artifactfs.errors import ConfigError
from artifactfs.settings import private_dir

log = logging.getLogger(__name__)

BLOCK_SIZE = 1 << 20
FORMAT = "artifactfs-cache-1"
MAP_SUFFIX = ".map"
DATA_SUFFIX = ".data"


@dataclass(frozen=True)
class CacheKey:
    version_uuid: str
    path: str

    def stem(self, root: Path) -> Path:
        """The path (without suffix) of this file's data and block map under the cache folder ``root``."""
        digest = hashlib.sha256(self.path.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        return root / self.version_uuid[:2] / self.version_uuid / digest


class CachedFile:
    """One payload file in the cache. Shared by every open of the file."""

    def __init__(self, cache: BlockCache, key: CacheKey, size: int) -> None:
        self.cache, self.key, self.size = cache, key, size
        self.block_size = cache.block_size
        self.blocks = max(1, -(-size // self.block_size))
        self.stem = key.stem(cache.held)
        self._lock = threading.Lock()
        self._writes_done = threading.Condition(self._lock)  # close waits for writes in progress
        self._writing = 0
        self._bits = bytearray(-(-self.blocks // 8))
        self._present = 0
        self._dirty = False
        self._fd = -1
        self._map: mmap.mmap | None = None
        self._view: memoryview | None = None
        self.opens = 0
        self._load()

    # -- state ------------------------------------------------------------------

    def _load(self) -> None:
        """Open (or create) the data file and trust the map only if it matches."""
        self.stem.parent.mkdir(parents=True, exist_ok=True)
        data_path = self.stem.with_suffix(DATA_SUFFIX)
        self._fd = os.open(data_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            header, bits = _read_map(self.stem.with_suffix(MAP_SUFFIX))
            info = os.fstat(self._fd)
            if (header.get("format") == FORMAT and header.get("size") == self.size
                    and header.get("block") == self.block_size and len(bits) == len(self._bits)
                    and info.st_size == self.size and header.get("data") == [info.st_dev, info.st_ino]):
                self._bits[:] = bits
                self._present = sum(bin(b).count("1") for b in bits)
        except (OSError, ValueError):
            pass
        if self._present == 0 and os.fstat(self._fd).st_size != self.size:
            os.ftruncate(self._fd, 0)
            os.ftruncate(self._fd, self.size)

    @property
    def complete(self) -> bool:
        """Whether every block of the file is in the cache."""
        return self._present == self.blocks

    @property
    def cached_bytes(self) -> int:
        """How many bytes of the file the cache holds (the last block may be short)."""
        return _bytes_of(self._present, self.has(self.blocks - 1), self.size, self.block_size)

    def has(self, block: int) -> bool:
        """Whether block number ``block`` is in the cache."""
        return bool(self._bits[block >> 3] & (1 << (block & 7)))

    def missing(self, first: int, last: int) -> list[int]:
        """Blocks in ``first..last`` (inclusive) that are not cached."""
        last = min(last, self.blocks - 1)
        return [b for b in range(first, last + 1) if not self._bits[b >> 3] & (1 << (b & 7))]

    # -- io ---------------------------------------------------------------------

    def write(self, offset: int, data: bytes) -> None:
        """Store fetched bytes (whole blocks, or up to the end of the file).
        Writes of different ranges run at once: the lock covers the map only."""
        if offset % self.block_size or (len(data) % self.block_size and offset + len(data) != self.size):
            raise ValueError(f"unaligned cache write at {offset} of {len(data)} bytes")
        first = offset // self.block_size
        count = -(-len(data) // self.block_size)
        added = 0
        with self._lock:
            if self._fd < 0:  # closed meanwhile (an abandoned fetch): drop it
                return
            self._writing += 1  # the descriptor stays open until this write is done
        done = False
        try:
            written = os.pwrite(self._fd, data, offset)
            while written < len(data):  # pwrite may write less (a signal, a very large range)
                written += os.pwrite(self._fd, memoryview(data)[written:], offset + written)
            done = True
        finally:
            with self._lock:
                self._writing -= 1
                if not self._writing:
                    self._writes_done.notify_all()
                if done:  # the map claims a block only once its bytes are written
                    for block in range(first, first + count):
                        if not self.has(block):
                            self._bits[block >> 3] |= 1 << (block & 7)
                            self._present += 1
                            added += min(self.block_size, self.size - block * self.block_size)
                    self._dirty = True
        if added:
            self.cache.grew(self, added)

    def pread(self, offset: int, size: int) -> bytes:
        """``size`` cached bytes at ``offset`` (the caller checked that their blocks are present)."""
        return os.pread(self._fd, size, offset)

    def view(self) -> memoryview | None:
        """The whole data file, mapped: slices of the cached blocks cost no
        copy of ours (pyfuse3 copies them straight into the reply). Safe: the
        data file has its full size from the start, and a cache file that is
        open is never truncated nor evicted. Holes read as zeros: only read
        blocks that ``has`` says are cached."""
        if self._view is None and self.size:
            with self._lock:
                if self._view is None and self._fd >= 0:
                    self._map = mmap.mmap(self._fd, self.size, prot=mmap.PROT_READ)
                    self._view = memoryview(self._map)
        return self._view

    def persist(self) -> None:
        """Sync the data, then save the map (so it never runs ahead of the data)."""
        with self._lock:
            if not self._dirty or self._fd < 0:
                return
            os.fdatasync(self._fd)
            bits = bytes(self._bits)
            self._dirty = False
        info = os.fstat(self._fd)
        header = {"format": FORMAT, "path": self.key.path, "size": self.size, "block": self.block_size,
                  "data": [info.st_dev, info.st_ino]}  # a map vouches for this very data file only
        _write_map(self.stem.with_suffix(MAP_SUFFIX), header, bits)

    def close(self) -> None:
        """Write the block map down, mark the file as used now (the LRU after a restart), and let go of it."""
        self.persist()
        try:  # the map's mtime is the last use, for the LRU after a restart
            os.utime(self.stem.with_suffix(MAP_SUFFIX))
        except OSError:
            pass
        with self._lock:
            while self._writing:  # an abandoned fetch may still be writing
                self._writes_done.wait()
            if self._view is not None:
                try:
                    self._view.release()
                    self._map.close()
                except BufferError:  # a slice still referenced: the GC unmaps it
                    pass
                self._view = self._map = None
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


def _bytes_of(present: int, has_last: bool, size: int, block_size: int) -> int:
    """Bytes held by ``present`` blocks (the last block may be short)."""
    if not present:
        return 0
    tail = size - (-(-size // block_size) - 1) * block_size
    return present * block_size - (block_size - tail if has_last else 0)


def _read_map(path: Path) -> tuple[dict, bytes]:
    with open(path, "rb") as f:
        raw = f.read()
    head, sep, bits = raw.partition(b"\n")
    if not sep:
        raise ValueError("no header")
    return json.loads(head), bits


def _write_map(path: Path, header: dict, bits: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "wb") as f:
        f.write(json.dumps(header).encode() + b"\n" + bits)
    os.replace(tmp, path)


def own_folder(path: Path) -> int:
    """A descriptor of the cache folder ``path``, refused (ConfigError) when
    another user owns it or may write to it: that user could plant a link
    where a cached file goes (root's mount would then write through it) or
    write blocks and a map vouching for them (the mount would serve them as
    the payload). Checked on the descriptor itself, not on the name."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    info = os.fstat(fd)
    why = None
    if info.st_uid != os.geteuid():
        why = f"another user (uid {info.st_uid}) owns it"
    elif info.st_mode & 0o022:
        why = f"another user may write to it (mode {stat.S_IMODE(info.st_mode):04o})"
    if why is not None:
        os.close(fd)
        raise ConfigError(f"the cache folder {path} is not private: {why}, and could plant links or forged "
                          "blocks there",
                          "pass --cache-dir a folder only you can write (a new one is made private), or "
                          f"`chmod go-w {path}` if it is yours")
    return fd


def _prune_empty(folder: Path, root: Path) -> None:
    while folder != root and root in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent


@dataclass
class _Entry:
    """What the LRU knows of a cached file, open or not."""

    stem: Path
    bytes: int
    opened: CachedFile | None = None


class CacheInUse(OSError):
    """Another process (another mount) uses this cache folder."""


class BlockCache:
    """All cached files under ``root``, at most ``capacity`` bytes of blocks
    (files that are open may push it over until they are closed). One
    process at a time uses a cache folder (an exclusive lock on ``lock``)."""

    def __init__(self, root: Path | str, capacity: int, block_size: int = BLOCK_SIZE) -> None:
        self.root = Path(root)
        self.capacity = capacity
        self.block_size = block_size
        self._lock = threading.Lock()
        self._entries: OrderedDict[CacheKey, _Entry] = OrderedDict()
        self._total = 0
        self._over_logged = False
        self._started = time.time()
        private_dir(self.root)  # cached payloads are their owner's alone
        self._root_fd = own_folder(self.root)
        #: The folder held open: every file of the cache is reached through
        #: it, so the name ``root`` swapped for another folder (or a link)
        #: later changes nothing. (Not yet ``stores.beneath.Root``, the owner
        #: of link-free paths beneath a held folder: the cache's files are
        #: still Paths here; nobody else may write this folder, so only
        #: the last component needs O_NOFOLLOW.)
        self.held = Path(f"/proc/self/fd/{self._root_fd}")
        try:
            self._lock_fd = os.open(self.held / "lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except BaseException:
            os.close(self._root_fd)
            raise
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            os.close(self._root_fd)
            raise CacheInUse(f"the cache folder {self.root} is used by another artifactfs mount") from None

    @property
    def total_bytes(self) -> int:
        """The bytes the cache holds, every file counted."""
        return self._total

    def scan(self) -> None:
        """Learn what earlier runs left in the cache (oldest use first)."""
        found = []
        for data_path in self.held.glob(f"*/*/*{DATA_SUFFIX}"):
            # A data file without a map is left from a crash before its first
            # save (files opened since this start are not touched).
            try:
                if not data_path.with_suffix(MAP_SUFFIX).exists() and data_path.stat().st_mtime < self._started:
                    data_path.unlink()
                    _prune_empty(data_path.parent, self.held)
            except OSError:
                pass
        for map_path in self.held.glob(f"*/*/*{MAP_SUFFIX}"):
            try:
                header, bits = _read_map(map_path)
                used = map_path.stat().st_mtime
            except (OSError, ValueError):
                continue
            if header.get("format") != FORMAT or header.get("block") != self.block_size:
                continue
            present = sum(bin(b).count("1") for b in bits)
            size, blocks = int(header.get("size", 0)), -(-int(header.get("size", 0)) // self.block_size)
            has_last = blocks > 0 and len(bits) * 8 >= blocks and bool(bits[(blocks - 1) >> 3] & (1 << ((blocks - 1) & 7)))
            size = _bytes_of(present, has_last, size, self.block_size)
            key = CacheKey(map_path.parent.name, header.get("path", ""))
            found.append((used, key, _Entry(map_path.with_suffix(""), size)))
        found.sort(key=lambda item: item[0])
        with self._lock:
            for _, key, entry in found:
                if key not in self._entries:
                    self._entries[key] = entry
                    self._total += entry.bytes
        self._evict()

    def open(self, key: CacheKey, size: int) -> CachedFile:
        """The cached file for ``key`` (created empty if new); pinned until
        :meth:`release` is called as often as ``open``."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.opened is not None:
                entry.opened.opens += 1
                self._entries.move_to_end(key)
                return entry.opened
        cached = CachedFile(self, key, size)  # disk IO outside the lock
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.opened is not None:  # lost a race
                winner = entry.opened
            else:
                winner = None
                if entry is None:
                    entry = self._entries[key] = _Entry(cached.stem, 0)
                self._total += cached.cached_bytes - entry.bytes
                entry.bytes, entry.opened = cached.cached_bytes, cached
                cached.opens = 1
                self._entries.move_to_end(key)
        if winner is not None:
            cached.close()
            with self._lock:
                winner.opens += 1
            return winner
        return cached

    def release(self, cached: CachedFile) -> None:
        """One open of ``cached`` ended; at the last, the file may be evicted again."""
        with self._lock:
            cached.opens -= 1
            last = cached.opens == 0
            if last:
                entry = self._entries.get(cached.key)
                if entry is not None and entry.opened is cached:
                    entry.opened = None
        if last:
            cached.close()
            self._evict()

    def grew(self, cached: CachedFile, nbytes: int) -> None:
        """``cached`` gained ``nbytes``; evict least recently used files that are not open when over capacity."""
        with self._lock:
            entry = self._entries.get(cached.key)
            if entry is not None:
                entry.bytes += nbytes
                self._total += nbytes
        if self._total > self.capacity:
            self._evict()

    def flush(self) -> None:
        """Save the maps of open files (called now and then, and at exit)."""
        with self._lock:
            opened = [e.opened for e in self._entries.values() if e.opened is not None]
        for cached in opened:
            try:
                cached.persist()
            except OSError as exc:
                log.warning("cache: could not save the map of %s: %s", cached.key.path, exc)

    def _evict(self) -> None:
        victims = []
        with self._lock:
            if self._total <= self.capacity:
                return
            for key, entry in list(self._entries.items()):
                if self._total <= self.capacity:
                    break
                if entry.opened is not None:
                    continue
                victims.append(entry)
                del self._entries[key]
                self._total -= entry.bytes
            if self._total > self.capacity and not self._over_logged:
                self._over_logged = True
                log.warning("cache: %d bytes in open files exceed --cache-size %d; "
                            "evicting them once they are closed", self._total, self.capacity)
        for entry in victims:
            for suffix in (MAP_SUFFIX, DATA_SUFFIX):
                try:
                    entry.stem.with_suffix(suffix).unlink()
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    log.warning("cache: could not remove %s: %s", entry.stem, exc)
            _prune_empty(entry.stem.parent, self.held)

    def close(self) -> None:
        """Close every open cached file and release the cache folder's lock."""
        with self._lock:
            opened = [e.opened for e in self._entries.values() if e.opened is not None]
        for cached in opened:
            cached.close()
        if self._lock_fd >= 0:
            os.close(self._lock_fd)  # releases the folder lock
            self._lock_fd = -1
            os.close(self._root_fd)

    def statistics(self) -> dict:
        """Files, bytes, capacity and open files of the cache, and when that was read."""
        with self._lock:
            return {"files": len(self._entries), "bytes": self._total, "capacity": self.capacity,
                    "open": sum(1 for e in self._entries.values() if e.opened is not None),
                    "time": time.time()}
