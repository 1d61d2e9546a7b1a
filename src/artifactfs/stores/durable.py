"""Making local payloads durable: fsync of files and of the folders that
name them, so that after a power cut the index never names a payload that
did not reach the disk (DESIGN.md, write protocol step 3).

A file's data is durable after ``fsync`` of the file; its name only after
``fsync`` of the folder holding the name, and that folder's name only after
``fsync`` of its parent. A fresh payload ``<root>/<name>/<uuid>/...`` so
needs its files, every folder inside it, its manifest file, ``<name>/`` and
the root (which ones: ``api.writing``). The calls run concurrently on a few
threads: the filesystem's journal then commits them together instead of
once each.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import fcntl
import os
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from artifactfs.faults import fault_point
from artifactfs.stores.beneath import open_below

#: Threads that issue fsyncs at once (they mostly wait on the disk).
SYNC_THREADS = 4

_pool: ThreadPoolExecutor | None = None
_pool_pid = 0


def fsync_fd(fd: int) -> None:
    """fsync a descriptor the caller holds (a folder a save made)."""
    fault_point("before_fsync")
    os.fsync(fd)


def fsync_beneath(dir_fd: int, relative: str) -> None:
    """fsync the file or folder ``relative`` below ``dir_fd``, reached
    without following a link. One deleted meanwhile, or swapped for a link
    (never followed) or a FIFO (never waited on), is skipped: the commit's
    payload check, which always follows, refuses the save with a clear error."""
    fault_point("before_fsync")
    try:
        fd = open_below(dir_fd, relative, os.O_RDONLY | os.O_NONBLOCK)
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


class SyncJob:
    """fsyncs running on helper threads, so that a save can prepare its
    index transaction meanwhile; :meth:`wait` before committing. ``tasks``:
    calls that each fsync one thing (:func:`fsync_fd`, :func:`fsync_beneath`)."""

    def __init__(self, tasks: list[Callable[[], None]]) -> None:
        pool = _executor()
        self._futures = [pool.submit(task) for task in tasks]

    def wait(self) -> None:
        """Block until every path is durable; raise the first failure."""
        for future in self._futures:
            future.result()


def start_sync(tasks: list[Callable[[], None]]) -> SyncJob:
    """Run every fsync call concurrently: the filesystem's journal then
    commits them together."""
    return SyncJob(tasks)


# -- name folders whose entry in the root is durable ------------------------------------
#
# A payload's name folder is named in the store root; the root is fsynced so
# that the name survives a power cut. Once this process has fsynced a root
# after seeing a name folder in it, that entry is durable, and later saves
# of the name skip the root's fsync (about a millisecond on a busy disk).
# A name folder is known by its device, inode and the inode's generation
# number, which changes when a removed folder's inode number is reused: a
# folder made again is never mistaken for the one whose entry was made
# durable. Where the filesystem has no generation number the root is
# fsynced every time.

_FS_IOC_GETVERSION = 0x80087601  # linux/fs.h: _IOR('v', 1, long)
_durable_entries: set[tuple[int, int, int]] = set()


def folder_identity(fd: int) -> tuple[int, int, int] | None:
    """``(device, inode, generation)`` of an open folder: one folder for its
    whole life; None where the filesystem does not tell the generation."""
    try:
        generation = fcntl.ioctl(fd, _FS_IOC_GETVERSION, bytes(8))
    except OSError:
        return None
    number = int.from_bytes(generation, sys.byteorder)
    if number == 0:  # a filesystem that keeps none (or an inode made before it did)
        return None
    info = os.fstat(fd)
    return info.st_dev, info.st_ino, number


def entry_durable(identity: tuple[int, int, int] | None) -> bool:
    """Whether this process fsynced the root holding the folder ``identity``
    after the folder was there (its name in the root is on disk)."""
    return identity is not None and identity in _durable_entries


def fsync_root(root_fd: int, identities: list[tuple[int, int, int] | None]) -> None:
    """fsync a store root; then the name folders ``identities``, all seen in
    it before, are known to have durable entries."""
    fsync_fd(root_fd)
    _durable_entries.update(i for i in identities if i is not None)


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
