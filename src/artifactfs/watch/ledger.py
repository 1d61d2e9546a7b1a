"""What the index already holds of a watched folder, so that a restarted
watcher registers nothing twice, and registers again what changed.

A path has been registered when a version of the watched artifact owns it
in place (its URI is the path), was copied from it (metadata ``copied_from``,
written by ``register_artifact(copy=True)``), or was migrated away from it
(metadata ``migrated_from``, written by ``artifactfs migrate``). Which
content of the path each version holds is its ``source_stamp`` (metadata
the watcher writes, :func:`stamp`): a path whose stamp now is none of those
recorded was rewritten (``last.ckpt``) or its name reused (``best.ckpt``),
and is new content. A path another artifact owns in place counts as
registered. It reads the index only; it never registers.
"""

from __future__ import annotations

import enum
import hashlib
import os
import stat
import threading

from sqlalchemy import select

from artifactfs.index import get_index
from artifactfs.index.artifacts import uri_owner
from artifactfs.index.models import Artifact, VersionRow, Metadata

#: Metadata keys naming the local path a version's payload came from.
SOURCE_KEYS = ("copied_from", "migrated_from")
#: Metadata key holding :func:`stamp` of the content a version was registered from.
STAMP_KEY = "source_stamp"


class Seen(enum.Enum):
    """What the index holds of a path's current content."""

    NEW = "new"  # never registered from this path
    KNOWN = "known"  # this content is registered (or the path is another artifact's)
    CHANGED = "changed"  # registered from this path before, with other content


def normalize(path: str | os.PathLike) -> str:
    """The form ``register_artifact`` records a local path in: absolute, not
    resolved through symlinks."""
    return os.path.abspath(os.path.expanduser(os.fspath(path)))


def stamp(path: str | os.PathLike) -> str | None:
    """Which content a file or folder holds now, without reading it: a digest
    of each file's inode, size and modification time (a rewrite changes the
    time, a rename over the name changes the inode). ``None`` when it is gone."""
    path = normalize(path)
    parts = []
    try:
        top = os.lstat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISDIR(top.st_mode):
        for current, dirs, files in os.walk(path):  # never follows links into folders
            dirs.sort()
            for name in sorted(files):
                full = os.path.join(current, name)
                try:
                    info = os.lstat(full)
                except FileNotFoundError:
                    continue
                parts.append(f"{os.path.relpath(full, path)}\0{info.st_ino}\0{info.st_size}\0{info.st_mtime_ns}")
    else:
        parts.append(f"\0{top.st_ino}\0{top.st_size}\0{top.st_mtime_ns}")
    return hashlib.blake2b("\n".join(parts).encode(), digest_size=12).hexdigest()


class Ledger:
    """Answers "is this content of this path already registered?" for one
    artifact name.

    What the artifact's versions were registered from is read once, and again
    whenever a path is not found in it (so versions registered by others are
    seen); :meth:`add` records what this process registers.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._stamps = self._load()

    def _load(self) -> dict[str, set[str | None]]:
        """path -> stamps of the versions registered from it (``None``: a
        version from before stamps were recorded)."""
        query = (
            select(VersionRow.id, VersionRow.uri, Metadata.key, Metadata.value)
            .join(Artifact, Artifact.id == VersionRow.artifact_id)
            .outerjoin(Metadata, (Metadata.version_id == VersionRow.id)
                       & Metadata.key.in_((*SOURCE_KEYS, STAMP_KEY)))
            .where(Artifact.name == self.name)
        )
        versions: dict[int, tuple[str, list[str], str | None]] = {}
        with get_index().read() as session:
            for version_id, uri, key, value in session.execute(query):
                uri_, sources, found = versions.setdefault(version_id, (uri, [], None))
                recorded = (value or {}).get("v") if key else None
                if key == STAMP_KEY and isinstance(recorded, str):
                    versions[version_id] = (uri_, sources, recorded)
                elif key in SOURCE_KEYS:
                    sources.extend(item for item in (recorded if isinstance(recorded, list) else [recorded])
                                   if isinstance(item, str))
        found_paths: dict[str, set[str | None]] = {}
        for uri, sources, recorded in versions.values():
            for source in sources or [uri]:  # no source recorded: registered in place
                found_paths.setdefault(source, set()).add(recorded)
        return found_paths

    def seen(self, path: str | os.PathLike, current: str | None) -> Seen:
        """Whether the content of ``path`` whose :func:`stamp` is ``current`` is registered."""
        path = normalize(path)
        with self._lock:
            stamps = self._stamps.get(path)
        if stamps is None:
            fresh = self._load()
            with self._lock:
                self._stamps = fresh
                stamps = fresh.get(path)
        if stamps is not None:
            return Seen.KNOWN if current in stamps or None in stamps else Seen.CHANGED
        with get_index().read() as session:
            return Seen.KNOWN if uri_owner(session, path) is not None else Seen.NEW

    def known(self, path: str | os.PathLike) -> bool:
        """Whether the current content of ``path`` is registered."""
        return self.seen(path, stamp(path)) is Seen.KNOWN

    def add(self, path: str | os.PathLike, registered: str | None) -> None:
        """Record that the content of ``path`` stamped ``registered`` is registered now."""
        with self._lock:
            self._stamps.setdefault(normalize(path), set()).add(registered)
