"""Opening a local file that lies in a tree a user named as a source (a
watched checkpoint folder, a folder registered with ``copy=True``) without
ever following a symlink out of that tree. Paths beneath a store root are
``beneath``'s: there no link is followed at all.

Another user can plant ``ln -s /etc/shadow shared/epoch=1.ckpt``, or swap a
checked file for such a link between the check and the copy. So nothing is
checked first and opened later: every component is opened with
``O_NOFOLLOW`` relative to its parent's descriptor, and a link is followed
only after its target is shown to stay inside the tree (then the walk starts
again from the tree's own descriptor). Linux's ``openat2(RESOLVE_BENEATH)``
does this in the kernel; Python has no binding for it. What is opened must
be a regular file (``fstat`` on the descriptor, never a second lookup by
name); FIFOs are opened non-blocking so that one planted there cannot hang
the reader.

It also creates local files with exact permission bits
(:func:`opener_with_mode`), so that a copy is never readable by more users
than its source.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat
from collections.abc import Callable
from typing import BinaryIO

from artifactfs.errors import PathEscapeError, StoreError
from artifactfs.stores.beneath import given_mode
from artifactfs.stores.beneath import within as _within

#: Links followed while opening one file, as the kernel's own limit.
MAX_LINKS = 40


class _Link(Exception):
    def __init__(self, depth: int, target: str) -> None:
        super().__init__(target)
        self.depth, self.target = depth, target


def open_beneath(tree: str, relative: str) -> BinaryIO:
    """The regular file ``tree/relative`` opened for reading, reached
    without leaving ``tree`` (symlinks inside it are followed)."""
    fd = _open_fd(tree, relative)
    return os.fdopen(fd, "rb")


def resolve_named(path: str) -> str:
    """The real path of a file or folder a user named. When the name itself
    is a symlink, its own folder is the tree it may not leave
    (``latest.ckpt -> epoch=3.ckpt`` is fine, ``-> /etc/shadow`` is not)."""
    path = os.path.abspath(path)
    real = os.path.realpath(path)
    if os.path.islink(path):
        parent = os.path.realpath(os.path.dirname(path))
        if not _within(real, parent):
            raise PathEscapeError(
                f"{path} is a symlink to {real}, which leads outside {os.path.dirname(path)}; it is not followed",
                f"name the target itself ({real}) if that is what you mean",
            )
    return real


def _open_fd(tree: str, relative: str) -> int:
    tree = os.path.abspath(tree)
    real_tree = os.path.realpath(tree)
    roots = {tree, real_tree}
    parts = _parts(relative)
    # O_NOFOLLOW: the tree's own last component may not have been swapped for a link since realpath().
    root_fd = os.open(real_tree, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        for _ in range(MAX_LINKS + 1):
            try:
                return _walk(root_fd, parts, tree, relative)
            except _Link as link:
                parts = _retarget(parts, link, roots, tree, relative)
        raise StoreError(f"{os.path.join(tree, relative)}: too many levels of symbolic links", "remove the link loop")
    finally:
        os.close(root_fd)


def _parts(relative: str) -> list[str]:
    parts = [p for p in relative.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise PathEscapeError(f"{relative!r} is not a path inside the folder", "name a file below it, without '..'")
    return parts


def _walk(root_fd: int, parts: list[str], tree: str, relative: str) -> int:
    """Open ``parts`` one by one from ``root_fd``; raise ``_Link`` at the first symlink."""
    current = root_fd
    try:
        for depth, name in enumerate(parts):
            last = depth == len(parts) - 1
            flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | (os.O_NONBLOCK if last else os.O_DIRECTORY)
            try:
                fd = os.open(name, flags, dir_fd=current)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
                    try:
                        target = os.readlink(name, dir_fd=current)
                    except OSError:
                        raise exc from None  # not a link: a file where a folder should be
                    raise _Link(depth, target) from None
                raise OSError(exc.errno, exc.strerror, os.path.join(tree, *parts[: depth + 1])) from None
            if current != root_fd:
                os.close(current)
            current = fd
        info = os.fstat(current)
        if not stat.S_ISREG(info.st_mode):
            raise StoreError(
                f"{os.path.join(tree, relative)} is not a regular file (a folder, FIFO, socket or device)",
                "store regular files only; remove it from the folder",
            )
        os.set_blocking(current, True)
        fd, current = current, root_fd  # handed to the caller
        return fd
    finally:
        if current != root_fd:
            os.close(current)


def _retarget(parts: list[str], link: _Link, roots: set[str], tree: str, relative: str) -> list[str]:
    """The parts of the link's target, relative to the tree, followed by what
    came after the link; refused when the target lies outside the tree."""
    base = parts[: link.depth]  # real folders, opened without following anything
    if os.path.isabs(link.target):
        target = posixpath.normpath(link.target)
        inside = [posixpath.relpath(target, root) for root in roots if _within(target, root)]
        resolved = inside[0] if inside else None
    else:
        resolved = posixpath.normpath(posixpath.join(*base, link.target)) if base else posixpath.normpath(link.target)
        if resolved == ".." or resolved.startswith("../"):
            resolved = None
    if resolved is None:
        where = os.path.join(tree, *parts[: link.depth + 1])
        raise PathEscapeError(
            f"{where} is a symlink to {link.target}, which leads outside {tree}; it is not followed",
            "copy the file itself into the folder, or remove the link",
        )
    return _parts(posixpath.join(resolved, *parts[link.depth + 1:]))


def opener_with_mode(file_mode: int) -> Callable[[str, int], int]:
    """An ``opener`` for ``open()`` that creates the file owner-only, then
    sets exactly ``file_mode``'s rwx bits (umask may only narrow, never restore, bits
    such as the executable one) before a byte is written."""

    def opener(path: str, flags: int) -> int:
        # never setuid/setgid: a copy made by root must not become one
        return given_mode(os.open(path, flags, 0o600), file_mode)

    return opener


__all__ = ["MAX_LINKS", "open_beneath", "opener_with_mode", "resolve_named"]
