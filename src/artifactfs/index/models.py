"""The ORM classes of the lineage index, mapped onto the tables that
``index.tables`` declares (the one owner of the schema: columns, types,
defaults, keys, indexes). The ``Mapped[...]`` annotations here only type
the attributes for readers and type checkers; tests/test_index_tables.py
checks them against the tables. A query that needs no ORM selects from
``index.tables`` and leaves ``sqlalchemy.orm`` unloaded.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from sqlalchemy import Table
from sqlalchemy.orm import DeclarativeBase, Mapped, relationship

from artifactfs.index import tables
# The enums of the columns live at the bottom layer (artifactfs.enums), so that
# naming one loads no SQLAlchemy; re-exported here for the index's callers.
from artifactfs.enums import LIVE, ArtifactType, PayloadKind, RunStatus, SaveType, VersionState  # noqa: F401


def utcnow() -> dt.datetime:
    """This host's clock: for display and names only. Every time an age is
    measured from is written by the index's clock (``index.clock``)."""
    return dt.datetime.now(dt.timezone.utc)


class Base(DeclarativeBase):
    #: Every model is mapped to one Table of ``index.tables`` (SQLAlchemy types the attribute as any FROM clause).
    __table__: ClassVar[Table]

    metadata = tables.metadata


class Store(Base):
    __table__ = tables.store

    id: Mapped[int]
    name: Mapped[str]
    flavor: Mapped[str]
    root_uri: Mapped[str]
    options: Mapped[dict[str, Any]]
    created_at: Mapped[dt.datetime]
    host_id: Mapped[str | None]
    removed_at: Mapped[dt.datetime | None]


class IndexState(Base):
    __table__ = tables.index_state

    id: Mapped[int]
    generation: Mapped[int]
    index_uuid: Mapped[str | None]
    clock_mark: Mapped[dt.datetime | None]


class WriteIntent(Base):
    __table__ = tables.write_intent

    uuid: Mapped[str]
    store_id: Mapped[int]
    folder: Mapped[str]
    holder: Mapped[str | None]
    started_at: Mapped[dt.datetime]
    artifact_id: Mapped[int | None]
    version: Mapped[str | None]
    version_number: Mapped[int | None]


# -- lineage -------------------------------------------------------------------


class Pipeline(Base):
    __table__ = tables.pipeline

    id: Mapped[int]
    name: Mapped[str]
    created_at: Mapped[dt.datetime]


class PipelineRun(Base):
    __table__ = tables.pipeline_run

    id: Mapped[int]
    uuid: Mapped[str]
    pipeline_id: Mapped[int]
    name: Mapped[str]
    status: Mapped[str]
    parameters: Mapped[dict[str, Any]]
    config: Mapped[dict[str, Any] | None]
    start_time: Mapped[dt.datetime]
    end_time: Mapped[dt.datetime | None]
    holder: Mapped[str | None]
    heartbeat_at: Mapped[dt.datetime | None]

    pipeline: Mapped[Pipeline] = relationship(lazy="joined")


class StepRun(Base):
    __table__ = tables.step_run

    id: Mapped[int]
    uuid: Mapped[str]
    run_id: Mapped[int]
    name: Mapped[str]
    status: Mapped[str]
    code_hash: Mapped[str | None]
    cache_key: Mapped[str | None]
    parameters: Mapped[dict[str, Any]]
    original_step_run_id: Mapped[int | None]
    start_time: Mapped[dt.datetime]
    end_time: Mapped[dt.datetime | None]

    run: Mapped[PipelineRun] = relationship(lazy="joined")


class StepLog(Base):
    __table__ = tables.step_log

    step_run_id: Mapped[int]
    text: Mapped[str]
    total_chars: Mapped[int]
    cut_chars: Mapped[int]


class Artifact(Base):
    __table__ = tables.artifact

    id: Mapped[int]
    name: Mapped[str]
    created_at: Mapped[dt.datetime]


class VersionRow(Base):
    """A row of ``artifact_version`` (the API's user-facing record is ``api.artifacts.ArtifactVersion``)."""

    __table__ = tables.artifact_version

    id: Mapped[int]
    uuid: Mapped[str]
    artifact_id: Mapped[int]
    version: Mapped[str]
    version_number: Mapped[int | None]
    store_id: Mapped[int]
    uri: Mapped[str]
    payload_kind: Mapped[str]
    materializer: Mapped[str | None]
    data_type: Mapped[str | None]
    content_hash: Mapped[str | None]
    hash_algorithm: Mapped[str]
    artifact_type: Mapped[str]
    size: Mapped[int]
    file_count: Mapped[int]
    state: Mapped[str]
    save_type: Mapped[str]
    visualizations: Mapped[list[Any]]
    created_at: Mapped[dt.datetime]
    condemned_at: Mapped[dt.datetime | None]
    swept_at: Mapped[dt.datetime | None]

    artifact: Mapped[Artifact] = relationship(lazy="joined")
    store: Mapped[Store] = relationship(lazy="joined")


#: The old name of ``VersionRow``, still spelled inside ``index/`` (one rename after the
#: parallel branches land); code outside the index layer says ``VersionRow``.
ArtifactVersion = VersionRow


class VersionFile(Base):
    __table__ = tables.version_file

    id: Mapped[int]
    version_id: Mapped[int]
    path: Mapped[str]
    size: Mapped[int]
    mode: Mapped[int]
    digest: Mapped[str | None]


class StepIO(Base):
    __table__ = tables.step_io

    id: Mapped[int]
    step_run_id: Mapped[int]
    version_id: Mapped[int]
    direction: Mapped[str]
    name: Mapped[str]


class Tag(Base):
    __table__ = tables.tag

    id: Mapped[int]
    name: Mapped[str]
    exclusive: Mapped[bool]


class VersionTag(Base):
    __table__ = tables.version_tag

    version_id: Mapped[int]
    tag_id: Mapped[int]


class ArtifactTag(Base):
    __table__ = tables.artifact_tag

    artifact_id: Mapped[int]
    tag_id: Mapped[int]


class RunTag(Base):
    __table__ = tables.run_tag

    run_id: Mapped[int]
    tag_id: Mapped[int]


class PipelineTag(Base):
    __table__ = tables.pipeline_tag

    pipeline_id: Mapped[int]
    tag_id: Mapped[int]


class Metadata(Base):
    __table__ = tables.metadata_table

    id: Mapped[int]
    version_id: Mapped[int | None]
    run_id: Mapped[int | None]
    step_run_id: Mapped[int | None]
    key: Mapped[str]
    value: Mapped[dict[str, Any]]
    type: Mapped[str]


class GcLease(Base):
    __table__ = tables.gc_lease

    name: Mapped[str]
    holder: Mapped[str | None]
    acquired_at: Mapped[dt.datetime | None]
    heartbeat_at: Mapped[dt.datetime | None]
    expires_at: Mapped[dt.datetime | None]


class GcScan(Base):
    __table__ = tables.gc_scan

    store_id: Mapped[int]
    prefix: Mapped[str]
    listed_at: Mapped[dt.datetime]
