"""Artifacts and their versions in the index: create, number, find, list,
tag, and attach metadata. Every function takes a ``Session`` (numbering a
save's versions also a Core ``Connection``: ``Index.write_core``); the
caller frames the transaction.
"""

from __future__ import annotations

import json
import math
import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, bindparam, delete, func, insert, or_, select
from sqlalchemy.orm import Session

from artifactfs.enums import LIVE
from artifactfs.errors import AlreadyExistsError, ArtifactfsError, NotFoundError
from artifactfs.faults import fault_point
from artifactfs.index.db import dialect_insert
from artifactfs.index.models import (
    Artifact,
    ArtifactType,
    ArtifactVersion,
    Metadata,
    Tag,
    VersionFile,
    VersionTag,
    WriteIntent,
)
from artifactfs.index.clock import as_utc, index_now
from artifactfs.index.generation import bump_generation
from artifactfs.index.newest import newest_order
from artifactfs.index.statements import Statement
from artifactfs.stores.hashing import DEFAULT_ALGORITHM
from artifactfs.index.sql import is_live

if TYPE_CHECKING:
    from artifactfs.index.tags import Tag as TagValue  # models.Tag is the row

#: Artifact names become folder names in every store: at most this many
#: UTF-8 bytes, as a file name on ext4, XFS or APFS.
MAX_NAME_BYTES = 255
#: Other names (versions, tags, metadata keys, runs) fill the index's
#: columns: at most this many characters (the mount shortens long ones).
MAX_NAME_LENGTH = 255
#: Metadata values nested deeper than this (dicts and lists) are refused.
MAX_METADATA_DEPTH = 32
_UUID_PREFIX = re.compile(r"^[0-9a-f-]{4,36}$")
_CONTROL = re.compile("[\x00-\x1f]")


class InvalidNameError(ArtifactfsError, ValueError):
    """A name or version string that cannot be used."""


class InvalidMetadataError(ArtifactfsError, ValueError):
    """Metadata that cannot be recorded."""


def check_name(name: Any, what: str = "artifact name") -> str:
    """Names become folder names in stores and in the mount: no '/', no NUL,
    not '.' or '..', not empty, valid text; an artifact name at most 255
    UTF-8 bytes (a folder in every store), any other at most 255 characters."""
    if not isinstance(name, str):
        raise InvalidNameError(f"{what} must be a string, got {type(name).__name__}")
    problem = _name_problem(name, what == "artifact name")
    if problem:
        raise InvalidNameError(f"{what} {name[:80]!r} {problem}", f"choose another {what}")
    return name


def _name_problem(name: str, store_folder: bool) -> str | None:
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate: os.fsdecode's escape for undecodable bytes
        return "is not valid text: it holds a lone surrogate (undecodable bytes of a file name?)"
    if not name.strip():
        return "is empty"
    if store_folder and size > MAX_NAME_BYTES:
        return f"is {size} bytes long in UTF-8 (at most {MAX_NAME_BYTES}: it names a folder in the store)"
    if len(name) > MAX_NAME_LENGTH:
        return f"is {len(name)} characters long (at most {MAX_NAME_LENGTH})"
    if "/" in name or "\\" in name:
        return "contains a slash"
    if _CONTROL.search(name):
        return "contains a control character"
    if name in (".", ".."):
        return "is '.' or '..'"
    if name != name.strip():
        return "starts or ends with white space"
    return None


def check_tags(tags: Iterable[Any]) -> list[Any]:
    """Tags (names or ``Tag`` values, kept as given), checked before anything is written."""
    return [tag for tag in tags if check_name(getattr(tag, "name", tag), "tag")]


def check_metadata(values: Any, what: str = "metadata") -> dict[str, Any]:
    """Metadata as ``set_metadata`` will record it, refused before anything is
    written: a dict with name-like string keys whose values are JSON (nested
    at most ``MAX_METADATA_DEPTH`` deep)."""
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise InvalidMetadataError(
            f"{what} must be a dict of key -> value, got {type(values).__name__}",
            "pass metadata={'key': value, ...}",
        )
    for key, value in values.items():
        check_name(key, f"{what} key")
        _check_depth(key, value)
        metadata_value(key, value)
    return values


