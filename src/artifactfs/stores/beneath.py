"""Every operation on a local path beneath a store root, made relative to an
open descriptor of that root and never following a symbolic link.

Someone who can write a store (a shared folder, a folder registered in
place, another user of a shared store) can swap any file or folder under
the root for a link between a check and its use. So nothing here checks a
path first and uses it by name later: a path is walked component by
component from the root's descriptor, each component opened with
``O_NOFOLLOW`` relative to its parent's descriptor (or all at once with
Linux's ``openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`` where the kernel
has it), and what is then read, stat'ed, listed, hashed, copied, created or
deleted is reached through that descriptor (``fstat``, ``os.scandir(fd)``,
``os.unlink(name, dir_fd=...)``, ``shutil.rmtree(name, dir_fd=...)``).
A link met on the way raises :class:`LinkFound`, naming it; walks report it
and go on. What is opened for reading must be a regular file, checked on
the descriptor itself (a FIFO is opened non-blocking so it cannot hang a
reader).

It owns: the root descriptor (:class:`Root`), opening for reading and for
writing, lstat, listing, walking, hashing, copying out, deleting files,
empty folders and trees, the one component-wise containment check
(:func:`within`), and the same operations below a folder descriptor the
write path holds open (:func:`open_folder`, :func:`open_below`,
:func:`lstat_below`, :func:`files_below`, :func:`still_there`). Confinement of URIs (``..``, other schemes) is
``base.ArtifactStore.resolve``'s; following links that stay inside a tree a
user named (a watched or registered source folder) is ``localfiles``'s.
"""

from __future__ import annotations

import ctypes
import datetime as _dt
import errno
import os
import shutil
import stat
import sys
import threading
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from fsspec.spec import AbstractFileSystem

from artifactfs.errors import PathEscapeError, StoreError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
# errnos of an O_NOFOLLOW open that met a link (ELOOP; EMLINK on some BSDs)
# or of a walk that met a file where a folder should be (ENOTDIR).
_LINKISH = (errno.ELOOP, errno.EMLINK, errno.ENOTDIR)


class LinkFound(PathEscapeError, OSError):
    """A symbolic link lies where a payload file or folder (or a folder on
    the way to one) should be. It is never followed."""

    def __init__(self, path: str, refused: str | None = None, asked_is_link: bool = False) -> None:
        """``refused``: who refuses what, said first; ``asked_is_link``: the
        path refused is the link itself (then called "it", to keep the line short)."""
        self.path = path
        what = "it" if refused and asked_is_link else path
        super().__init__(
            (f"{refused}: " if refused else "")
            + f"{what} is a symbolic link, and no link under a store root is ever followed "
            "(nothing is read, listed or deleted through it)",
            "replace the link by the file or folder itself, or remove it",
        )
        self.errno = errno.ELOOP


def within(path: str, root: str) -> bool:
    """Component-wise containment of absolute or relative '/'-separated
    paths: '/store2' is not inside '/store'; a path is inside itself."""
    root_parts = [p for p in root.split("/") if p]
    parts = [p for p in path.split("/") if p]
    return parts[: len(root_parts)] == root_parts and path.startswith("/") == root.startswith("/")


def parts_of(relative: str) -> list[str]:
    """The components of a path relative to a root ('' is the root itself);
    ``..``, ``.`` and NUL bytes are refused: callers confine first."""
    parts = [p for p in relative.split("/") if p]
    if any(p in (".", "..") or "\x00" in p for p in parts):
        raise PathEscapeError(f"{relative!r} is not a plain path below a store root", "name it without '.' or '..'")
    return parts


# -- openat2 -------------------------------------------------------------------------------

_SYS_OPENAT2 = 437  # the same number on every Linux architecture (added in 5.6)
_RESOLVE_NO_MAGICLINKS, _RESOLVE_NO_SYMLINKS, _RESOLVE_BENEATH = 0x02, 0x04, 0x08
_RESOLVE_CACHED = 0x20  # fail with EAGAIN unless every component is in the kernel's lookup cache (5.12)


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_openat2: list = []


def _openat2_call() -> Callable | None:
    """libc's ``syscall`` bound for openat2, or None where the kernel (or a
    seccomp filter) lacks it: probed once per process."""
    if not _openat2:
        call = None
        if sys.platform == "linux":
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                syscall = libc.syscall
                syscall.restype = ctypes.c_long
                how = _OpenHow(os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, 0, _RESOLVE_NO_SYMLINKS)
                fd = syscall(ctypes.c_long(_SYS_OPENAT2), ctypes.c_int(-100), b"/",  # -100: AT_FDCWD
                             ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how)))
                if fd >= 0:
                    os.close(fd)
                    call = syscall
            except (OSError, AttributeError):
                call = None
        _openat2.append(call)
    return _openat2[0]


#: Whether opens use openat2 (one system call per open) where the kernel has
#: it (``bench/beneath_open.py`` measures it; figures in docs/DESIGN.md).
USE_OPENAT2 = True


