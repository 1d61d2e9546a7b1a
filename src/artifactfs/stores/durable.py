"""Making local payloads durable: fsync of files and of the folders that
name them, so that after a power cut the index never names a payload that
did not reach the disk (DESIGN.md, write protocol step 3).

A file's data is durable after ``fsync`` of the file; its name only after
``fsync`` of the folder holding the name, and that folder's name only after
``fsync`` of its parent. A fresh payload ``<root>/<name>/<uuid>/...`` so
needs its files, every folder inside it, ``<name>/`` and the root. The
calls run concurrently on a few threads: the filesystem's journal then
commits them together instead of once each.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import posixpath
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from artifactfs.faults import fault_point

#: Threads that issue fsyncs at once (they mostly wait on the disk).
SYNC_THREADS = 4

_pool: ThreadPoolExecutor | None = None
_pool_pid = 0


def fsync_path(path: str) -> None:
    """fsync one file or folder by path (read-only open is enough on Linux).
    A path deleted meanwhile, or swapped for a link (never followed) or a
    FIFO (never waited on), is skipped: the commit's payload check, which
    always follows, refuses the save with a clear error."""
    fault_point("before_fsync")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    except (FileNotFoundError, NotADirectoryError):
        return
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return
        raise
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def folders_to_sync(root: str, folder: str, files: Iterable[str]) -> list[str]:
    """Every folder whose entries make ``files`` (relative to ``folder``)
    reachable from ``root``: the folders inside the payload, the payload
    folder and each ancestor up to and including the root."""
    folders = {folder}
    for relative in files:
        parent = posixpath.dirname(posixpath.join(folder, relative))
        while parent != folder and parent not in folders:
            folders.add(parent)
            parent = posixpath.dirname(parent)
    ancestor = folder
    while ancestor != root and posixpath.dirname(ancestor) != ancestor:
        ancestor = posixpath.dirname(ancestor)
        folders.add(ancestor)
    return sorted(folders, key=len, reverse=True)


def sync_payload(root: str, folder: str, relatives: list[str]) -> None:
    """Make a local payload folder durable: its files (relative to
    ``folder``), the folders inside it, and its ancestors up to ``root``."""
    start_sync(payload_paths(root, folder, relatives)).wait()


def payload_paths(root: str, folder: str, relatives: list[str]) -> list[str]:
    """What :func:`sync_payload` fsyncs: files first, then folders, deepest first."""
    files = [posixpath.join(folder, relative) for relative in relatives]
    return files + folders_to_sync(root, folder, relatives)


class SyncJob:
    """fsyncs running on helper threads, so that a save can prepare its
    index transaction meanwhile; :meth:`wait` before committing."""

    def __init__(self, paths: list[str]) -> None:
        self._futures = [_executor().submit(fsync_path, path) for path in paths]

    def wait(self) -> None:
        """Block until every path is durable; raise the first failure."""
        for future in self._futures:
            future.result()


def start_sync(paths: list[str]) -> SyncJob:
    """fsync every path concurrently (the journal commits them together)."""
    return SyncJob(paths)


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing ``length`` bytes of a file at
    ``offset`` to the disk now, without waiting (Linux ``sync_file_range``
    with ``SYNC_FILE_RANGE_WRITE``): a large payload then streams to the
    disk while the rest is written, and its fsync finds little left to do.
    Where the call does not exist this does nothing."""
    call = _sync_file_range()
    if call is not None:
        call(fd, offset, length, _SYNC_FILE_RANGE_WRITE)


_SYNC_FILE_RANGE_WRITE = 2
_sfr: list = []


def _sync_file_range():
    """libc's ``sync_file_range`` (the os module has no binding), or None."""
    if not _sfr:
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            call = libc.sync_file_range
            call.argtypes = [ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_uint]
        except (OSError, AttributeError):
            call = None
        _sfr.append(call)
    return _sfr[0]


def _executor() -> ThreadPoolExecutor:
    """One pool per process (a forked child starts its own)."""
    global _pool, _pool_pid
    if _pool is None or _pool_pid != os.getpid():
        _pool = ThreadPoolExecutor(max_workers=SYNC_THREADS, thread_name_prefix="artifactfs-fsync")
        _pool_pid = os.getpid()
    return _pool
