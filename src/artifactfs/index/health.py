"""What a failure to open or use the index means, in words, with the way out:
the device holding it is full, the file is not a database or is damaged, or
its schema was written by a newer artifactfs.

It owns the classification and the wording only; ``index.db`` (connections,
the read-only fallback of a full device) and ``index.migrate`` (opening)
raise what it returns. The driver's and Alembic's own text never reaches a
user for these cases.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path

from sqlalchemy.engine import make_url

from artifactfs.errors import ArtifactfsError

# SQLite primary result codes (https://sqlite.org/rescode.html); extended codes keep them in the low byte.
SQLITE_IOERR, SQLITE_CORRUPT, SQLITE_FULL, SQLITE_CANTOPEN, SQLITE_NOTADB, SQLITE_READONLY = 10, 11, 13, 14, 26, 8
#: PostgreSQL's SQLSTATE for "disk full".
PG_DISK_FULL = "53100"
#: Below this many free bytes the device counts as full (SQLite grows its files in pages and WAL frames).
FULL_BELOW = 1 << 20

_REBUILD = ("run `artifactfs init` to make a new index, then `artifactfs fsck --adopt` to rebuild its versions "
            "from the stores (register any other stores again first: `artifactfs store register`)")


class IndexUnusableError(ArtifactfsError):
    """The index cannot be used as it is; the message says why, the hint the way out."""


class IndexFullError(IndexUnusableError):
    """The device holding the index (or the database server's disk) is full."""


class IndexDamagedError(IndexUnusableError):
    """The index file is not a SQLite database, or a damaged one."""


class IndexTooNewError(IndexUnusableError):
    """The index's schema was written by a newer artifactfs."""


def sqlite_path(url: str) -> Path | None:
    """The file a SQLite index URL names, or None (PostgreSQL, in memory)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    database = parsed.database
    if database.startswith("file:"):  # a URI filename (uri=true)
        database = database[5:].partition("?")[0]
    return Path(database).absolute()


def device_full(path: Path) -> tuple[str, int] | None:
    """``(mount point, free bytes)`` of the device holding ``path`` when it is
    full (less than :data:`FULL_BELOW` free for this user), else None."""
    folder = path.parent
    try:
        info = os.statvfs(folder)
    except OSError:
        return None
    free = info.f_bavail * info.f_frsize
    if free >= FULL_BELOW and info.f_favail != 0:
        return None
    return _mount_point(folder), free


def _mount_point(folder: Path) -> str:
    folder = folder.resolve()
    device = folder.stat().st_dev
    while folder.parent != folder and folder.parent.stat().st_dev == device:
        folder = folder.parent
    return str(folder)


def explain(exc: BaseException, url: str) -> IndexUnusableError | None:
    """The error to show for ``exc`` (a driver error, wrapped by SQLAlchemy or
    not) raised by the index at ``url``, or None when it is none of these cases."""
    orig = getattr(exc, "orig", None) or exc
    path = sqlite_path(url)
    if isinstance(orig, sqlite3.Error) and path is not None:
        code = (getattr(orig, "sqlite_errorcode", None) or 0) & 0xFF
        if code in (SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN, SQLITE_READONLY) or _is_enospc(orig):
            full = device_full(path)
            if full is not None:
                return full_error(path, *full)
            if code == SQLITE_FULL:
                return full_error(path, None, None)
        if code == SQLITE_NOTADB:
            return damaged_error(path, "is not a SQLite database (it was overwritten, or is another kind of file)")
        if code == SQLITE_CORRUPT:
            return damaged_error(path, "is damaged: SQLite reports a malformed database (truncated, or partly "
                                       "overwritten)")
        return None
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    # A new connection to a database whose disk is full can fail before any
    # SQLSTATE exists: the server's FATAL "could not write init file".
    if state == PG_DISK_FULL or (path is None and any(text in str(orig) for text in _PG_FULL_TEXTS)):
        return IndexFullError(
            f"the index database {_safe(url)} cannot be written: its server has no space left on the device "
            "holding its data",
            "free space on the database server (its data folder or the database's tablespace); until then "
            "commands that only read still work while the server can open connections to it",
        )
    return None


#: What PostgreSQL says, without a SQLSTATE, when a connection fails for a full disk.
_PG_FULL_TEXTS = ("could not write init file", "No space left on device")


def _is_enospc(orig: BaseException) -> bool:
    return "database or disk is full" in str(orig) or getattr(orig, "errno", None) == errno.ENOSPC


def full_error(path: Path, mount: str | None, free: int | None, reads_work: bool = True) -> IndexFullError:
    """The device holding the SQLite index at ``path`` is full."""
    where = f" (the filesystem mounted at {mount}, {free} bytes free)" if mount is not None else ""
    if reads_work:
        still = ("until then the index is read only: commands that only read (artifact list/show/versions, load, "
                 "lineage, the mount) still work")
    else:
        still = (f"its write-ahead log {path}-wal holds commits not yet in the file, so it cannot be read either "
                 "until there is space")
    return IndexFullError(
        f"the index {path} cannot be written: no space left on the device holding it{where}",
        f"free space there, or move the index elsewhere (ARTIFACTFS_INDEX_URL); {still}",
    )


def damaged_error(path: Path, what: str) -> IndexDamagedError:
    """The SQLite index file at ``path`` cannot be read as an index."""
    return IndexDamagedError(
        f"the index file {path} {what}",
        f"move it aside (mv {path} {path}.damaged, with its -wal and -shm files), {_REBUILD}",
    )


def too_new_error(url: str, revision: str) -> IndexTooNewError:
    """The index at ``url`` is stamped with a schema ``revision`` this artifactfs does not have."""
    from artifactfs import __version__

    path = sqlite_path(url)
    if path is not None:
        aside = f"or, to go on with this version, move it aside (mv {path} {path}.newer) and {_REBUILD}"
        what = f"the index file {path}"
    else:
        aside = f"or point ARTIFACTFS_INDEX_URL at a new, empty database and {_REBUILD}"
        what = f"the index database {_safe(url)}"
    return IndexTooNewError(
        f"{what} has schema revision {revision!r}, which artifactfs {__version__} does not know: "
        "a newer artifactfs wrote it",
        f"upgrade artifactfs (pip install -U artifactfs) to use it, {aside}",
    )


def _safe(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


__all__ = [
    "IndexDamagedError", "IndexFullError", "IndexTooNewError", "IndexUnusableError", "damaged_error", "device_full",
    "explain", "full_error", "sqlite_path", "too_new_error",
]
