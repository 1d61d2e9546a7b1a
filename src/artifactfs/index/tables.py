"""The tables of the lineage index, declared once, in SQLAlchemy Core.

This module owns the schema: every column, type, default, key, constraint
and index. It imports no ``sqlalchemy.orm`` (a third of a cold start), so a
command that only reads rows (``artifactfs artifact list``) selects from
these tables without loading the ORM. ``index.models`` maps its ORM classes
onto them (``__table__``), for the rest of the code; its ``Mapped[...]``
annotations only type the attributes, and tests/test_index_tables.py checks
that they name these columns with these types and nullability.

Every schema change here comes with a migration in ``migrations/versions``.
"""

from __future__ import annotations

import uuid

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
)

from artifactfs.enums import LIVE, ArtifactType, PayloadKind, RunStatus
from artifactfs.index.clock import index_now

metadata = MetaData()

#: Every time a column stores is aware UTC.
TIME = DateTime(timezone=True)
#: Integers are 64-bit; SQLite only autoincrements an "INTEGER PRIMARY KEY".
INT = BigInteger().with_variant(Integer(), "sqlite")
#: A string column without a smaller limit of its own.
TEXT = String(1024)
# sqlite_autoincrement=True: integer primary keys come from AUTOINCREMENT
# sequences and are never reused (the mount turns them into inode numbers;
# users see the uuid columns).


def new_uuid() -> str:
    """A fresh version 4 uuid, as text (the default of every ``uuid`` column)."""
    return str(uuid.uuid4())


def _id() -> Column:
    return Column("id", INT, primary_key=True)


def _uuid() -> Column:
    return Column("uuid", String(36), nullable=False, unique=True, default=new_uuid)


def _created_at(name: str = "created_at") -> Column:
    """A time written by the index's clock (``index.clock``) when the row is inserted."""
    return Column(name, TIME, nullable=False, default=index_now())


#: A named store: flavor, root URI and the options that are not secret.
store = Table(
    "store", metadata,
    _id(),
    Column("name", String(255), nullable=False, unique=True),
    Column("flavor", String(64), nullable=False),
    Column("root_uri", TEXT, nullable=False),
    Column("options", JSON, nullable=False, default=dict),
    _created_at(),
    # The machine a local store belongs to (migration 0004; see index.hosts);
    # NULL: a remote store, or a local one recorded before owners were.
    Column("host_id", String(64)),
    # Removed with --force while versions were recorded in it (migration
    # 0006_team): the row stays, renamed "<name>~<id>", for those lost versions.
    Column("removed_at", TIME),
)

#: One row: the generation counter that every commit bumps, so readers
#: (the mount) can poll one integer to learn that something changed.
index_state = Table(
    "index_state", metadata,
    _id(),
    Column("generation", INT, nullable=False, default=0),
    # This index's identity (migration 0004), written into the marker of
    # every store root it owns.
    Column("index_uuid", String(36)),
    # SQLite: the latest time any writer has seen (migration 0008; ``index.clock``).
    Column("clock_mark", TIME),
)

#: A save in flight (migration 0004): recorded before the first byte of its
#: payload folder is written, deleted by the transaction that commits the
#: version. Its folder is ``stores.layout.payload_folder(name, uuid)``, so it
#: names the version's uuid: a payload with an intent is a save in flight (or
#: a crashed one), a payload with neither row nor intent is not.
#: ``started_at`` comes from the index's clock (``index.clock``), so hosts
#: with skewed clocks agree on its age. It holds the saves in flight and the
#: crashed ones the pruner has not cleared: a few rows, read by scanning.
#: Every save inserts and deletes one row, so it has no secondary index and,
#: on SQLite, no rowid (migration 0013): one page each time instead of three.
write_intent = Table(
    "write_intent", metadata,
    Column("uuid", String(36), primary_key=True),
    Column("store_id", INT, ForeignKey("store.id", ondelete="CASCADE"), nullable=False),
    Column("folder", String(2048), nullable=False),  # relative to the store root
    Column("holder", String(255)),
    Column("started_at", TIME, nullable=False, default=index_now(), server_default=func.now()),
    # The version the save will commit (migration 0009): numbered with the
    # intent, so the manifest file beside the payload is written once. NULL
    # for a payload that is not a new version (``migrate``'s copies).
    Column("artifact_id", INT),
    Column("version", String(255)),
    Column("version_number", INT),
    sqlite_with_rowid=False,
)

# -- lineage ------------------------------------------------------------------