def _open_at2(dir_fd: int, relative: str, flags: int, mode: int, resolve: int = 0) -> int:
    call = _openat2_call()
    assert call is not None, "callers check that the kernel has openat2"
    how = _OpenHow(flags, mode if flags & os.O_CREAT else 0,
                   _RESOLVE_BENEATH | _RESOLVE_NO_SYMLINKS | _RESOLVE_NO_MAGICLINKS | resolve)
    fd = call(ctypes.c_long(_SYS_OPENAT2), ctypes.c_int(dir_fd), os.fsencode(relative), ctypes.byref(how),
              ctypes.c_size_t(ctypes.sizeof(how)))
    if fd < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return fd


# -- the root ------------------------------------------------------------------------------


class Root:
    """An open descriptor of a local store root, and every operation beneath it.

    The root itself is the store's configured folder (links in its own path
    are the administrator's and are followed once, when it is opened); every
    path below it is relative, '/'-separated, and reached without following
    links. Thread-safe; the descriptor stays open for the object's life (a
    root removed and made again is opened again).
    """

    def __init__(self, path: str) -> None:
        self.path = path.rstrip("/") or "/"
        self._fd: int | None = None
        self._lock = threading.Lock()
        self._retired: list[int] = []
        self._identity: tuple[int, int, int] | None = None  # (fd, st_dev, st_ino) checked by held_fd()

    def __repr__(self) -> str:
        return f"Root({self.path!r})"

    def __del__(self) -> None:
        for fd in [self._fd, *self._retired]:
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass

    def fd(self) -> int:
        """The root's descriptor, opened on first use."""
        fd = self._fd
        if fd is None:
            with self._lock:
                if self._fd is None:
                    self._fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                fd = self._fd
        return fd

    def held_fd(self) -> int:
        """The root's descriptor for a save that holds it across its steps
        (``api.writing``): the folder made when missing, and checked with one
        ``stat`` against the folder now at the root's path, opened again when
        that is no longer the one held (deleted and made again). Folders made
        from it are then held too: no path the save built is looked up again."""
        try:
            now = os.stat(self.path)
        except FileNotFoundError:
            os.makedirs(self.path, exist_ok=True)
            now = os.stat(self.path)
        held = self._identity
        if held is not None and held[0] == self._fd and held[1:] == (now.st_dev, now.st_ino):
            return held[0]
        with self._lock:
            if self._fd is not None:
                opened = os.fstat(self._fd)
                if (opened.st_dev, opened.st_ino) == (now.st_dev, now.st_ino):
                    self._identity = (self._fd, opened.st_dev, opened.st_ino)
                    return self._fd
                self._retired.append(self._fd)  # another thread may still use it: closed with the object
            self._fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            opened = os.fstat(self._fd)
            self._identity = (self._fd, opened.st_dev, opened.st_ino)
            return self._fd

    def _reopened(self) -> bool:
        """After ENOENT: whether the root was removed and made again (then
        the descriptor is renewed, and the caller tries once more)."""
        try:
            now = os.stat(self.path)
        except OSError:
            return False
        with self._lock:
            if self._fd is None:
                return True
            held = os.fstat(self._fd)
            if (held.st_dev, held.st_ino) == (now.st_dev, now.st_ino):
                return False
            self._retired.append(self._fd)  # another thread may still use it: closed with the object
            self._fd = None
        return True

    def full(self, relative: str) -> str:
        """The absolute path of ``relative``, for messages."""
        return self.path if not relative else f"{self.path.rstrip('/')}/{relative.strip('/')}"

    # -- walking to a descriptor -----------------------------------------------------------

    def _retrying(self, action: Callable[[], object]):
        try:
            return action()
        except FileNotFoundError:
            if not self._reopened():
                raise
            return action()

    def open_fd(self, relative: str, flags: int, mode: int = 0o600, make_parents: bool = False) -> int:
        """A descriptor of ``relative`` opened with ``flags`` (``O_NOFOLLOW``
        and ``O_CLOEXEC`` added); no link is followed on the way or at the end."""
        return self._retrying(lambda: self._open_fd(relative, flags, mode, make_parents))

    def _open_fd(self, relative: str, flags: int, mode: int, make_parents: bool) -> int:
        parts = parts_of(relative)
        flags |= os.O_NOFOLLOW | os.O_CLOEXEC
        if not parts:
            return os.open(".", flags, dir_fd=self.fd())  # a fresh description: its own listing offset
        if USE_OPENAT2 and not make_parents and _openat2_call() is not None:
            try:
                return _open_at2(self.fd(), "/".join(parts), flags, mode)
            except OSError as exc:
                if exc.errno not in (errno.ELOOP, errno.EXDEV, errno.ENOTDIR, errno.EAGAIN, errno.ENOSYS):
                    raise OSError(exc.errno, exc.strerror, self.full(relative)) from None
                # a link (or a race the kernel refused to resolve): find and name it the slow way
        parent = self._parent_fd(parts, make_parents)
        try:
            return self._open_last(parent, parts, flags, mode)
        finally:
            if parent != self.fd():
                os.close(parent)

    def _open_cached(self, relative: str, flags: int) -> int:
        """``open_fd`` through ``openat2(RESOLVE_CACHED)``; BlockingIOError
        when that would wait on the disk, or when it would take the slow way
        (no openat2, a link on the way: the caller then opens it as usual)."""
        fd = self._fd
        if not (USE_OPENAT2 and fd is not None and _openat2_call() is not None):
            raise BlockingIOError(errno.EAGAIN, "not opened from the lookup cache")
        try:
            return _open_at2(fd, "/".join(parts_of(relative)), flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0,
                             _RESOLVE_CACHED)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                raise OSError(exc.errno, exc.strerror, self.full(relative)) from None
            raise BlockingIOError(errno.EAGAIN, "not opened from the lookup cache") from None

    def _open_last(self, parent: int, parts: list[str], flags: int, mode: int) -> int:
        try:
            return os.open(parts[-1], flags, mode, dir_fd=parent)
        except OSError as exc:
            if exc.errno in _LINKISH and _is_link(parts[-1], parent, exc):
                raise LinkFound(self.full("/".join(parts))) from None
            raise OSError(exc.errno, exc.strerror, self.full("/".join(parts))) from None

    def _parent_fd(self, parts: list[str], make_parents: bool = False) -> int:
        """The descriptor of the folder holding ``parts[-1]`` (the root's own
        for a top-level name: do not close that one)."""
        current = self.fd()
        try:
            for depth, name in enumerate(parts[:-1]):
                try:
                    fd = os.open(name, _DIR_FLAGS, dir_fd=current)
                except FileNotFoundError:
                    if not make_parents:
                        raise FileNotFoundError(errno.ENOENT, "No such file or directory",
                                                self.full("/".join(parts[: depth + 1]))) from None
                    try:
                        os.mkdir(name, 0o777, dir_fd=current)
                    except FileExistsError:
                        pass
                    fd = os.open(name, _DIR_FLAGS, dir_fd=current)
                except OSError as exc:
                    where = self.full("/".join(parts[: depth + 1]))
                    if exc.errno in _LINKISH and _is_link(name, current, exc):
                        raise LinkFound(where) from None
                    raise OSError(exc.errno, exc.strerror, where) from None
                if current != self.fd():
                    os.close(current)
                current = fd
            return current
        except BaseException:
            if current != self.fd():
                os.close(current)
            raise

    # -- reading ---------------------------------------------------------------------------

    def open_read_fd(self, relative: str, cached_only: bool = False) -> int:
        """A blocking read-only descriptor of the regular file ``relative``;
        ``fstat`` it for size and mode (never look the name up again).
        ``cached_only``: open only if the kernel's lookup cache holds every
        component (never waits on the disk), else BlockingIOError."""
        if cached_only:
            fd = self._open_cached(relative, _READ_FLAGS)
        else:
            fd = self.open_fd(relative, _READ_FLAGS)
        try:
            info = os.fstat(fd)
            if stat.S_ISDIR(info.st_mode):
                raise IsADirectoryError(errno.EISDIR, "Is a directory", self.full(relative))
            if not stat.S_ISREG(info.st_mode):
                raise StoreError(f"{self.full(relative)} is not a regular file (a FIFO, socket or device)",
                                 "store regular files only; remove it")
            os.set_blocking(fd, True)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def open_read(self, relative: str) -> BinaryIO:
        """The regular file ``relative`` as a binary file object."""
        return os.fdopen(self.open_read_fd(relative), "rb")

    def read_range(self, relative: str, start: int, end: int, chunk: int) -> Iterator[tuple[int, bytes]]:
        """``(offset, bytes)`` pieces of ``[start, end)`` read with ``pread``
        (a piece shorter than asked means the file ends there)."""
        fd = self.open_read_fd(relative)
        try:
            for offset in range(start, end, chunk):
                yield offset, os.pread(fd, min(chunk, end - offset), offset)
        finally:
            os.close(fd)

    def lstat(self, relative: str) -> os.stat_result:
        """The ``lstat`` of ``relative`` (a link is stat'ed, not followed)."""
        parts = parts_of(relative)
        if not parts:
            return os.fstat(self.fd())

        def look() -> os.stat_result:
            parent = self._parent_fd(parts)
            try:
                return os.stat(parts[-1], dir_fd=parent, follow_symlinks=False)
            except OSError as exc:
                raise OSError(exc.errno, exc.strerror, self.full(relative)) from None
            finally:
                if parent != self.fd():
                    os.close(parent)

        return self._retrying(look)

    def kind(self, relative: str) -> str | None:
        """"file", "folder", "link", "other", or None when nothing is there
        (a link on the way there raises :class:`LinkFound`)."""
        try:
            mode = self.lstat(relative).st_mode
        except (FileNotFoundError, NotADirectoryError):
            return None
        if stat.S_ISLNK(mode):
            return "link"
        return "file" if stat.S_ISREG(mode) else "folder" if stat.S_ISDIR(mode) else "other"

    def scandir(self, relative: str = "") -> list[Entry]:
        """The entries of folder ``relative`` (links are entries of kind "link")."""
        fd = self.open_fd(relative, os.O_RDONLY | os.O_DIRECTORY)
        try:
            return _entries(fd)
        finally:
            os.close(fd)

    def walk(self, relative: str = "", on_link: Callable[[str], None] | None = None,
             on_error: Callable[[OSError], None] | None = None) -> Iterator[tuple[str, list[Entry]]]:
        """Top-down ``(folder relative to the root, its entries)`` of every
        folder below ``relative``, itself first; a link inside is passed to
        ``on_link`` (its path relative to the root) and neither followed
        nor descended; a folder that cannot be read goes to ``on_error``
        (default: raise). The walk holds one descriptor per level."""
        top = self.open_fd(relative, os.O_RDONLY | os.O_DIRECTORY)
        yield from self._walk_fd(top, relative.strip("/"), on_link, on_error)

    def _walk_fd(self, fd: int, where: str, on_link, on_error) -> Iterator[tuple[str, list[Entry]]]:
        try:
            try:
                entries = _entries(fd)
            except OSError as exc:
                if on_error is None:
                    raise
                on_error(OSError(exc.errno, exc.strerror, self.full(where)))
                return
            yield where, entries
            for entry in entries:
                path = f"{where}/{entry.name}" if where else entry.name
                if entry.kind == "link" and on_link is not None:
                    on_link(path)
                if entry.kind != "folder":
                    continue
                try:
                    child = os.open(entry.name, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    continue  # gone meanwhile
                except OSError as exc:
                    if exc.errno in _LINKISH and _is_link(entry.name, fd, exc):
                        if on_link is not None:
                            on_link(path)  # swapped for a link since it was listed
                        continue
                    if on_error is None:
                        raise OSError(exc.errno, exc.strerror, self.full(path)) from None
                    on_error(OSError(exc.errno, exc.strerror, self.full(path)))
                    continue
                yield from self._walk_fd(child, path, on_link, on_error)
        finally:
            os.close(fd)

    def files(self, relative: str = "", on_link: Callable[[str], None] | None = None) -> list[str]:
        """Every regular file below folder ``relative``, as sorted paths relative to it."""
        base = relative.strip("/")
        found: list[str] = []
        for folder, entries in self.walk(base, on_link):
            inner = folder[len(base):].lstrip("/")
            found.extend(f"{inner}/{e.name}" if inner else e.name for e in entries if e.kind == "file")
        return sorted(found)

    def hash_file(self, relative: str, algorithm: str) -> tuple[int, str, int]:
        """``(size, hex digest, permission bits)`` of one regular file, read once."""
        from artifactfs.stores.manifest import hash_stream  # manifest imports base, which imports this module

        with self.open_read(relative) as f:
            size, digest = hash_stream(f, algorithm)
            return size, digest, stat.S_IMODE(os.fstat(f.fileno()).st_mode)

    def copy_out(self, relative: str, out: BinaryIO, chunk: int = 8 << 20) -> int:
        """Copy one regular file into the binary file object ``out``; returns its size."""
        with self.open_read(relative) as f:
            size = 0
            while data := f.read(chunk):
                out.write(data)
                size += len(data)
            return size

    # -- writing ---------------------------------------------------------------------------

    def makedirs(self, relative: str) -> None:
        """Make folder ``relative`` and any missing folder above it; a link
        (or a file) in the way raises."""
        parts = parts_of(relative)
        if parts:
            os.close(self._make_all(parts))

    def _make_all(self, parts: list[str]) -> int:
        def make() -> int:
            parent = self._parent_fd(parts, make_parents=True)
            try:
                try:
                    os.mkdir(parts[-1], 0o777, dir_fd=parent)
                except FileExistsError:
                    pass
                return self._open_last(parent, parts, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, 0)
            finally:
                if parent != self.fd():
                    os.close(parent)

        return self._retrying(make)

    def open_write_fd(self, relative: str, flags: int, file_mode: int | None = None) -> int:
        """A descriptor for writing ``relative`` with ``flags`` (as ``open()``
        computes them; ``O_CREAT | O_EXCL`` for a fresh file), its folders
        made as needed; a new file is created owner-only and then given
        exactly ``file_mode``'s permission bits before a byte is written.
        A link in the way (the file itself included) raises :class:`LinkFound`."""
        fd = self.open_fd(relative, flags, 0o600 if file_mode is not None else 0o666, make_parents=True)
        return given_mode(fd, file_mode)

    def create(self, relative: str, file_mode: int = 0o644) -> BinaryIO:
        """A fresh regular file (``O_CREAT | O_EXCL``: never an existing one, never through a link)."""
        fd = self.open_write_fd(relative, os.O_WRONLY | os.O_CREAT | os.O_EXCL, file_mode)
        return os.fdopen(fd, "wb")

    def rename(self, source: str, target: str, replace: bool = True) -> None:
        """Rename an entry (a link moves as itself; nothing is followed).
        ``replace=False``: FileExistsError when ``target`` exists, decided by
        the kernel in the rename itself (no check before it)."""
        src, dst = parts_of(source), parts_of(target)
        if not src or not dst:
            raise StoreError(f"refusing to rename the root {self.path}", "name a path inside it")
        src_parent = self._parent_fd(src)
        try:
            dst_parent = self._parent_fd(dst, make_parents=True)
            try:
                if replace:
                    os.rename(src[-1], dst[-1], src_dir_fd=src_parent, dst_dir_fd=dst_parent)
                else:
                    _rename_new(src_parent, src[-1], dst_parent, dst[-1], self.full(target))
            finally:
                if dst_parent != self.fd():
                    os.close(dst_parent)
        finally:
            if src_parent != self.fd():
                os.close(src_parent)

    # -- deleting --------------------------------------------------------------------------

    def _in_parent(self, relative: str, action: Callable[[str, int], object]):
        parts = parts_of(relative)
        if not parts:
            raise StoreError(f"refusing to delete the store root {self.path}", "name something inside it")

        def run():
            parent = self._parent_fd(parts)
            try:
                return action(parts[-1], parent)
            except OSError as exc:
                if isinstance(exc, LinkFound):
                    raise
                raise type(exc)(exc.errno, exc.strerror, self.full(relative)) from None
            finally:
                if parent != self.fd():
                    os.close(parent)

        return self._retrying(run)

    def unlink(self, relative: str) -> None:
        """Delete one regular file. A link there is reported
        (:class:`LinkFound`) and left: unlinking it would be harmless, but a
        payload file that became a link is worth a look, not a silent fix."""
        def remove(name: str, parent: int) -> None:
            info = os.stat(name, dir_fd=parent, follow_symlinks=False)
            if stat.S_ISLNK(info.st_mode):
                raise LinkFound(self.full(relative))
            if stat.S_ISDIR(info.st_mode):
                raise IsADirectoryError(errno.EISDIR, "Is a directory", self.full(relative))
            os.unlink(name, dir_fd=parent)  # never follows: at worst it removes what was swapped in here

        self._in_parent(relative, remove)

    def rmdir(self, relative: str) -> None:
        """Delete an empty folder (OSError when it is not empty)."""
        self._in_parent(relative, lambda name, parent: os.rmdir(name, dir_fd=parent))

    def rmtree(self, relative: str) -> None:
        """Delete a folder and everything below it with the standard
        library's descriptor-based walk, which never follows a link (links
        inside are removed as links). The folder itself being a link raises
        :class:`LinkFound` and nothing is deleted."""
        def remove(name: str, parent: int) -> None:
            info = os.stat(name, dir_fd=parent, follow_symlinks=False)
            if stat.S_ISLNK(info.st_mode):
                raise LinkFound(self.full(relative))
            if not stat.S_ISDIR(info.st_mode):
                raise NotADirectoryError(errno.ENOTDIR, "Not a directory", self.full(relative))
            errors: list[BaseException] = []

            def onerror(_func, path, exc_info) -> None:
                if not isinstance(exc_info[1], FileNotFoundError):  # gone meanwhile: fine
                    errors.append(exc_info[1])

            if sys.version_info >= (3, 11):
                shutil.rmtree(name, onerror=onerror, dir_fd=parent)
            else:  # the parent's descriptor as a path: rmtree's own lstat+fstat check guards ``name``
                shutil.rmtree(f"/proc/self/fd/{parent}/{name}", onerror=onerror)
            if errors:
                first = errors[0]
                if isinstance(first, OSError) and str(first) == "Cannot call rmtree on a symbolic link":
                    raise LinkFound(self.full(relative))  # swapped between our lstat and rmtree's
                raise first

        self._in_parent(relative, remove)


_RENAME_NOREPLACE = 1


def _rename_new(src_dir: int, src: str, dst_dir: int, dst: str, where: str) -> None:
    """Rename ``src`` to ``dst``, which must not exist: Linux's
    ``renameat2(RENAME_NOREPLACE)``; where the kernel or the file system lacks
    it, a hard link (which never replaces either) and an unlink."""
    call = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None) if sys.platform == "linux" else None
    if call is not None:  # glibc 2.28 and later
        if call(ctypes.c_int(src_dir), os.fsencode(src), ctypes.c_int(dst_dir), os.fsencode(dst),
                ctypes.c_uint(_RENAME_NOREPLACE)) == 0:
            return
        code = ctypes.get_errno()
        if code not in (errno.EINVAL, errno.ENOSYS):
            raise FileExistsError(code, os.strerror(code), where) if code == errno.EEXIST \
                else OSError(code, os.strerror(code), where)
    try:
        os.link(src, dst, src_dir_fd=src_dir, dst_dir_fd=dst_dir, follow_symlinks=False)
    except FileExistsError:
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), where) from None
    os.unlink(src, dir_fd=src_dir)