def _check_depth(key: str, value: Any) -> None:
    """Walk without recursion: a self-containing list or a deep chain is
    refused by depth, never by a RecursionError."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            children = list(item.values())
        elif isinstance(item, (list, tuple)):
            children = list(item)
        else:
            continue
        if depth > MAX_METADATA_DEPTH:
            raise InvalidMetadataError(
                f"metadata {key!r} is nested more than {MAX_METADATA_DEPTH} levels deep (or contains itself)",
                "flatten it, or save it as an artifact of its own",
            )
        pending.extend((child, depth + 1) for child in children)


def version_number_of(version: str) -> int | None:
    """The numeric version when the string is a plain non-negative integer."""
    return int(version) if version.isdigit() and len(version) < 19 else None


# -- artifacts and versions ------------------------------------------------------


# Every save runs these: Core statements (``index.statements``), compiled once. Only
# ids are read under the locks, one name a statement, in name order.
_ARTIFACT = Artifact.__table__
_LOCK_ARTIFACT = Statement(
    select(_ARTIFACT.c.id).where(_ARTIFACT.c.name == bindparam("name")).with_for_update()
)
# The highest number an artifact's versions have and the highest one a save
# in flight holds (its write intent): each a max over an index. A statement
# of its own, AFTER the lock: on PostgreSQL (READ COMMITTED) its snapshot is
# taken once the lock is held, so it sees the intent of a save that held the
# lock before and committed (a subquery of the locking statement would not).
_HIGHEST = Statement(select(
    select(func.max(ArtifactVersion.version_number))
    .where(ArtifactVersion.artifact_id == bindparam("artifact")).scalar_subquery(),
    select(func.max(WriteIntent.version_number))
    .where(WriteIntent.artifact_id == bindparam("artifact")).scalar_subquery(),
))


def _lock(session: Session | Connection, names: Iterable[str]) -> dict[str, int]:
    """``name -> artifact id``, the rows locked (see :func:`lock_artifacts`)."""
    ordered = sorted(set(names))
    if not ordered:
        return {}
    ids = _locked_ids(session, ordered)
    if len(ids) < len(ordered):
        now = index_now()
        session.execute(
            dialect_insert(session)(Artifact)
            .values([{"name": n, "created_at": now} for n in ordered if n not in ids])
            .on_conflict_do_nothing(index_elements=["name"])
        )
        ids = _locked_ids(session, ordered)
    fault_point("artifacts_locked")
    return ids


def _locked_ids(session: Session | Connection, ordered: list[str]) -> dict[str, int]:
    """The ids of the artifact rows named ``ordered`` that exist, each row locked, in that order."""
    ids = {}
    for name in ordered:
        found = _LOCK_ARTIFACT.rows(session, {"name": name})
        if found:
            ids[name] = found[0][0]
    return ids


def highest_number(session: Session | Connection, artifact_id: int) -> int:
    """The highest version number of an artifact, counting the numbers saves
    in flight hold: the next number is one more. Call with the artifact's
    row locked, in a statement after the lock's."""
    (committed, held), = _HIGHEST.rows(session, {"artifact": artifact_id})
    return max(committed or 0, held or 0)


def lock_artifacts(session: Session, names: Iterable[str]) -> dict[str, Artifact]:
    """Get or create the artifact rows and hold their locks until commit, so
    version numbering is serialized per name (PostgreSQL: row locks; SQLite:
    the write transaction is already exclusive). The rows handed back hold
    id and name and are not in the session.

    Lock order (the index's one global order, docs/team.md "Lock order"):
    artifact rows come first in a write transaction, by name, so two writers
    saving ``(a, b)`` and ``(b, a)`` queue instead of deadlocking. Names that
    do not exist yet are inserted in name order and then every row is locked
    again in name order (a concurrent insert of the same name waits for ours)."""
    return {name: Artifact(id=i, name=name) for name, i in _lock(session, names).items()}


