"""Tags: the ``Tag`` value users pass and get back, and the one owner of
attaching tags to versions, artifacts and runs in the index, with ZenML's
exclusive rule: an exclusive tag is held by one version of an artifact and
by one run of a pipeline at a time (attaching it moves it there); an
artifact as a whole cannot hold one. Every function takes a ``Session``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, func, select

from artifactfs.errors import ArtifactfsError
from artifactfs.index.db import dialect_insert
from artifactfs.index.generation import bump_generation
from artifactfs.index.models import (
    ArtifactTag,
    ArtifactVersion,
    PipelineRun,
    PipelineTag,
    RunTag,
    Tag as TagRow,
    VersionTag,
)
from artifactfs.index.artifacts import check_name


class TagError(ArtifactfsError, ValueError):
    """A tag cannot be attached as asked (ZenML raises ``ValueError``)."""


class Tag(str):
    """A tag: its name (``str(tag)``, ``tag == "name"`` and ``tag.name``)
    and ZenML's flags. ``exclusive``: held by one version of an artifact /
    one run of a pipeline at a time. ``cascade``: a ``@pipeline(tags=...)``
    tag that also goes on every output version of the run. ``None`` (the
    default of a new ``Tag``): as the tag already is, not exclusive if new."""

    exclusive: bool | None
    cascade: bool | None
    color: str | None

    def __new__(cls, name: Any = None, exclusive: bool | None = None, cascade: bool | None = None,
                color: str | None = None, **given: Any) -> Tag:
        name = given.pop("name", name)  # ZenML's Tag(name=...) keyword
        if given:
            raise TypeError(f"Tag() got unexpected argument(s): {', '.join(sorted(given))}")
        tag = super().__new__(cls, check_name(name, "tag"))
        tag.exclusive, tag.cascade, tag.color = exclusive, cascade, color
        return tag

    @property
    def name(self) -> str:
        return str.__str__(self)

    @property
    def id(self) -> str:
        """A stable id for the tag's name (the index keys tags by name)."""
        return tag_id(self.name)

    def __repr__(self) -> str:
        flags = "".join(f", {flag}=True" for flag in ("exclusive", "cascade") if getattr(self, flag))
        return f"Tag({self.name!r}{flags})"

    def __reduce__(self):
        return (Tag, (self.name, self.exclusive, self.cascade, self.color))


def tag_id(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"artifactfs:tag:{name}"))


def as_tags(tags: Iterable[Any] | str | None) -> list[Tag]:
    """Tags as ``Tag`` values, checked: a name, a ``Tag``, or a list of
    them (ZenML's ``Union[str, Tag, List[...]]``)."""
    if tags is None:
        return []
    if isinstance(tags, str) or hasattr(tags, "name") and not isinstance(tags, (list, tuple, set)):
        tags = [tags]
    return [tag if isinstance(tag, Tag) else Tag(getattr(tag, "name", tag), exclusive=getattr(tag, "exclusive", None),
                                                 cascade=getattr(tag, "cascade", None)) for tag in tags]


def tag_rows(session, tags: Iterable[Any]) -> list[TagRow]:
    """The rows of these tags, made where missing (exclusive as the given
    ``Tag`` says). A ``Tag`` whose flag differs from an existing tag's is
    refused, as ZenML refuses it; a plain name takes the tag as it is."""
    wanted = {tag.name: tag for tag in as_tags(tags)}
    if not wanted:
        return []
    session.execute(dialect_insert(session)(TagRow).on_conflict_do_nothing(index_elements=["name"]),
                    [{"name": name, "exclusive": bool(tag.exclusive)} for name, tag in sorted(wanted.items())])
    rows = list(session.scalars(select(TagRow).where(TagRow.name.in_(sorted(wanted))).order_by(TagRow.id)))
    for row in rows:
        given = wanted[row.name].exclusive
        if given is not None and bool(given) != bool(row.exclusive):
            kind = "an exclusive" if row.exclusive else "a non-exclusive"
            raise TagError(f"tag {row.name!r} has been defined as {kind} tag",
                           f"attach it by name, or change it first with Client().update_tag({row.name!r}, "
                           f"exclusive={bool(given)})")
    return rows


def tag_versions(session, version_ids: list[int], tags: Iterable[Any]) -> None:
    """Tag versions; an exclusive tag leaves the other versions of each artifact."""
    rows = tag_rows(session, tags)
    if not rows or not version_ids:
        return
    session.execute(dialect_insert(session)(VersionTag).on_conflict_do_nothing(index_elements=["version_id", "tag_id"]),
                    [{"version_id": v, "tag_id": row.id} for v in version_ids for row in rows])
    exclusive = [row.id for row in rows if row.exclusive]
    if exclusive:
        owners = dict(session.execute(select(ArtifactVersion.id, ArtifactVersion.artifact_id)
                                      .where(ArtifactVersion.id.in_(version_ids))).all())
        _one_per_scope(owners, "versions of one artifact")
        others = select(ArtifactVersion.id).where(ArtifactVersion.artifact_id.in_(set(owners.values())),
                                                  ArtifactVersion.id.not_in(version_ids))
        session.execute(delete(VersionTag).where(VersionTag.tag_id.in_(exclusive), VersionTag.version_id.in_(others)))
    bump_generation(session)