@dataclass(frozen=True)
class Entry:
    """One entry of a folder: its name, "file", "folder", "link" or "other",
    and its lstat."""

    name: str
    kind: str
    stat: os.stat_result


def _entries(fd: int) -> list[Entry]:
    entries = []
    with os.scandir(fd) as found:
        for item in found:
            try:
                info = item.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # removed since it was listed
            mode = info.st_mode
            kind = ("link" if stat.S_ISLNK(mode) else "file" if stat.S_ISREG(mode)
                    else "folder" if stat.S_ISDIR(mode) else "other")
            entries.append(Entry(item.name, kind, info))
    entries.sort(key=lambda e: e.name)
    return entries


def _is_link(name: str, dir_fd: int, error: OSError | None = None) -> bool:
    """Whether ``name`` is (or, given the ``O_NOFOLLOW`` open's ``error``,
    was) a link: ELOOP says so; ENOTDIR on a folder open says so when a
    folder or a link lies there now (swapped back meanwhile)."""
    if error is not None and error.errno == errno.ELOOP:
        return True
    try:
        mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
    except OSError:
        return False
    return stat.S_ISLNK(mode) or (error is not None and error.errno == errno.ENOTDIR and stat.S_ISDIR(mode))




# -- below a folder descriptor a save holds ---------------------------------------------------
#
# The write path (``api.writing``, ``stores.manifest``, ``stores.durable``)
# makes a payload's folders from the root's descriptor (:meth:`Root.held_fd`)
# and keeps them open until the commit: what it creates, lists, fsyncs and
# checks there is reached from those descriptors, never by a path looked up
# again, and never through a link.

