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


#: kind -> the table linking it to tags, its column, and (for kinds that
#: may hold an exclusive tag) the row type, its scope column and the scope's label.
_LINKS: dict[str, tuple[Any, Any]] = {"version": (VersionTag, VersionTag.version_id), "run": (RunTag, RunTag.run_id),
                                      "artifact": (ArtifactTag, ArtifactTag.artifact_id),
                                      "pipeline": (PipelineTag, PipelineTag.pipeline_id)}
_SCOPES: dict[str, tuple[Any, Any, str]] = {
    "version": (ArtifactVersion, ArtifactVersion.artifact_id, "versions of one artifact"),
    "run": (PipelineRun, PipelineRun.pipeline_id, "runs of one pipeline"),
}


def attach(session, kind: str, target_ids: list[int], tags: Iterable[Any]) -> None:
    """Tag ``version``s, ``run``s, an ``artifact`` or a ``pipeline``. An
    exclusive tag leaves the other versions of each artifact / runs of each
    pipeline; an artifact or a pipeline cannot hold one (as in ZenML)."""
    rows = tag_rows(session, tags)
    if not rows or not target_ids:
        return
    exclusive = [row for row in rows if row.exclusive]
    if exclusive and kind not in _SCOPES:
        raise TagError(f"tag(s) {', '.join(repr(r.name) for r in exclusive)} are exclusive: a {kind} cannot hold one",
                       "exclusive tags go on artifact versions and runs")
    table, column = _LINKS[kind]
    session.execute(dialect_insert(session)(table).on_conflict_do_nothing(index_elements=[column.key, "tag_id"]),
                    [{column.key: target, "tag_id": row.id} for target in target_ids for row in rows])
    if exclusive:
        model, scope, label = _SCOPES[kind]
        owners = dict(session.execute(select(model.id, scope).where(model.id.in_(target_ids))).all())
        if len(set(owners.values())) != len(owners):
            raise TagError(f"an exclusive tag cannot go on several {label} at once", "attach it to one of them")
        others = select(model.id).where(scope.in_(set(owners.values())), model.id.not_in(target_ids))
        session.execute(delete(table).where(table.tag_id.in_([r.id for r in exclusive]), column.in_(others)))
    bump_generation(session)


def check_can_be_exclusive(session, tag_id: int, name: str) -> None:
    """Refuse to make a tag exclusive while an artifact or a pipeline holds
    it, or two versions of one artifact or two runs of one pipeline do."""
    for kind in ("artifact", "pipeline"):
        table, column = _LINKS[kind]
        if session.scalar(select(column).where(table.tag_id == tag_id).limit(1)) is not None:
            raise TagError(f"tag {name!r} is on a {kind}, which cannot hold an exclusive tag",
                           f"remove it from the {kind} first")
    for kind, (model, scope, label) in _SCOPES.items():
        table, column = _LINKS[kind]
        shared = (select(scope).join(table, column == model.id).where(table.tag_id == tag_id)
                  .group_by(scope).having(func.count() > 1).limit(1))
        if session.scalar(shared) is not None:
            raise TagError(f"tag {name!r} is on several {label}, so it cannot become exclusive",
                           "remove it from all but one of them first")


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
