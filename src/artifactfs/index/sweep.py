"""Deleting the payload of a condemned version: the one piece the pruner
(``gc``) and the API's explicit deletes (``Client().delete_artifact_version``,
``Client().prune_artifacts``) share. Both follow DESIGN.md's protocol,
condemn -> sweep -> forget; this module is the sweep of one version, placed
in ``index`` because ``api`` sits below ``gc`` and may not import it.

A payload that a live version overlaps (adopted paths may nest) is never
deleted: the row goes, the files stay.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from artifactfs.index.artifacts import uri_owners
from artifactfs.index.gc import VIZ_SUFFIX, VersionRef
from artifactfs.index.models import PayloadKind
from artifactfs.stores.base import ArtifactStore


def _rmtree(store: ArtifactStore, uri: str) -> bool:
    try:
        store.rmtree(uri)
        return True
    except FileNotFoundError:
        return False


def delete_payload(store: ArtifactStore, ref: VersionRef) -> bool:
    """Delete a condemned version's payload (and its visualizations, when the
    row lists any: a stray ``.viz`` folder becomes an orphan once the row is
    forgotten); a payload already gone is fine. Returns whether anything was there."""
    if ref.payload_kind == PayloadKind.FILE.value:
        try:
            store.remove(ref.uri)
            found = True
        except FileNotFoundError:
            found = False
    else:
        found = _rmtree(store, ref.uri)
    if ref.has_viz and not ref.in_place:
        found = _rmtree(store, ref.uri + VIZ_SUFFIX) or found
    return found


def delete_folder(store: ArtifactStore, uri: str) -> bool:
    return _rmtree(store, uri)


def live_overlap(session: Session, ref: VersionRef) -> str | None:
    """The uri of a live version whose payload overlaps ``ref``'s, if any."""
    owners = uri_owners(session, ref.uri, exclude_id=ref.id, live_only=True)
    return owners[0].uri if owners else None
