"""The store marker: one small object at a store's root naming the index
that owns the store (``<root>/.artifactfs-store.json``).

An index sweeps orphan payloads only in stores whose marker names it, so a
new or lost index can never take a store's payloads for orphans. This module
only reads and writes the object; what an index may do with a store is
decided by the pruner (``gc.ownership``).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from artifactfs.errors import StoreError
from artifactfs.stores.base import ArtifactStore

MARKER_NAME = ".artifactfs-store.json"
MARKER_FORMAT = 1


class MarkerError(StoreError):
    """The marker exists but cannot be read as one."""


@dataclass(frozen=True)
class StoreMarker:
    index_uuid: str
    store: str  # the store's name in the owning index
    created_at: str  # ISO 8601, UTC

    def to_json(self) -> str:
        return json.dumps({"format": MARKER_FORMAT, "index_uuid": self.index_uuid, "store": self.store,
                           "created_at": self.created_at}, indent=2) + "\n"


def read_marker(store: ArtifactStore) -> StoreMarker | None:
    """The store's marker; None when it has none. :class:`MarkerError` when
    something is there that is not a marker (then nobody owns the store)."""
    try:
        raw = store.read_bytes(MARKER_NAME)
    except FileNotFoundError:
        return None
    try:
        data = json.loads(raw)
        return StoreMarker(str(data["index_uuid"]), str(data.get("store", "")), str(data.get("created_at", "")))
    except (ValueError, KeyError, TypeError) as exc:
        raise MarkerError(
            f"store {store.name!r}: {store.uri(MARKER_NAME)} is not a readable store marker ({type(exc).__name__})",
            "move it aside, then run `artifactfs store claim` with the index that owns the store",
        ) from exc


def write_marker(store: ArtifactStore, index_uuid: str, exclusive: bool = True) -> StoreMarker:
    """Write a marker naming ``index_uuid``. With ``exclusive`` a marker that
    appeared meanwhile is kept (local stores: atomically, by O_EXCL); the
    marker in place afterwards is returned, so the caller can see who won."""
    marker = StoreMarker(index_uuid, store.name, dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
    mode = "x" if exclusive and store.is_local else "w"
    if exclusive and not store.is_local and store.exists(MARKER_NAME):
        return read_marker(store) or marker
    try:
        with store.open(MARKER_NAME, mode) as f:
            f.write(marker.to_json())
    except FileExistsError:
        pass
    return read_marker(store) or marker


__all__ = ["MARKER_NAME", "MarkerError", "StoreMarker", "read_marker", "write_marker"]