# By the root's path, as Root normalises it; weakly: a root no store uses any
# more is closed (a process that opens many stores keeps no descriptor of them).
_held_roots: weakref.WeakValueDictionary[str, Root] = weakref.WeakValueDictionary()
_held_lock = threading.Lock()


def held_root(path: str) -> Root:
    """The one :class:`Root` of the local store root ``path`` for this
    process: every local store's filesystem (:class:`BeneathFileSystem`)
    opened at that path shares it, and the write path holds it
    (:meth:`Root.held_fd`) through a store's ``beneath``."""
    path = path.rstrip("/") or "/"
    root = _held_roots.get(path)
    if root is None:
        with _held_lock:
            root = _held_roots.setdefault(path, Root(path))
    return root


def open_folder(dir_fd: int, name: str, create: bool = False) -> int:
    """A descriptor of the folder ``name`` (one component) of ``dir_fd``,
    made first when ``create``, opened without following a link (a link or
    a file there raises :class:`PathEscapeError`)."""
    if create:
        try:
            os.mkdir(name, 0o777, dir_fd=dir_fd)
        except FileExistsError:
            pass
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise PathEscapeError(f"{name!r} is a link or a file where a folder belongs; it is not followed",
                                  "remove it (a payload folder is made by artifactfs alone)") from None
        raise


