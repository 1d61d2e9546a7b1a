"""Who produced a version: the one rule the API, the mount and the web view
answer with.

A version can be linked as the output of more than one step run (a cached
step run links the version its original made; a version saved once may be
linked again). Its producer is the step run of its *first* output link,
the one with the lowest ``step_io`` id: the step run that recorded it
first, which is never changed by a later link. Every query that names a
producer selects that link through this module.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import ColumnElement, Select, func, select

from artifactfs.index.models import StepIO

OUTPUT = "output"
INPUT = "input"


def producing_link(version_id: int | ColumnElement[int]) -> ColumnElement[int]:
    """The id of the output link that names the producer of ``version_id``
    (a value or a correlated column), as a scalar subquery."""
    return (
        select(func.min(StepIO.id))
        .where(StepIO.version_id == version_id, StepIO.direction == OUTPUT)
        .scalar_subquery()
    )


def producing_links(version_ids: Iterable[int]) -> Select:
    """The ids of the output links that name the producers of ``version_ids``
    (one per version that has one), for ``StepIO.id.in_(...)``."""
    return (
        select(func.min(StepIO.id))
        .where(StepIO.version_id.in_(list(version_ids)), StepIO.direction == OUTPUT)
        .group_by(StepIO.version_id)
    )


__all__ = ["INPUT", "OUTPUT", "producing_link", "producing_links"]
