"""The tables of the lineage index, as SQLAlchemy 2 typed models.

Every schema change here comes with a migration in ``migrations/versions``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

import uuid

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Index, Integer, String, Table, Text, UniqueConstraint, false, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from artifactfs.index.clock import index_now
# The enums of the columns live at the bottom layer (artifactfs.enums), so that
# naming one loads no SQLAlchemy; re-exported here for the index's callers.
from artifactfs.enums import LIVE, ArtifactType, PayloadKind, RunStatus, SaveType, VersionState  # noqa: F401


def utcnow() -> dt.datetime:
    """This host's clock: for display and names only. Every time an age is
    measured from is written by the index's clock (``index.clock``)."""
    return dt.datetime.now(dt.timezone.utc)


def new_uuid() -> str:
    return str(uuid.uuid4())


class Base(DeclarativeBase):
    #: Every model is mapped to one Table (SQLAlchemy types the attribute as any FROM clause).
    __table__: ClassVar[Table]

    type_annotation_map = {
        dt.datetime: DateTime(timezone=True),
        dict[str, Any]: JSON,
        list[Any]: JSON,
        str: String(1024),
        # SQLite only autoincrements an "INTEGER PRIMARY KEY".
        int: BigInteger().with_variant(Integer(), "sqlite"),
    }


class Store(Base):
    """A named store: flavor, root URI and the options that are not secret."""

    __tablename__ = "store"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    flavor: Mapped[str] = mapped_column(String(64))
    root_uri: Mapped[str]
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=index_now())
    # The machine a local store belongs to (migration 0004; see index.hosts);
    # NULL: a remote store, or a local one recorded before owners were.
    host_id: Mapped[str | None] = mapped_column(String(64))
    # Removed with --force while versions were recorded in it (migration
    # 0006_team): the row stays, renamed "<name>~<id>", for those lost versions.
    removed_at: Mapped[dt.datetime | None]


class IndexState(Base):
    """One row: the generation counter that every commit bumps, so readers
    (the mount) can poll one integer to learn that something changed."""

    __tablename__ = "index_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    generation: Mapped[int] = mapped_column(default=0)
    # This index's identity (migration 0004), written into the marker of
    # every store root it owns.
    index_uuid: Mapped[str | None] = mapped_column(String(36))
    # SQLite: the latest time any writer has seen (migration 0008; ``index.clock``).
    clock_mark: Mapped[dt.datetime | None]


class WriteIntent(Base):
    """A save in flight (migration 0004): recorded before the first byte of
    its payload folder is written, deleted by the transaction that commits
    the version. Its folder is ``stores.layout.payload_folder(name, uuid)``,
    so it names the version's uuid: a payload with an intent is a save in
    flight (or a crashed one), a payload with neither row nor intent is not.
    ``started_at`` comes from the index's clock (``index.clock``), so hosts
    with skewed clocks agree on its age."""

    __tablename__ = "write_intent"
    __table_args__ = (Index("ix_write_intent_store", "store_id", "started_at"),)

    uuid: Mapped[str] = mapped_column(String(36), primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("store.id", ondelete="CASCADE"))
    folder: Mapped[str] = mapped_column(String(2048))  # relative to the store root
    holder: Mapped[str | None] = mapped_column(String(255))
    started_at: Mapped[dt.datetime] = mapped_column(default=index_now(), server_default=func.now())
    # The version the save will commit (migration 0009): numbered with the
    # intent, so the manifest file beside the payload is written once. NULL
    # for a payload that is not a new version (``migrate``'s copies).
    artifact_id: Mapped[int | None]
    version: Mapped[str | None] = mapped_column(String(255))
    version_number: Mapped[int | None]


# -- lineage ------------------------------------------------------------------
# Integer primary keys come from AUTOINCREMENT sequences and are never reused:
# the mount turns them into inode numbers. Users see the uuid columns.

_NEVER_REUSE = {"sqlite_autoincrement": True}


class Pipeline(Base):
    __tablename__ = "pipeline"
    __table_args__ = _NEVER_REUSE

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=index_now())


class PipelineRun(Base):
    __tablename__ = "pipeline_run"
    __table_args__ = (
        Index("ix_pipeline_run_pipeline", "pipeline_id", "name"),
        Index("ix_pipeline_run_newest", "pipeline_id", "id"),  # migration 0005
        Index("ix_pipeline_run_status", "status"),  # migration 0011: the running runs, to tell the crashed
        _NEVER_REUSE,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipeline.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255), unique=True)
    status: Mapped[str] = mapped_column(String(16), default=RunStatus.RUNNING.value)
    parameters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    config: Mapped[dict[str, Any] | None]  # migration 0010: substitutions, enable_cache
    start_time: Mapped[dt.datetime] = mapped_column(default=index_now())
    end_time: Mapped[dt.datetime | None]
    # Migration 0011: the process running it (index.holders) and when it last
    # said it still runs (the index's clock); index.liveness tells a crashed run.
    holder: Mapped[str | None] = mapped_column(String(255))
    heartbeat_at: Mapped[dt.datetime | None]

    pipeline: Mapped[Pipeline] = relationship(lazy="joined")