def open_below(dir_fd: int, relative: str, flags: int = os.O_RDONLY, create: bool = False,
               file_mode: int | None = None, mode: int = 0o666) -> int:
    """A descriptor of ``relative`` below ``dir_fd`` opened with ``flags``
    (``O_NOFOLLOW`` and ``O_CLOEXEC`` added), no component a link; with
    ``create``, missing folders are made. A file ``flags`` create gets
    ``file_mode``'s bits exactly (``fchmod`` before a byte is written), else
    ``mode`` narrowed by the umask."""
    parts = parts_of(relative)
    if not parts:
        raise PathEscapeError(f"{relative!r} is not a path inside the folder", "name a file below it, without '..'")
    parent = _parent_below(dir_fd, parts, create)
    try:
        fd = os.open(parts[-1], flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600 if file_mode is not None else mode,
                     dir_fd=parent)
        return given_mode(fd, file_mode)
    finally:
        if parent != dir_fd:
            os.close(parent)


def _parent_below(dir_fd: int, parts: list[str], create: bool = False) -> int:
    """The folder holding ``parts[-1]`` below ``dir_fd`` (``dir_fd`` itself
    for one component: do not close that one)."""
    current = dir_fd
    try:
        for name in parts[:-1]:
            child = open_folder(current, name, create)
            if current != dir_fd:
                os.close(current)
            current = child
        return current
    except BaseException:
        if current != dir_fd:
            os.close(current)
        raise


