"""THE order of "newest" among the versions of one artifact, in SQLAlchemy
Core (no ORM), and the queries ranked by it.

``load_artifact``, the mount's ``latest``, ``gc --keep-latest``, the web
view and ``artifactfs artifact list`` all use it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from artifactfs.index.sql import is_live
from artifactfs.index.tables import artifact_version as _version

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection
    from sqlalchemy.orm import Session


def newest_order(newest: bool = True) -> tuple:
    """THE order of "newest" among the versions of one artifact: the highest
    version number first; versions named by a string (no number) after
    every numbered one, the one created last first; the row id only breaks
    ties. Never the row id alone: ``fsck --adopt`` inserts rows in whatever
    order it finds payloads. ``newest=False``: the same order reversed
    (oldest first)."""
    c = _version.c
    if newest:
        return c.version_number.desc().nulls_last(), c.created_at.desc(), c.id.desc()
    return c.version_number.asc().nulls_first(), c.created_at.asc(), c.id.asc()


def newest_rank(artifact_ids: Iterable[int] | None = None):
    """A subquery of live versions, ``(vid, artifact_id, rank)``: rank 1 is
    each artifact's newest (:func:`newest_order`)."""
    c = _version.c
    ranked = select(
        c.id.label("vid"), c.artifact_id.label("artifact_id"),
        func.row_number().over(partition_by=c.artifact_id, order_by=newest_order()).label("rank"),
    ).where(is_live())
    if artifact_ids is not None:
        ranked = ranked.where(c.artifact_id.in_(list(artifact_ids)))
    return ranked.subquery()


def newest_versions(connection: Session | Connection, artifact_ids: list[int] | None) -> dict[int, str]:
    """``{artifact id: version string of its newest live version}`` (of
    every artifact when ``artifact_ids`` is None)."""
    ranked = newest_rank(artifact_ids)
    return dict(connection.execute(
        select(ranked.c.artifact_id, _version.c.version).join(_version, _version.c.id == ranked.c.vid)
        .where(ranked.c.rank == 1)).all())