def lock_artifact(session: Session, name: str) -> Artifact:
    return lock_artifacts(session, [name])[name]


def reserve_versions(session: Session | Connection, wanted: list[tuple[str, str | None]]) -> list[tuple[int, str]]:
    """Number the versions about to be written, in the transaction that
    records their write intents: ``(artifact name, version or None for the
    next number)`` -> ``(artifact id, version)``. The artifact rows are
    locked first, in name order (:func:`lock_artifacts`), and the next
    number counts the numbers saves in flight hold, so two saves of one name
    never take one number; an explicit version already taken (by a version
    or by a save in flight) is refused before anything is written."""
    ids = _lock(session, [name for name, _ in wanted])
    numbered = {name for name, version in wanted if version is None}
    highest = {name: highest_number(session, ids[name]) for name in sorted(numbered)}
    taken: set[tuple[str, str]] = set()
    reserved = []
    for name, version in wanted:
        if version is None:
            highest[name] += 1
            version = str(highest[name])
        elif (name, version) in taken:
            raise duplicate_version_error(name, version)
        else:
            check_new_version(session, Artifact(id=ids[name], name=name), version)
            if name in highest:
                highest[name] = max(highest[name], version_number_of(version) or 0)
        taken.add((name, version))
        reserved.append((ids[name], version))
    return reserved


def version_exists(session: Session, name: str, version: str) -> bool:
    return session.scalar(
        select(ArtifactVersion.id).join(Artifact).where(Artifact.name == name, ArtifactVersion.version == version)
    ) is not None


def duplicate_version_error(name: str, version: str) -> AlreadyExistsError:
    return AlreadyExistsError(
        f"artifact {name!r} already has a version {version!r}",
        "versions never change: pick another version string, or leave it out for the next number",
    )


def check_new_version(session: Session | Connection, artifact: Artifact, version: str) -> None:
    """Refuse a version string that a version of ``artifact``, or a save in
    flight (its write intent), already has."""
    if session.scalar(
        select(ArtifactVersion.id).where(ArtifactVersion.artifact_id == artifact.id, ArtifactVersion.version == version)
    ) is not None or session.scalar(
        select(WriteIntent.uuid).where(WriteIntent.artifact_id == artifact.id, WriteIntent.version == version)
    ) is not None:
        raise duplicate_version_error(artifact.name, version)


@dataclass
class NewVersion:
    """Everything needed to insert a version, computed before the transaction."""

    uuid: str
    name: str
    version: str | None
    store_id: int
    uri: str
    payload_kind: str
    materializer: str | None
    data_type: str | None
    content_hash: str | None
    save_type: str
    files: list  # ManifestEntry
    hash_algorithm: str = DEFAULT_ALGORITHM  # of content_hash and every file digest
    artifact_type: str = ArtifactType.DATA.value
    tags: Iterable[str] = ()
    metadata: dict[str, Any] | None = None
    visualizations: list | None = None
    # Numbered with the write intent (``reserve_versions``): the insert uses
    # this artifact row and ``version`` as they are.
    artifact_id: int | None = None
    created_at: Any = None  # datetime: as the manifest file beside the payload says (fsck --adopt restores the journal's); None: now
    producers: list | None = None  # the step run that links it as an output, for its manifest file (link records)


# created_at: as the write batch read the index's clock (its manifest file says
# the same), else the column default (the index's clock); read back with the id.
_INSERT_VERSION = Statement(insert(ArtifactVersion.__table__).returning(ArtifactVersion.__table__.c.id,
                                                                       ArtifactVersion.__table__.c.created_at))
_INSERT_FILES = Statement(insert(VersionFile.__table__))
_INSERT_METADATA = Statement(insert(Metadata.__table__))