def given_mode(fd: int, file_mode: int | None) -> int:
    """``fd`` given exactly ``file_mode``'s permission bits, never setuid or
    setgid (None: left as created); closed when that fails. A file is created
    owner-only first, so no other user reads it before its bits are set."""
    if file_mode is not None:
        try:
            os.fchmod(fd, file_mode & 0o777)  # never setuid/setgid
        except BaseException:
            os.close(fd)
            raise
    return fd


def lstat_below(dir_fd: int, relative: str) -> os.stat_result:
    """The ``lstat`` of ``relative`` below ``dir_fd``; a link on the way is
    not followed (:class:`PathEscapeError`), one at the end is stat'ed."""
    parts = parts_of(relative)
    if not parts:
        return os.fstat(dir_fd)
    parent = _parent_below(dir_fd, parts)
    try:
        return os.stat(parts[-1], dir_fd=parent, follow_symlinks=False)
    finally:
        if parent != dir_fd:
            os.close(parent)


def files_below(dir_fd: int) -> list[str]:
    """Every entry below the folder ``dir_fd`` that is not a folder
    (relative paths, sorted); links are listed, never followed."""
    found: list[str] = []
    pending = [("", dir_fd)]
    while pending:
        base, fd = pending.pop()
        try:
            with os.scandir(fd) as entries:
                for entry in entries:
                    relative = f"{base}{entry.name}"
                    if entry.is_dir(follow_symlinks=False):
                        pending.append((relative + "/", open_folder(fd, entry.name)))
                    else:
                        found.append(relative)
        finally:
            if fd != dir_fd:
                os.close(fd)
    return sorted(found)


