"""Moving versions between stores, as far as the index is concerned: which
versions to move, and the one transaction that re-points a version at its
copy. Every function takes a ``Session``; the caller frames the transaction.

A version's payload never changes; migration changes only where it lies
(``store_id``, ``uri``, ``payload_kind``, visualization URIs). The previous
URIs are kept, oldest first, in the version's ``migrated_from`` metadata.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from artifactfs.enums import LIVE
from artifactfs.index.artifacts import get_metadata, set_metadata
from artifactfs.index.models import Artifact, ArtifactVersion, Metadata
from artifactfs.index.generation import bump_generation
from artifactfs.index.sql import is_live

MIGRATED_FROM = "migrated_from"


def versions_to_move(
    session: Session, target_store_id: int, artifact: str | None = None, from_store_id: int | None = None
) -> list[ArtifactVersion]:
    """Live versions not in the target store (optionally of one artifact, from one store), oldest first."""
    query = (
        select(ArtifactVersion)
        .join(Artifact, Artifact.id == ArtifactVersion.artifact_id)
        .where(is_live(), ArtifactVersion.store_id != target_store_id)
        .order_by(ArtifactVersion.id)
    )
    if artifact is not None:
        query = query.where(Artifact.name == artifact)
    if from_store_id is not None:
        query = query.where(ArtifactVersion.store_id == from_store_id)
    return list(session.scalars(query))


def versions_moved_to(
    session: Session, store_id: int, artifact: str | None = None
) -> list[tuple[ArtifactVersion, list[str]]]:
    """Live versions in ``store_id`` that were migrated there, with their previous URIs."""
    query = (
        select(ArtifactVersion, Metadata.value)
        .join(Artifact, Artifact.id == ArtifactVersion.artifact_id)
        .join(Metadata, Metadata.version_id == ArtifactVersion.id)
        .where(
            is_live(),
            ArtifactVersion.store_id == store_id,
            Metadata.key == MIGRATED_FROM,
        )
        .order_by(ArtifactVersion.id)
    )
    if artifact is not None:
        query = query.where(Artifact.name == artifact)
    found = []
    for row, value in session.execute(query):
        history = (value or {}).get("v")
        if isinstance(history, list) and history:
            found.append((row, [str(uri) for uri in history]))
    return found


@dataclass(frozen=True)
class Repoint:
    version_id: int
    old_store_id: int
    old_uri: str
    store_id: int
    uri: str
    payload_kind: str
    visualizations: list[Any]


def repoint(session: Session, change: Repoint) -> bool:
    """Point a version at its copy, if it is still live and still where the
    copy was taken from (row-locked until commit). Returns whether it moved."""
    row = session.scalars(  # fresh under the lock, never the session's cached copy
        select(ArtifactVersion).where(ArtifactVersion.id == change.version_id).with_for_update(of=ArtifactVersion)
        .execution_options(populate_existing=True)
    ).first()
    if (
        row is None
        or row.state != LIVE
        or row.uri != change.old_uri
        or row.store_id != change.old_store_id
    ):
        return False
    history = list(get_metadata(session, version_id=row.id).get(MIGRATED_FROM) or [])
    row.store_id = change.store_id
    row.uri = change.uri
    row.payload_kind = change.payload_kind
    row.visualizations = list(change.visualizations)
    set_metadata(session, {MIGRATED_FROM: history + [change.old_uri]}, version_id=row.id)
    session.flush()
    bump_generation(session)
    return True