def insert_versions(session: Session, news: list[NewVersion]) -> list[ArtifactVersion]:
    """Several versions in one transaction (a step's outputs): those not
    numbered with their write intent are numbered here, every artifact row
    locked first, in name order."""
    numbered = reserve_versions(session, [(new.name, new.version) for new in news if new.artifact_id is None])
    rows = []
    for new in news:
        artifact_id, version = (new.artifact_id, new.version) if new.artifact_id is not None else numbered.pop(0)
        rows.append(insert_version(session, new, Artifact(id=artifact_id, name=new.name), version))
    return rows


def insert_version(session: Session, new: NewVersion, artifact: Artifact | None = None,
                   version: str | None = None) -> ArtifactVersion:
    """One transaction's worth: the version row, its manifest, tags and
    metadata. ``artifact`` and ``version``: as numbered already (with the
    write intent, or by :func:`insert_versions`); else numbered here, under
    the artifact's lock."""
    if new.artifact_id is not None and artifact is None:
        artifact, version = Artifact(id=new.artifact_id, name=new.name), new.version
    if artifact is None or version is None:
        (artifact_id, version), = reserve_versions(session, [(new.name, new.version)])
        artifact = Artifact(id=artifact_id, name=new.name)
    values = dict(
        uuid=new.uuid,
        artifact_id=artifact.id,
        version=version,
        version_number=version_number_of(version),
        store_id=new.store_id,
        uri=new.uri,
        payload_kind=new.payload_kind,
        materializer=new.materializer,
        data_type=new.data_type,
        content_hash=new.content_hash,
        hash_algorithm=new.hash_algorithm,
        artifact_type=new.artifact_type,
        size=sum(f.size for f in new.files),
        file_count=len(new.files),
        state=LIVE,
        save_type=new.save_type,
        visualizations=list(new.visualizations or []),
    )
    if new.created_at is not None:  # restored from its manifest file (fsck --adopt); else the index's clock
        values["created_at"] = new.created_at
    # One Core INSERT ... RETURNING id: a fraction of the ORM flush's work
    # on the path every save takes. The row handed back is not in the
    # session (nothing flushes it twice); callers read its attributes.
    (version_id, created_at), = _INSERT_VERSION.rows(session, values)
    row = ArtifactVersion(id=version_id, **{**values, "created_at": as_utc(created_at)})
    row.artifact = artifact  # already loaded: spares a query when the caller reads it
    _INSERT_FILES.many(session, [{"version_id": row.id, "path": f.path, "size": f.size, "mode": f.mode,
                                  "digest": f.digest} for f in new.files])
    if new.tags:
        add_tags(session, row, new.tags)
    set_metadata(session, new.metadata or {}, replace=False, version_id=row.id)
    bump_generation(session)
    return row


def overlapping_uri(uri: str):
    """The condition "a version's payload is ``uri``, lies inside it, or
    contains it"; the containing ones are the URI's ancestors, matched by
    equality so the index on ``uri`` serves every branch."""
    base = uri.rstrip("/")
    ancestors, head = [], base
    while (parent := posixpath.dirname(head)) and parent != head and not parent.endswith(":/"):
        ancestors.append(parent)
        head = parent
    conditions = [ArtifactVersion.uri == base, ArtifactVersion.uri.like(like_escape(base) + "/%", escape="\\")]
    if ancestors:
        conditions.append(ArtifactVersion.uri.in_(ancestors))
    return or_(*conditions)


def uri_owner(session: Session, uri: str, exclude_id: int | None = None) -> ArtifactVersion | None:
    """A version (any state) whose payload is ``uri``, lies inside it, or contains it."""
    return session.scalars(
        select(ArtifactVersion).where(ArtifactVersion.id != (exclude_id or 0), overlapping_uri(uri)).limit(1)
    ).first()


def uri_owners(session: Session, uri: str, exclude_id: int | None = None, live_only: bool = False) -> list[ArtifactVersion]:
    """Every version (or every live one) whose payload is ``uri``, lies inside it, or contains it."""
    query = select(ArtifactVersion).where(ArtifactVersion.id != (exclude_id or 0), overlapping_uri(uri))
    if live_only:
        query = query.where(is_live())
    return list(session.scalars(query))