def still_there(dir_fd: int, name: str, held: int) -> bool:
    """Whether ``name`` in ``dir_fd`` is still the file or folder ``held``
    (same device and inode; no link followed)."""
    try:
        found = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    mine = os.fstat(held)
    return (found.st_dev, found.st_ino) == (mine.st_dev, mine.st_ino)


# -- the local flavor's filesystem -----------------------------------------------------------


class BeneathFileSystem(AbstractFileSystem):
    """The fsspec filesystem of a local store: fsspec's primitives (``ls``,
    ``info``, ``open``, ``cat_file``, ``rm_file``, ``rm``, ``cp_file``,
    ``mv``, ``makedirs``, ``put_file``, ``get_file``) done by :class:`Root`,
    so everything fsspec derives from them (``isfile``, ``exists``, ``du``,
    ``glob``, ...) is descriptor-based too. Paths are absolute paths inside
    the root. A link is an entry of type ``"link"``: never a file or a
    folder, never listed by ``walk``/``find``, and opening, deleting or
    walking through one raises :class:`LinkFound`."""

    protocol = ("file", "local")
    root_marker = "/"
    cachable = False  # one per store object: it holds the root's descriptor

    def __init__(self, root: str, **_options) -> None:
        super().__init__()
        self.root = held_root(root)  # the process's one descriptor of this root (the write path's too)

    @classmethod
    def _strip_protocol(cls, path):
        path = str(path)
        if path.startswith("file://"):
            path = path[len("file://"):]
        return path.rstrip("/") or "/"

    def relative(self, path: str) -> str:
        """``path`` relative to the root; PathEscapeError outside it (component-wise)."""
        native = self._strip_protocol(path)
        if not native.startswith("/"):
            return native  # already relative
        if not within(native, self.root.path):
            raise PathEscapeError(f"{native} is not inside the store root {self.root.path}",
                                  "use a path relative to the store root")
        return native[len(self.root.path):].strip("/")

    def _info(self, relative: str, st: os.stat_result) -> dict:
        mode = st.st_mode
        kind = ("link" if stat.S_ISLNK(mode) else "file" if stat.S_ISREG(mode)
                else "directory" if stat.S_ISDIR(mode) else "other")
        return {"name": self.root.full(relative), "size": st.st_size if kind == "file" else 0, "type": kind,
                "islink": kind == "link", "mode": mode, "uid": st.st_uid, "gid": st.st_gid, "ino": st.st_ino,
                "nlink": st.st_nlink, "mtime": st.st_mtime, "created": st.st_ctime}

    def info(self, path, **kwargs):
        relative = self.relative(path)
        st = self.root.lstat(relative)
        if stat.S_ISLNK(st.st_mode):
            raise LinkFound(self.root.full(relative))
        return self._info(relative, st)

    def _kind(self, path) -> str | None:
        """What lies at ``path`` ("file", "folder", "other" or None); a link
        there or on the way raises :class:`LinkFound` (never "not there":
        a payload that became a link is reported, not silently skipped)."""
        relative = self.relative(path)
        kind = self.root.kind(relative)
        if kind == "link":
            raise LinkFound(self.root.full(relative))
        return kind

    def exists(self, path, **kwargs):
        return self._kind(path) is not None

    def isfile(self, path):
        return self._kind(path) == "file"

    def isdir(self, path):
        return self._kind(path) == "folder"

    def ls(self, path, detail=False, **kwargs):
        relative = self.relative(path)
        st = self.root.lstat(relative)
        if stat.S_ISLNK(st.st_mode):
            raise LinkFound(self.root.full(relative))
        if not stat.S_ISDIR(st.st_mode):
            found = [self._info(relative, st)]
        else:
            found = [self._info(f"{relative}/{e.name}" if relative else e.name, e.stat)
                     for e in self.root.scandir(relative)]
        return found if detail else [f["name"] for f in found]

    def walk(self, path, maxdepth=None, topdown=True, on_error="omit", **kwargs):
        detail = kwargs.pop("detail", False)
        relative = self.relative(path)
        handler = on_error if callable(on_error) else None if on_error == "raise" else (lambda exc: None)
        try:
            mode = self.root.lstat(relative).st_mode
        except LinkFound:
            raise  # a refusal, not a listing error
        except OSError:
            if on_error == "raise":
                raise
            return
        if stat.S_ISLNK(mode):
            raise LinkFound(self.root.full(relative))
        if not stat.S_ISDIR(mode):
            return
        try:
            walked = list(self.root.walk(relative, on_error=handler))
        except OSError:
            if on_error == "raise":
                raise
            return
        base_depth = relative.count("/") + 1 if relative else 0
        for folder, entries in (walked if topdown else reversed(walked)):
            depth = (folder.count("/") + 1 if folder else 0) - base_depth
            if maxdepth is not None and depth >= maxdepth:
                continue
            dirs = {e.name: self._info(f"{folder}/{e.name}" if folder else e.name, e.stat)
                    for e in entries if e.kind == "folder"}
            files = {e.name: self._info(f"{folder}/{e.name}" if folder else e.name, e.stat)
                     for e in entries if e.kind == "file"}
            yield self.root.full(folder), (dirs if detail else list(dirs)), (files if detail else list(files))

    def find(self, path, maxdepth=None, withdirs=False, detail=False, **kwargs):
        found = {}
        for folder, dirs, files in self.walk(path, maxdepth, detail=True):
            for name, info in {**(dirs if withdirs else {}), **files}.items():
                found[f"{folder.rstrip('/')}/{name}"] = info
        if not found:
            try:
                info = self.info(path)
                if info["type"] == "file":
                    found[info["name"]] = info
            except (FileNotFoundError, NotADirectoryError):
                pass
        names = sorted(found)
        return {n: found[n] for n in names} if detail else names

    def modified(self, path):
        return _dt.datetime.fromtimestamp(self.info(path)["mtime"], _dt.timezone.utc)

    def created(self, path):
        return _dt.datetime.fromtimestamp(self.info(path)["created"], _dt.timezone.utc)

    def opener(self, path, mode: str = "rb", file_mode: int | None = None) -> Callable[[str, int], int]:
        """An ``opener`` for ``builtins.open`` that opens ``path`` beneath the
        root: a regular file for reading, or for writing with its folders
        made and (``file_mode``) exact permission bits."""
        relative = self.relative(path)
        if "r" in mode and "+" not in mode:
            return lambda _name, _flags: self.root.open_read_fd(relative)
        return lambda _name, flags: self.root.open_write_fd(relative, flags, file_mode)

    def open(self, path, mode="rb", block_size=None, cache_options=None, compression=None, file_mode=None,
             **kwargs):
        """A plain file object (numpy and pyarrow read it at native speed)."""
        plain = {k: v for k, v in kwargs.items() if k in ("encoding", "errors", "newline", "buffering")}
        if compression:
            raise ValueError("a local store opens files without compression")
        return open(self.root.full(self.relative(path)), mode, opener=self.opener(path, mode, file_mode), **plain)

    def cat_file(self, path, start=None, end=None, **kwargs):
        with self.root.open_read(self.relative(path)) as f:
            size = os.fstat(f.fileno()).st_size
            start = 0 if start is None else (max(size + start, 0) if start < 0 else start)
            end = size if end is None else (max(size + end, 0) if end < 0 else min(end, size))
            f.seek(start)
            return f.read(max(end - start, 0))

    def rm_file(self, path):
        self.root.unlink(self.relative(path))

    def _rm(self, path):
        self.rm_file(path)

    def rm(self, path, recursive=False, maxdepth=None):
        for one in [path] if isinstance(path, str) else path:
            relative = self.relative(one)
            if self.root.kind(relative) == "folder":
                if not recursive:
                    self.root.rmdir(relative)
                else:
                    self.root.rmtree(relative)
            else:
                self.root.unlink(relative)

    def rmdir(self, path):
        self.root.rmdir(self.relative(path))

    def makedirs(self, path, exist_ok=False):
        relative = self.relative(path)
        if not exist_ok and self.root.kind(relative) is not None:
            raise FileExistsError(errno.EEXIST, "File exists", self.root.full(relative))
        self.root.makedirs(relative)

    def mkdir(self, path, create_parents=True, **kwargs):
        self.makedirs(path, exist_ok=True)

    def cp_file(self, path1, path2, **kwargs):
        source = self.root.open_read(self.relative(path1))
        with source, os.fdopen(self.root.open_write_fd(self.relative(path2), os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                                                       stat.S_IMODE(os.fstat(source.fileno()).st_mode)), "wb") as out:
            shutil.copyfileobj(source, out, 8 << 20)

    def mv(self, path1, path2, recursive=False, maxdepth=None, **kwargs):
        self.root.rename(self.relative(path1), self.relative(path2))

    def put_file(self, lpath, rpath, **kwargs):
        """Copy a local file a user named (outside the store) into it."""
        with open(lpath, "rb") as source, \
                os.fdopen(self.root.open_write_fd(self.relative(rpath), os.O_WRONLY | os.O_CREAT | os.O_TRUNC), "wb") as out:
            shutil.copyfileobj(source, out, 8 << 20)

    def get_file(self, rpath, lpath, **kwargs):
        with open(lpath, "wb") as out:
            self.root.copy_out(self.relative(rpath), out)

    def invalidate_cache(self, path=None):
        pass  # nothing is cached: every call reads the disk


__all__ = [
    "USE_OPENAT2",
    "BeneathFileSystem",
    "Entry",
    "LinkFound",
    "Root",
    "files_below",
    "given_mode",
    "held_root",
    "lstat_below",
    "open_below",
    "open_folder",
    "parts_of",
    "still_there",
    "within",
]
