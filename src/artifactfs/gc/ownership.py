"""Which stores this index may sweep orphans in: a store's marker
(``stores.marker``) against this index's identity.

- owned: the marker names this index; orphans are swept.
- claimable: no marker, and every payload in the store is this index's (or
  there is none): the pass writes the marker, then the store is owned.
- foreign: the marker names another index, or cannot be read: never swept.
- unmarked: no marker and payloads this index does not know: never swept
  until ``artifactfs fsck --adopt`` re-indexes them or ``artifactfs store
  claim`` says this index owns them.
- behind: owned, but the store holds a payload folder with a manifest file
  naming it that this index has neither a version row nor a write intent
  for: the index is older than the store (restored from a backup), so
  nothing it does not know is an orphan: never swept until ``fsck --adopt``.

So a new index, or ``init`` after losing ``index.db``, never takes another
index's payloads for orphans.
"""

from __future__ import annotations

from dataclasses import dataclass

from artifactfs.stores.base import ArtifactStore
from artifactfs.stores.marker import MarkerError, StoreMarker, read_marker, write_marker

OWNED, CLAIMABLE, FOREIGN, UNMARKED, BEHIND = "owned", "claimable", "foreign", "unmarked", "behind"


@dataclass(frozen=True)
class Ownership:
    state: str
    reason: str | None = None  # why orphans are not swept here (None: they are)
    marker: StoreMarker | None = None

    @property
    def sweeps(self) -> bool:
        return self.state in (OWNED, CLAIMABLE)


def read_ownership(store: ArtifactStore, index_uuid: str) -> Ownership:
    """Owned, foreign, or (no marker) unmarked: the caller decides whether an
    unmarked store is claimable once it knows what the store holds. A store
    that cannot be read raises what the flavor raised."""
    try:
        marker = read_marker(store)
    except MarkerError as exc:
        return Ownership(FOREIGN, exc.message)
    if marker is None:
        return Ownership(UNMARKED)
    if marker.index_uuid == index_uuid:
        return Ownership(OWNED, marker=marker)
    return Ownership(FOREIGN, foreign_reason(store, marker), marker)


def foreign_reason(store: ArtifactStore, marker: StoreMarker) -> str:
    return (f"store {store.name!r} is owned by index {marker.index_uuid} (its marker, written "
            f"{marker.created_at or 'at an unknown time'}, names that index): orphans are not swept here; "
            f"if this index now owns it, run `artifactfs fsck --adopt --store {store.name}`")


def unmarked_reason(store: ArtifactStore, unknown: int, complete: bool) -> str:
    what = (f"holds {unknown} payload entr{'y' if unknown == 1 else 'ies'} this index does not know" if unknown
            else "was not listed whole in this pass")
    return (f"store {store.name!r} has no marker and {what}: orphans are not swept here; run "
            f"`artifactfs fsck --adopt --store {store.name}` to re-index its payloads, or "
            f"`artifactfs store claim {store.name}` to let this index remove what it does not know")


def behind_reason(store: ArtifactStore, uri: str) -> str:
    return (f"this index is older than store {store.name!r}: run `artifactfs fsck --adopt --store {store.name}` "
            f"({uri} has a manifest file naming it, and the index has no version or write intent for it: "
            "restored from a backup? no orphan is swept there until then)")


def decide_unmarked(store: ArtifactStore, unknown: int, complete: bool) -> Ownership:
    """An unmarked store is claimable only when it was listed whole and holds
    nothing this index does not know."""
    if complete and unknown == 0:
        return Ownership(CLAIMABLE)
    return Ownership(UNMARKED, unmarked_reason(store, unknown, complete))


def claim(store: ArtifactStore, index_uuid: str, force: bool = False) -> bool:
    """Write the marker naming ``index_uuid`` (``force``: replace another's).
    Returns whether this index owns the store afterwards."""
    marker = write_marker(store, index_uuid, exclusive=not force)
    return marker.index_uuid == index_uuid


__all__ = [
    "CLAIMABLE",
    "FOREIGN",
    "OWNED",
    "UNMARKED",
    "Ownership",
    "claim",
    "decide_unmarked",
    "foreign_reason",
    "read_ownership",
    "unmarked_reason",
]