def version_at(session: Session, uri: str) -> int | None:
    """The id of the version (any state) whose payload is exactly ``uri``."""
    return session.scalar(select(ArtifactVersion.id).where(ArtifactVersion.uri == uri))


def like_escape(text: str) -> str:
    """``text`` as a literal inside a LIKE pattern with escape character ``\\``."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# -- lookups ---------------------------------------------------------------------------


def _live(query):
    return query.where(is_live())


def newest_version(session: Session, name: str) -> ArtifactVersion | None:
    return session.scalars(
        _live(select(ArtifactVersion).join(Artifact).where(Artifact.name == name))
        .order_by(*newest_order())
        .limit(1)
    ).first()


def find_version(session: Session, name_or_id: str, version: str | int | None = None) -> ArtifactVersion:
    """By name (newest live version, or ``version``), by id, or by an unambiguous id prefix."""
    if not isinstance(name_or_id, str) or not name_or_id:
        raise InvalidNameError(f"expected an artifact name or version id, got {name_or_id!r}")
    if version is not None:
        row = session.scalars(
            _live(select(ArtifactVersion).join(Artifact)).where(
                Artifact.name == name_or_id, ArtifactVersion.version == str(version)
            )
        ).first()
        if row is None:
            raise _unknown_version(session, name_or_id, str(version))
        return row
    row = newest_version(session, name_or_id)
    if row is not None:
        return row
    if _UUID_PREFIX.match(name_or_id.lower()):
        matches = list(
            session.scalars(
                _live(select(ArtifactVersion)).where(
                    ArtifactVersion.uuid.like(like_escape(name_or_id.lower()) + "%", escape="\\")
                ).limit(6)
            )
        )
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            listed = ", ".join(m.uuid for m in matches[:5])
            raise NotFoundError(
                f"version id prefix {name_or_id!r} is ambiguous: it matches {listed}",
                "give more characters of the id",
            )
    raise NotFoundError(
        f"no artifact named {name_or_id!r} and no version with that id",
        "list artifacts with `artifactfs artifact list`",
        name=name_or_id, known=artifact_names(session),
    )


def artifact_names(session: Session, limit: int = 10_000) -> list[str]:
    """Names of artifacts with live versions (the newest ``limit``), to suggest one for a typo."""
    return list(session.scalars(
        select(Artifact.name).where(Artifact.id.in_(_live(select(ArtifactVersion.artifact_id))))
        .order_by(Artifact.id.desc()).limit(limit)
    ))


def _unknown_version(session: Session, name: str, version: str) -> NotFoundError:
    artifact = session.scalar(select(Artifact).where(Artifact.name == name))
    if artifact is None:
        return NotFoundError(f"no artifact named {name!r}", "list artifacts with `artifactfs artifact list`",
                             name=name, known=artifact_names(session))
    known = list(
        session.scalars(
            _live(select(ArtifactVersion.version))
            .where(ArtifactVersion.artifact_id == artifact.id)
            .order_by(*newest_order())
            .limit(10)
        )
    )
    return NotFoundError(
        f"artifact {name!r} has no version {version!r} (newest: {', '.join(known) or 'none'})",
        f"see `artifactfs artifact versions {name}`",
    )


def list_versions(
    session: Session,
    name: str | None = None,
    tag: str | None = None,
    limit: int | None = None,
    newest_first: bool = True,
) -> list[ArtifactVersion]:
    query = _live(select(ArtifactVersion).join(Artifact))
    if name is not None:
        query = query.where(Artifact.name == name)
    if tag is not None:
        query = query.join(VersionTag, VersionTag.version_id == ArtifactVersion.id).join(Tag).where(Tag.name == tag)
    query = query.order_by(*newest_order(newest_first))
    if limit:
        query = query.limit(limit)
    return list(session.scalars(query))


def version_files(session: Session, version_id: int) -> list[VersionFile]:
    return list(session.scalars(select(VersionFile).where(VersionFile.version_id == version_id).order_by(VersionFile.path)))


# -- tags ---------------------------------------------------------------------------------


def ensure_tags(session: Session, names: list[str]) -> None:
    """Create the tag rows that do not exist yet (shared by version and artifact tags)."""
    session.execute(dialect_insert(session)(Tag).on_conflict_do_nothing(index_elements=["name"]),
                    [{"name": n} for n in names])


# Version tags go through index.tags, the owner of the exclusive rule; it
# imports this module's check_name, hence the imports inside the functions.
def add_tags(session: Session, version: ArtifactVersion, tags: Iterable[Any]) -> None:
    """Tag a version (names or ``Tag`` values; see ``index.tags``)."""
    from artifactfs.index import tags as tag_rules

    tag_rules.attach(session, "version", [version.id], tags)


def remove_tags(session: Session, version: ArtifactVersion, tags: Iterable[Any]) -> None:
    from artifactfs.index import tags as tag_rules

    tag_rules.untag(session, "version", version.id, tags)


def version_tags(session: Session, version_id: int) -> list[TagValue]:
    """A version's tags, as ``Tag`` values (each also its name as a ``str``)."""
    from artifactfs.index import tags as tag_rules

    return tag_rules.tags_of(session, "version", [version_id]).get(version_id, [])