def tag_runs(session, run_ids: list[int], tags: Iterable[Any]) -> None:
    """Tag pipeline runs; an exclusive tag leaves the pipeline's other runs."""
    rows = tag_rows(session, tags)
    if not rows or not run_ids:
        return
    session.execute(dialect_insert(session)(RunTag).on_conflict_do_nothing(index_elements=["run_id", "tag_id"]),
                    [{"run_id": r, "tag_id": row.id} for r in run_ids for row in rows])
    exclusive = [row.id for row in rows if row.exclusive]
    if exclusive:
        owners = dict(session.execute(select(PipelineRun.id, PipelineRun.pipeline_id)
                                      .where(PipelineRun.id.in_(run_ids))).all())
        _one_per_scope(owners, "runs of one pipeline")
        others = select(PipelineRun.id).where(PipelineRun.pipeline_id.in_(set(owners.values())),
                                              PipelineRun.id.not_in(run_ids))
        session.execute(delete(RunTag).where(RunTag.tag_id.in_(exclusive), RunTag.run_id.in_(others)))
    bump_generation(session)


def tag_artifact(session, artifact_id: int, tags: Iterable[Any]) -> None:
    """Tag an artifact as a whole; exclusive tags are refused (as in ZenML)."""
    _tag_holder(session, "artifact", artifact_id, tags)


def tag_pipeline(session, pipeline_id: int, tags: Iterable[Any]) -> None:
    """Tag a pipeline; exclusive tags are refused (as in ZenML)."""
    _tag_holder(session, "pipeline", pipeline_id, tags)


def _tag_holder(session, kind: str, target_id: int, tags: Iterable[Any]) -> None:
    rows = tag_rows(session, tags)
    refused = [row.name for row in rows if row.exclusive]
    if refused:
        raise TagError(f"tag(s) {', '.join(map(repr, refused))} are exclusive: a {kind} cannot hold one",
                       "exclusive tags go on artifact versions and runs")
    if not rows:
        return
    table, column = _LINKS[kind]
    session.execute(dialect_insert(session)(table).on_conflict_do_nothing(index_elements=[column.key, "tag_id"]),
                    [{column.key: target_id, "tag_id": row.id} for row in rows])
    bump_generation(session)


def check_can_be_exclusive(session, tag_id: int, name: str) -> None:
    """Refuse to make a tag exclusive while it is on an artifact, on two
    versions of one artifact or on two runs of one pipeline."""
    for kind in ("artifact", "pipeline"):
        table, column = _LINKS[kind]
        if session.scalar(select(column).where(table.tag_id == tag_id).limit(1)) is not None:
            raise TagError(f"tag {name!r} is on a {kind}, which cannot hold an exclusive tag",
                           f"remove it from the {kind} first")
    for scope, query in (
        ("versions of one artifact", select(ArtifactVersion.artifact_id).join(
            VersionTag, VersionTag.version_id == ArtifactVersion.id).where(VersionTag.tag_id == tag_id)
         .group_by(ArtifactVersion.artifact_id).having(func.count() > 1)),
        ("runs of one pipeline", select(PipelineRun.pipeline_id).join(RunTag, RunTag.run_id == PipelineRun.id)
         .where(RunTag.tag_id == tag_id).group_by(PipelineRun.pipeline_id).having(func.count() > 1)),
    ):
        if session.scalar(query.limit(1)) is not None:
            raise TagError(f"tag {name!r} is on several {scope}, so it cannot become exclusive",
                           "remove it from all but one of them first")


def _one_per_scope(owners: dict[int, int], scope: str) -> None:
    if len(set(owners.values())) != len(owners):
        raise TagError(f"an exclusive tag cannot go on several {scope} at once", "attach it to one of them")


_LINKS: dict[str, tuple[Any, Any]] = {"version": (VersionTag, VersionTag.version_id), "run": (RunTag, RunTag.run_id),
          "artifact": (ArtifactTag, ArtifactTag.artifact_id), "pipeline": (PipelineTag, PipelineTag.pipeline_id)}


def untag(session, kind: str, target_id: int, tags: Iterable[Any]) -> None:
    """Remove tags (by name) from a ``version``, ``run`` or ``artifact``."""
    names = [tag.name for tag in as_tags(tags)]
    table, column = _LINKS[kind]
    session.execute(delete(table).where(column == target_id,
                                        table.tag_id.in_(select(TagRow.id).where(TagRow.name.in_(names)))))
    bump_generation(session)


def tags_of(session, kind: str, target_ids: Iterable[int]) -> dict[int, list[Tag]]:
    """Each target's tags as ``Tag`` values, by name."""
    table, column = _LINKS[kind]
    found: dict[int, list[Tag]] = {}
    ids = list(target_ids)
    if not ids:
        return found
    for target, name, exclusive in session.execute(
            select(column, TagRow.name, TagRow.exclusive).join(TagRow, TagRow.id == table.tag_id)
            .where(column.in_(ids)).order_by(TagRow.name)):
        found.setdefault(target, []).append(Tag(name, exclusive=bool(exclusive)))
    return found


#: ZenML's string filter operators for ``tags=[...]`` filters.
_OPERATORS = {
    "equals": lambda tag, value: tag == value,
    "notequals": lambda tag, value: tag != value,
    "contains": lambda tag, value: value in tag,
    "startswith": lambda tag, value: tag.startswith(value),
    "endswith": lambda tag, value: tag.endswith(value),
}


def matches_filters(names: Iterable[str], filters: Iterable[str] | str | None) -> bool:
    """ZenML's ``tags=`` filter: every filter (``"name"`` or ``"op:value"``,
    op one of equals, notequals, contains, startswith, endswith) is met by
    at least one of ``names``."""
    names = list(names)
    for given in [filters] if isinstance(filters, str) else list(filters or ()):
        op, _, value = str(given).partition(":")
        if value == "" or op not in _OPERATORS:
            op, value = "equals", str(given)
        if not any(_OPERATORS[op](name, value) for name in names):
            return False
    return True