def _named(table: str) -> Table:
    """A thing known by a unique name (a pipeline, an artifact)."""
    return Table(
        table, metadata,
        _id(),
        Column("name", String(255), nullable=False, unique=True),
        _created_at(),
        sqlite_autoincrement=True,
    )


pipeline = _named("pipeline")

pipeline_run = Table(
    "pipeline_run", metadata,
    _id(),
    _uuid(),
    Column("pipeline_id", INT, ForeignKey("pipeline.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(255), nullable=False, unique=True),
    Column("status", String(16), nullable=False, default=RunStatus.RUNNING.value),
    Column("parameters", JSON, nullable=False, default=dict),
    Column("config", JSON),  # migration 0010: substitutions, enable_cache
    _created_at("start_time"),
    Column("end_time", TIME),
    # Migration 0011: the process running it (index.holders) and when it last
    # said it still runs (the index's clock); index.liveness tells a crashed run.
    Column("holder", String(255)),
    Column("heartbeat_at", TIME),
    Index("ix_pipeline_run_pipeline", "pipeline_id", "name"),
    Index("ix_pipeline_run_newest", "pipeline_id", "id"),  # migration 0005
    Index("ix_pipeline_run_status", "status"),  # migration 0011: the running runs, to tell the crashed
    sqlite_autoincrement=True,
)

step_run = Table(
    "step_run", metadata,
    _id(),
    _uuid(),
    Column("run_id", INT, ForeignKey("pipeline_run.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("status", String(16), nullable=False, default=RunStatus.RUNNING.value),
    Column("code_hash", String(64)),
    Column("cache_key", String(64)),
    Column("parameters", JSON, nullable=False, default=dict),
    Column("original_step_run_id", INT, ForeignKey("step_run.id", ondelete="SET NULL")),
    _created_at("start_time"),
    Column("end_time", TIME),
    UniqueConstraint("run_id", "name"),
    Index("ix_step_run_cache_key", "cache_key", "status"),
    sqlite_autoincrement=True,
)

#: What a step run wrote while it ran (migration 0011): its stdout, stderr
#: and logging records, bounded (``pipelines.logs``).
step_log = Table(
    "step_log", metadata,
    Column("step_run_id", INT, ForeignKey("step_run.id", ondelete="CASCADE"), primary_key=True),
    Column("text", Text, nullable=False),  # what was kept: the head, a line saying what was cut, the tail
    Column("total_chars", INT, nullable=False),  # characters written in all
    Column("cut_chars", INT, nullable=False, default=0),  # characters left out of ``text``
)

artifact = _named("artifact")

artifact_version = Table(
    "artifact_version", metadata,
    _id(),
    _uuid(),
    Column("artifact_id", INT, ForeignKey("artifact.id", ondelete="CASCADE"), nullable=False),
    Column("version", String(255), nullable=False),
    Column("version_number", INT),
    Column("store_id", INT, ForeignKey("store.id"), nullable=False),
    Column("uri", String(2048), nullable=False, unique=True),
    Column("payload_kind", String(16), nullable=False, default=PayloadKind.FOLDER.value),
    Column("materializer", String(512)),
    Column("data_type", String(512)),
    Column("content_hash", String(64)),
    # Of content_hash and every manifest digest (migration 0004; older rows: sha256).
    Column("hash_algorithm", String(16), nullable=False, server_default="sha256"),
    Column("artifact_type", String(32), nullable=False, default=ArtifactType.DATA.value,
           server_default=ArtifactType.DATA.value),
    Column("size", INT, nullable=False, default=0),
    Column("file_count", INT, nullable=False, default=0),
    Column("state", String(16), nullable=False, default=LIVE),
    Column("save_type", String(16), nullable=False),
    Column("visualizations", JSON, nullable=False, default=list),
    _created_at(),
    Column("condemned_at", TIME),
    Column("swept_at", TIME),  # payload deleted by the pruner (migration 0003)
    UniqueConstraint("artifact_id", "version"),
    Index("ix_version_newest", "artifact_id", "state", "id"),
    Index("ix_version_number", "artifact_id", "version_number"),
    Index("ix_version_state", "state", "created_at"),
    sqlite_autoincrement=True,
)

#: The manifest: one row per payload file of a version.
version_file = Table(
    "version_file", metadata,
    _id(),
    Column("version_id", INT, ForeignKey("artifact_version.id", ondelete="CASCADE"), nullable=False),
    Column("path", String(4096), nullable=False),
    Column("size", INT, nullable=False),
    Column("mode", Integer, nullable=False),
    Column("digest", String(64)),  # hex, algorithm: the version's hash_algorithm
    UniqueConstraint("version_id", "path"),
    sqlite_autoincrement=True,
)

#: A step run read (input) or wrote (output) a version under a name; several
#: versions may share a name (a step that saves ``manual`` three times:
#: ZenML's outputs are lists).
step_io = Table(
    "step_io", metadata,
    _id(),
    Column("step_run_id", INT, ForeignKey("step_run.id", ondelete="CASCADE"), nullable=False),
    Column("version_id", INT, ForeignKey("artifact_version.id", ondelete="RESTRICT"), nullable=False),
    Column("direction", String(8), nullable=False),  # "input" | "output"
    Column("name", String(255), nullable=False),
    UniqueConstraint("step_run_id", "direction", "name", "version_id", name="uq_step_io_link"),
    Index("ix_step_io_version", "version_id"),
    sqlite_autoincrement=True,
)

tag = Table(
    "tag", metadata,
    _id(),
    Column("name", String(255), nullable=False, unique=True),
    # held by one version of an artifact / one run of a pipeline at a time (ZenML's; migration 0012)
    Column("exclusive", Boolean, nullable=False, default=False, server_default=false()),
    sqlite_autoincrement=True,
)


def _tag_link(table: str, owner: str, owner_column: str, *extra) -> Table:
    """A tag on one kind of thing: the pair (owner, tag) is the key."""
    return Table(
        table, metadata,
        Column(owner_column, INT, ForeignKey(f"{owner}.id", ondelete="CASCADE"), primary_key=True),
        Column("tag_id", INT, ForeignKey("tag.id", ondelete="CASCADE"), primary_key=True, index=True),
        *extra,
    )


# Migration 0005: a tag's versions, newest first, one keyset page at a time.
version_tag = _tag_link("version_tag", "artifact_version", "version_id",
                        Index("ix_version_tag_newest", "tag_id", "version_id"))
#: A tag on an artifact as a whole (ZenML's artifact tags; migration 0004).
artifact_tag = _tag_link("artifact_tag", "artifact", "artifact_id")
#: A tag on a pipeline run (migration 0012).
run_tag = _tag_link("run_tag", "pipeline_run", "run_id")
#: A tag on a pipeline (migration 0012).
pipeline_tag = _tag_link("pipeline_tag", "pipeline", "pipeline_id")

#: A typed key/value on a version, a run or a step run.
metadata_table = Table(
    "metadata", metadata,
    _id(),
    Column("version_id", INT, ForeignKey("artifact_version.id", ondelete="CASCADE")),
    Column("run_id", INT, ForeignKey("pipeline_run.id", ondelete="CASCADE")),
    Column("step_run_id", INT, ForeignKey("step_run.id", ondelete="CASCADE")),
    Column("key", String(255), nullable=False),
    Column("value", JSON, nullable=False),  # {"v": value} keeps any JSON value, null included
    Column("type", String(32), nullable=False),
    Index("ix_metadata_version", "version_id"),
    # Partial (migration 0013, on SQLite and PostgreSQL alike): a version's rows,
    # which every save writes, go into neither; a query comparing the column (=,
    # IN, a join) implies IS NOT NULL. Said here for SQLite only: a
    # ``postgresql_where`` would import PostgreSQL's dialect into every command.
    Index("ix_metadata_run", "run_id", sqlite_where=text("run_id IS NOT NULL")),
    Index("ix_metadata_step_run", "step_run_id", sqlite_where=text("step_run_id IS NOT NULL")),
    Index("ix_metadata_key", "key", "version_id"),  # migration 0005: search by key=value
    sqlite_autoincrement=True,
)

#: The pruner's lease (migration 0003): one row per lease name; the holder
#: renews ``expires_at`` while it works, and another pruner may take the
#: lease only once it has expired (or its holder died on this host).
gc_lease = Table(
    "gc_lease", metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(255)),
    Column("acquired_at", TIME),
    Column("heartbeat_at", TIME),
    Column("expires_at", TIME),
)

#: When the pruner last listed one artifact-name folder of a store for
#: orphan payloads (migration 0006): a pass over a large remote store lists
#: a bounded number of them, those listed longest ago first.
gc_scan = Table(
    "gc_scan", metadata,
    Column("store_id", INT, ForeignKey("store.id", ondelete="CASCADE"), primary_key=True),
    Column("prefix", String(1024), primary_key=True),  # the name folder, relative to the root
    Column("listed_at", TIME, nullable=False),
)
