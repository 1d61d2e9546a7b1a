"""What the index already holds of a watched folder, so that a restarted
watcher registers nothing twice.

A path counts as registered when a version owns it in place (its URI is the
path, lies inside it or contains it), when a version of the watched artifact
was copied from it (metadata ``copied_from``, written by
``register_artifact(copy=True)``), or when a version of the watched artifact
was migrated away from it (metadata ``migrated_from``, written by
``artifactfs migrate``). It reads the index only; it never registers.
"""

from __future__ import annotations

import os
import threading

from sqlalchemy import select

from artifactfs.index import get_index
from artifactfs.index.artifacts import uri_owner
from artifactfs.index.models import Artifact, VersionRow, Metadata

#: Metadata keys naming the local path a version's payload came from.
SOURCE_KEYS = ("copied_from", "migrated_from")


def normalize(path: str | os.PathLike) -> str:
    """The form ``register_artifact`` records a local path in: absolute, not
    resolved through symlinks."""
    return os.path.abspath(os.path.expanduser(os.fspath(path)))


class Ledger:
    """Answers "is this path already registered?" for one artifact name.

    Source paths recorded in metadata are read once and then kept up to date
    by :meth:`add`; ownership in place is asked of the index for each path
    (one indexed query), so versions registered by others are seen too.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._sources = self._load_sources()

    def _load_sources(self) -> set[str]:
        query = (
            select(Metadata.value)
            .join(VersionRow, VersionRow.id == Metadata.version_id)
            .join(Artifact, Artifact.id == VersionRow.artifact_id)
            .where(Artifact.name == self.name, Metadata.key.in_(SOURCE_KEYS))
        )
        found: set[str] = set()
        with get_index().read() as session:
            for value in session.scalars(query):
                recorded = (value or {}).get("v")
                for item in recorded if isinstance(recorded, list) else [recorded]:
                    if isinstance(item, str):
                        found.add(item)
        return found

    def known(self, path: str | os.PathLike) -> bool:
        path = normalize(path)
        with self._lock:
            if path in self._sources:
                return True
        with get_index().read() as session:
            return uri_owner(session, path) is not None

    def add(self, path: str | os.PathLike) -> None:
        with self._lock:
            self._sources.add(normalize(path))