# -- metadata ---------------------------------------------------------------------------


def metadata_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    for kind, types in (("int", int), ("float", float), ("str", str), ("dict", dict), ("tuple", tuple), ("list", list)):
        if isinstance(value, types):
            return kind
    raise TypeError(type(value).__name__)


#: Values JSON gives back unchanged (exact types: a subclass, an IntEnum, goes through JSON).
_PLAIN = {int: "int", str: "str", bool: "bool", type(None): "null"}


def metadata_value(key: str, value: Any) -> tuple[dict[str, Any], str]:
    """``({"v": JSON value}, type name)`` as a metadata row stores ``value``;
    a non-finite float is kept as its text."""
    kind = _PLAIN.get(type(value))
    if kind is not None or (type(value) is float and math.isfinite(value)):
        return {"v": value}, kind or "float"  # every save's storage_size: no JSON round trip
    try:
        kind = metadata_type(value)
        return json.loads(json.dumps({"v": value}, allow_nan=False)), kind
    except (TypeError, ValueError) as exc:
        if isinstance(value, float) and not math.isfinite(value):
            return {"v": str(value)}, "float"
        raise InvalidMetadataError(
            f"metadata {key!r} is not JSON-serializable ({exc})",
            "use numbers, strings, booleans, lists and dicts of them",
        ) from exc
    except RecursionError:
        raise InvalidMetadataError(f"metadata {key!r} is nested too deep", "flatten it") from None


def set_metadata(session: Session, values: dict[str, Any], replace: bool = True, **owner: int) -> None:
    """Attach typed values to exactly one owner (version_id, run_id or step_run_id);
    ``replace=False`` skips deleting old values (a fresh owner has none)."""
    rows = []
    for key, value in values.items():
        check_name(key, "metadata key")
        stored, kind = metadata_value(key, value)
        rows.append({"key": key, "value": stored, "type": kind, **owner})
    if rows:
        (owner_column, owner_id), = owner.items()
        if replace:
            column = getattr(Metadata, owner_column)
            session.execute(delete(Metadata).where(column == owner_id, Metadata.key.in_(list(values))))
        _INSERT_METADATA.many(session, rows)


def get_metadata(session: Session, **owner: int) -> dict[str, Any]:
    (owner_column, owner_id), = owner.items()
    rows = session.scalars(select(Metadata).where(getattr(Metadata, owner_column) == owner_id).order_by(Metadata.id))
    return {row.key: _typed(row) for row in rows}


def _typed(row: Metadata) -> Any:
    value = row.value.get("v")
    if row.type == "float" and isinstance(value, str):
        return float(value)  # nan, inf
    if row.type == "tuple" and isinstance(value, list):
        return tuple(value)  # ZenML's numpy/pandas "shape" reads back as a tuple
    return value
