"""Artifacts listed by name, each with its count of live versions, its
newest version and its size: what ``artifactfs artifact list`` and
``Client.list_artifacts`` show.

SQLAlchemy Core only: these queries take a Session or a Core Connection,
and ``artifact list`` reads them through ``Index.read_rows`` without
loading the ORM.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import exists, func, select

from artifactfs.index.newest import newest_versions
from artifactfs.index.sql import is_live
from artifactfs.index.tables import artifact, artifact_version

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection
    from sqlalchemy.orm import Session


@dataclass(frozen=True)
class ArtifactSummary:
    """One artifact with a live version: its name, its live versions, the newest one's version string, their size."""

    name: str
    versions: int
    newest: str | None
    size: int


def list_artifacts(connection: Session | Connection, limit: int | None = None,
                   after: str | None = None) -> list[ArtifactSummary]:
    """Artifacts with a live version, by name: all of them, or a page of
    ``limit`` after the name ``after`` (found through the name index, then
    counted for that page only, so a page costs the same at any size)."""
    version = artifact_version.c
    totals = select(version.artifact_id, func.count(version.id),
                    func.coalesce(func.sum(version.size), 0)).where(is_live()).group_by(version.artifact_id)
    if limit:
        page = _named_with_live(after).order_by(artifact.c.name).limit(limit)
        names = dict(connection.execute(page).all())
        totals = totals.where(version.artifact_id.in_(list(names)))
    else:
        names = dict(connection.execute(_named_with_live(after)).all())
    rows = {artifact_id: rest for artifact_id, *rest in connection.execute(totals)} if names else {}
    newest = newest_versions(connection, list(rows) if limit else None) if rows else {}
    found = [ArtifactSummary(names[i], count, newest.get(i), int(size)) for i, (count, size) in rows.items()]
    return sorted(found, key=lambda s: s.name)


def count_artifacts(connection: Session | Connection, after: str | None = None) -> int:
    """How many artifacts have a live version (with a name after ``after``)."""
    return connection.scalar(select(func.count()).select_from(_named_with_live(after).subquery())) or 0


def _named_with_live(after: str | None):
    has_live = exists(select(artifact_version.c.id).where(artifact_version.c.artifact_id == artifact.c.id, is_live()))
    query = select(artifact.c.id, artifact.c.name).where(has_live)
    return query.where(artifact.c.name > after) if after is not None else query