class StepRun(Base):
    __tablename__ = "step_run"
    __table_args__ = (
        UniqueConstraint("run_id", "name"),
        Index("ix_step_run_cache_key", "cache_key", "status"),
        _NEVER_REUSE,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    run_id: Mapped[int] = mapped_column(ForeignKey("pipeline_run.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default=RunStatus.RUNNING.value)
    code_hash: Mapped[str | None] = mapped_column(String(64))
    cache_key: Mapped[str | None] = mapped_column(String(64))
    parameters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    original_step_run_id: Mapped[int | None] = mapped_column(ForeignKey("step_run.id", ondelete="SET NULL"))
    start_time: Mapped[dt.datetime] = mapped_column(default=index_now())
    end_time: Mapped[dt.datetime | None]

    run: Mapped[PipelineRun] = relationship(lazy="joined")


class StepLog(Base):
    """What a step run wrote while it ran (migration 0011): its stdout,
    stderr and logging records, bounded (``pipelines.logs``)."""

    __tablename__ = "step_log"

    step_run_id: Mapped[int] = mapped_column(ForeignKey("step_run.id", ondelete="CASCADE"), primary_key=True)
    text: Mapped[str] = mapped_column(Text)  # what was kept: the head, a line saying what was cut, the tail
    total_chars: Mapped[int]  # characters written in all
    cut_chars: Mapped[int] = mapped_column(default=0)  # characters left out of ``text``


class Artifact(Base):
    __tablename__ = "artifact"
    __table_args__ = _NEVER_REUSE

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=index_now())


class VersionRow(Base):
    """A row of ``artifact_version`` (the API's user-facing record is ``api.artifacts.ArtifactVersion``)."""

    __tablename__ = "artifact_version"
    __table_args__ = (
        UniqueConstraint("artifact_id", "version"),
        Index("ix_version_newest", "artifact_id", "state", "id"),
        Index("ix_version_number", "artifact_id", "version_number"),
        Index("ix_version_state", "state", "created_at"),
        _NEVER_REUSE,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    artifact_id: Mapped[int] = mapped_column(ForeignKey("artifact.id", ondelete="CASCADE"))
    version: Mapped[str] = mapped_column(String(255))
    version_number: Mapped[int | None]
    store_id: Mapped[int] = mapped_column(ForeignKey("store.id"))
    uri: Mapped[str] = mapped_column(String(2048), unique=True)
    payload_kind: Mapped[str] = mapped_column(String(16), default=PayloadKind.FOLDER.value)
    materializer: Mapped[str | None] = mapped_column(String(512))
    data_type: Mapped[str | None] = mapped_column(String(512))
    content_hash: Mapped[str | None] = mapped_column(String(64))
    # Of content_hash and every manifest digest (migration 0004; older rows: sha256).
    hash_algorithm: Mapped[str] = mapped_column(String(16), server_default="sha256")
    artifact_type: Mapped[str] = mapped_column(String(32), default=ArtifactType.DATA.value,
                                               server_default=ArtifactType.DATA.value)
    size: Mapped[int] = mapped_column(default=0)
    file_count: Mapped[int] = mapped_column(default=0)
    state: Mapped[str] = mapped_column(String(16), default=LIVE)
    save_type: Mapped[str] = mapped_column(String(16))
    visualizations: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[dt.datetime] = mapped_column(default=index_now())
    condemned_at: Mapped[dt.datetime | None]
    swept_at: Mapped[dt.datetime | None]  # payload deleted by the pruner (migration 0003)

    artifact: Mapped[Artifact] = relationship(lazy="joined")
    store: Mapped[Store] = relationship(lazy="joined")


#: The old name of ``VersionRow``, still spelled inside ``index/`` (one rename after the
#: parallel branches land); code outside the index layer says ``VersionRow``.
ArtifactVersion = VersionRow


class VersionFile(Base):
    """The manifest: one row per payload file of a version."""

    __tablename__ = "version_file"
    __table_args__ = (UniqueConstraint("version_id", "path"), _NEVER_REUSE)

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("artifact_version.id", ondelete="CASCADE"))
    path: Mapped[str] = mapped_column(String(4096))
    size: Mapped[int]
    mode: Mapped[int] = mapped_column(Integer)
    digest: Mapped[str | None] = mapped_column(String(64))  # hex, algorithm: the version's hash_algorithm


class StepIO(Base):
    """A step run read (input) or wrote (output) a version under a name;
    several versions may share a name (a step that saves ``manual`` three
    times: ZenML's outputs are lists)."""

    __tablename__ = "step_io"
    __table_args__ = (
        UniqueConstraint("step_run_id", "direction", "name", "version_id", name="uq_step_io_link"),
        Index("ix_step_io_version", "version_id"),
        _NEVER_REUSE,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    step_run_id: Mapped[int] = mapped_column(ForeignKey("step_run.id", ondelete="CASCADE"))
    version_id: Mapped[int] = mapped_column(ForeignKey("artifact_version.id", ondelete="RESTRICT"))
    direction: Mapped[str] = mapped_column(String(8))  # "input" | "output"
    name: Mapped[str] = mapped_column(String(255))


class Tag(Base):
    __tablename__ = "tag"
    __table_args__ = _NEVER_REUSE

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    #: held by one version of an artifact / one run of a pipeline at a time (ZenML's; migration 0012)
    exclusive: Mapped[bool] = mapped_column(default=False, server_default=false())


class VersionTag(Base):
    __tablename__ = "version_tag"
    # Migration 0005: a tag's versions, newest first, one keyset page at a time.
    __table_args__ = (Index("ix_version_tag_newest", "tag_id", "version_id"),)

    version_id: Mapped[int] = mapped_column(
        ForeignKey("artifact_version.id", ondelete="CASCADE"), primary_key=True
    )
    tag_id: Mapped[int] = mapped_column(ForeignKey("tag.id", ondelete="CASCADE"), primary_key=True, index=True)


class ArtifactTag(Base):
    """A tag on an artifact as a whole (ZenML's artifact tags; migration 0004)."""

    __tablename__ = "artifact_tag"

    artifact_id: Mapped[int] = mapped_column(ForeignKey("artifact.id", ondelete="CASCADE"), primary_key=True)
    tag_id: Mapped[int] = mapped_column(ForeignKey("tag.id", ondelete="CASCADE"), primary_key=True, index=True)


class RunTag(Base):
    """A tag on a pipeline run (migration 0012)."""

    __tablename__ = "run_tag"

    run_id: Mapped[int] = mapped_column(ForeignKey("pipeline_run.id", ondelete="CASCADE"), primary_key=True)
    tag_id: Mapped[int] = mapped_column(ForeignKey("tag.id", ondelete="CASCADE"), primary_key=True, index=True)


class PipelineTag(Base):
    """A tag on a pipeline (migration 0012)."""

    __tablename__ = "pipeline_tag"

    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipeline.id", ondelete="CASCADE"), primary_key=True)
    tag_id: Mapped[int] = mapped_column(ForeignKey("tag.id", ondelete="CASCADE"), primary_key=True, index=True)


class Metadata(Base):
    """A typed key/value on a version, a run or a step run."""

    __tablename__ = "metadata"
    __table_args__ = (
        Index("ix_metadata_version", "version_id"),
        Index("ix_metadata_run", "run_id"),
        Index("ix_metadata_step_run", "step_run_id"),
        Index("ix_metadata_key", "key", "version_id"),  # migration 0005: search by key=value
        _NEVER_REUSE,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int | None] = mapped_column(ForeignKey("artifact_version.id", ondelete="CASCADE"))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("pipeline_run.id", ondelete="CASCADE"))
    step_run_id: Mapped[int | None] = mapped_column(ForeignKey("step_run.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    value: Mapped[dict[str, Any]]  # {"v": value} keeps any JSON value, null included
    type: Mapped[str] = mapped_column(String(32))


class GcLease(Base):
    """The pruner's lease (migration 0003): one row per lease name; the holder
    renews ``expires_at`` while it works, and another pruner may take the
    lease only once it has expired (or its holder died on this host)."""

    __tablename__ = "gc_lease"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(255))
    acquired_at: Mapped[dt.datetime | None]
    heartbeat_at: Mapped[dt.datetime | None]
    expires_at: Mapped[dt.datetime | None]


class GcScan(Base):
    """When the pruner last listed one artifact-name folder of a store for
    orphan payloads (migration 0006): a pass over a large remote store lists
    a bounded number of them, those listed longest ago first."""

    __tablename__ = "gc_scan"

    store_id: Mapped[int] = mapped_column(ForeignKey("store.id", ondelete="CASCADE"), primary_key=True)
    prefix: Mapped[str] = mapped_column(String(1024), primary_key=True)  # the name folder, relative to the root
    listed_at: Mapped[dt.datetime]
