"""The queries the mount's tree is served from: children of a folder of the
tree (pipelines, runs, steps, outputs, artifacts, versions), one child by
name or by id, the newest live version, the manifest of versions, and what
changed since the last poll.

Only live versions are ever returned. Every function takes a ``Session``
(or its ``Connection``: the statements are Core, so the mount's hot path
skips the ORM); the caller frames the (read) transaction. Results are plain frozen records,
never ORM objects, so they cross threads freely and cost little.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from artifactfs.index.newest import newest_order
from artifactfs.index.models import (
    Artifact,
    ArtifactVersion,
    Metadata,
    Pipeline,
    PipelineRun,
    StepIO,
    StepRun,
    Store,
    Tag,
    VersionFile,
    VersionState,
    VersionTag,
)
from artifactfs.index.producers import INPUT, OUTPUT, producing_link, producing_links
from artifactfs.index.sql import chunks, is_live, utc
_CHUNK = 500  # ids per IN (...) clause


def timestamp_ns(value: dt.datetime | None) -> int:
    """Nanoseconds since the epoch; naive datetimes (SQLite) are UTC."""
    if value is None:
        return 0
    return int(utc(value).timestamp() * 1e9)


# -- records ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Named:
    """A pipeline, run, step or artifact: id, name, time, status (runs, steps)."""

    id: int
    name: str
    time_ns: int
    parent_id: int = 0
    status: str | None = None


@dataclass(frozen=True, slots=True)
class VersionRecord:
    """One live version with what the mount shows about it."""

    id: int
    uuid: str
    artifact_id: int
    artifact: str
    version: str
    store_id: int
    store: str
    uri: str
    payload_kind: str
    materializer: str | None
    data_type: str | None
    content_hash: str | None
    size: int
    file_count: int
    save_type: str
    created_ns: int
    links: int  # 1 + the number of step outputs that show this version


@dataclass(frozen=True, slots=True)
class OutputRecord:
    """A step's output (a step_io row) and the live version it shows."""

    id: int
    step_run_id: int
    name: str
    version: VersionRecord


@dataclass(frozen=True, slots=True)
class FileRecord:
    id: int
    version_id: int
    path: str
    size: int
    mode: int
    digest: str | None


@dataclass(frozen=True, slots=True)
class Producer:
    pipeline: str
    run: str
    step: str
    output: str
    step_run_uuid: str


# -- versions ---------------------------------------------------------------------------

_links = (
    select(func.count(StepIO.id))
    .where(StepIO.version_id == ArtifactVersion.id, StepIO.direction == OUTPUT)
    .correlate(ArtifactVersion)
    .scalar_subquery()
)

_VERSION_COLUMNS = (
    ArtifactVersion.id,
    ArtifactVersion.uuid,
    ArtifactVersion.artifact_id,
    Artifact.name,
    ArtifactVersion.version,
    ArtifactVersion.store_id,
    Store.name,
    ArtifactVersion.uri,
    ArtifactVersion.payload_kind,
    ArtifactVersion.materializer,
    ArtifactVersion.data_type,
    ArtifactVersion.content_hash,
    ArtifactVersion.size,
    ArtifactVersion.file_count,
    ArtifactVersion.save_type,
    ArtifactVersion.created_at,
    _links,
)


def _versions():
    return (
        select(*_VERSION_COLUMNS)
        .join(Artifact, Artifact.id == ArtifactVersion.artifact_id)
        .join(Store, Store.id == ArtifactVersion.store_id)
        .where(is_live())
    )


def _intern(text: str | None) -> str | None:
    return None if text is None else sys.intern(text)


def _version(row) -> VersionRecord:
    # Names shared by many versions (artifact, store, kinds) are interned: a
    # mount keeps 100k records in memory, each would otherwise hold its own copies.
    (vid, uuid, artifact_id, artifact, version, store_id, store, uri, payload_kind, materializer, data_type,
     content_hash, size, file_count, save_type, created, links) = row[: len(_VERSION_COLUMNS)]
    return VersionRecord(vid, uuid, artifact_id, _intern(artifact), version, store_id, _intern(store), uri,
                         _intern(payload_kind), _intern(materializer), _intern(data_type), content_hash, size,
                         file_count, _intern(save_type), timestamp_ns(created), 1 + (links or 0))


# Statements on the lookup path are built once (building one costs more
# than running it on SQLite); values come in as bound parameters.
_MANIFESTS = (
    select(VersionFile.id, VersionFile.version_id, VersionFile.path, VersionFile.size, VersionFile.mode,
           VersionFile.digest)
    .where(VersionFile.version_id.in_(bindparam("ids", expanding=True)))
    .order_by(VersionFile.version_id, VersionFile.path)
)
_FILE_OWNER = select(VersionFile.version_id).where(VersionFile.id == bindparam("id"))


_FIND_VERSION = _versions().where(ArtifactVersion.artifact_id == bindparam("artifact_id"),
                                  ArtifactVersion.version == bindparam("version"))
_GET_VERSION = _versions().where(ArtifactVersion.id == bindparam("id"))


def _with_files(session: Session, row, max_files: int) -> tuple[VersionRecord | None, list[FileRecord] | None]:
    """The record and, when it has at most ``max_files`` files, its manifest
    (what a lookup of a version folder is nearly always followed by)."""
    if row is None:
        return None, None
    record = _version(row)
    if record.file_count > max_files:
        return record, None
    return record, manifests(session, [record.id])[record.id]


def find_version_with_files(session: Session, artifact_id: int, version: str,
                            max_files: int) -> tuple[VersionRecord | None, list[FileRecord] | None]:
    """A live version by artifact and version string, and its manifest when small."""
    row = session.execute(_FIND_VERSION, {"artifact_id": artifact_id, "version": version}).first()
    return _with_files(session, row, max_files)


def get_version_with_files(session: Session, version_id: int,
                           max_files: int) -> tuple[VersionRecord | None, list[FileRecord] | None]:
    """A live version by id, and its manifest when small."""
    return _with_files(session, session.execute(_GET_VERSION, {"id": version_id}).first(), max_files)


def find_versions_like(session: Session, artifact_id: int, prefix: str) -> list[VersionRecord]:
    """Versions whose string starts with ``prefix`` (shortened long names)."""
    rows = session.execute(
        _versions().where(
            ArtifactVersion.artifact_id == artifact_id,
            func.substr(ArtifactVersion.version, 1, len(prefix)) == prefix,
        )
    )
    return [_version(r) for r in rows]


def list_versions(session: Session, artifact_id: int) -> list[VersionRecord]:
    rows = session.execute(_versions().where(ArtifactVersion.artifact_id == artifact_id).order_by(ArtifactVersion.id))
    return [_version(r) for r in rows]


def newest_version(session: Session, artifact_id: int) -> VersionRecord | None:
    row = session.execute(
        _versions().where(ArtifactVersion.artifact_id == artifact_id).order_by(*newest_order()).limit(1)
    ).first()
    return _version(row) if row else None




# -- manifests ----------------------------------------------------------------------------


def manifests(session: Session, version_ids: Iterable[int]) -> dict[int, list[FileRecord]]:
    """The manifest of each version (files sorted by path)."""
    ids = list(version_ids)
    found: dict[int, list[FileRecord]] = {vid: [] for vid in ids}
    for chunk in _chunks(ids):
        for row in session.execute(_MANIFESTS, {"ids": list(chunk)}):
            found[row[1]].append(FileRecord(*row))
    return found


def file_owner(session: Session, file_id: int) -> int | None:
    """The version a manifest row belongs to."""
    return session.scalar(_FILE_OWNER, {"id": file_id})


# -- artifacts --------------------------------------------------------------------------------

_has_live = (
    select(ArtifactVersion.id)
    .where(ArtifactVersion.artifact_id == Artifact.id, is_live())
    .correlate(Artifact)
    .exists()
)


def _artifact(row) -> Named:
    return Named(row[0], row[1], timestamp_ns(row[2]))


def list_artifacts(session: Session) -> list[Named]:
    """Artifacts with at least one live version."""
    rows = session.execute(select(Artifact.id, Artifact.name, Artifact.created_at).where(_has_live).order_by(Artifact.id))
    return [_artifact(r) for r in rows]


_FIND_ARTIFACT = select(Artifact.id, Artifact.name, Artifact.created_at).where(Artifact.name == bindparam("name"),
                                                                               _has_live)
_GET_ARTIFACT = select(Artifact.id, Artifact.name, Artifact.created_at).where(Artifact.id == bindparam("id"), _has_live)


def find_artifact(session: Session, name: str) -> Named | None:
    row = session.execute(_FIND_ARTIFACT, {"name": name}).first()
    return _artifact(row) if row else None


def find_artifacts_like(session: Session, prefix: str) -> list[Named]:
    rows = session.execute(
        select(Artifact.id, Artifact.name, Artifact.created_at).where(
            func.substr(Artifact.name, 1, len(prefix)) == prefix, _has_live
        )
    )
    return [_artifact(r) for r in rows]


def get_artifact(session: Session, artifact_id: int) -> Named | None:
    row = session.execute(_GET_ARTIFACT, {"id": artifact_id}).first()
    return _artifact(row) if row else None


# -- pipelines, runs, steps -------------------------------------------------------------------------


def list_pipelines(session: Session) -> list[Named]:
    rows = session.execute(select(Pipeline.id, Pipeline.name, Pipeline.created_at).order_by(Pipeline.id))
    return [Named(i, n, timestamp_ns(t)) for i, n, t in rows]


def find_pipeline(session: Session, name: str) -> Named | None:
    row = session.execute(select(Pipeline.id, Pipeline.name, Pipeline.created_at).where(Pipeline.name == name)).first()
    return Named(row[0], row[1], timestamp_ns(row[2])) if row else None


def get_pipeline(session: Session, pipeline_id: int) -> Named | None:
    row = session.execute(
        select(Pipeline.id, Pipeline.name, Pipeline.created_at).where(Pipeline.id == pipeline_id)
    ).first()
    return Named(row[0], row[1], timestamp_ns(row[2])) if row else None


_RUN = (PipelineRun.id, PipelineRun.name, PipelineRun.start_time, PipelineRun.pipeline_id, PipelineRun.status)
_STEP = (StepRun.id, StepRun.name, StepRun.start_time, StepRun.run_id, StepRun.status)


def _timed(row) -> Named:
    return Named(row[0], row[1], timestamp_ns(row[2]), row[3], row[4])


def list_runs(session: Session, pipeline_id: int) -> list[Named]:
    rows = session.execute(select(*_RUN).where(PipelineRun.pipeline_id == pipeline_id).order_by(PipelineRun.id))
    return [_timed(r) for r in rows]


def find_run(session: Session, pipeline_id: int, name: str) -> Named | None:
    row = session.execute(select(*_RUN).where(PipelineRun.pipeline_id == pipeline_id, PipelineRun.name == name)).first()
    return _timed(row) if row else None


def get_run(session: Session, run_id: int) -> Named | None:
    row = session.execute(select(*_RUN).where(PipelineRun.id == run_id)).first()
    return _timed(row) if row else None


def list_steps(session: Session, run_id: int) -> list[Named]:
    rows = session.execute(select(*_STEP).where(StepRun.run_id == run_id).order_by(StepRun.id))
    return [_timed(r) for r in rows]


def find_step(session: Session, run_id: int, name: str) -> Named | None:
    row = session.execute(select(*_STEP).where(StepRun.run_id == run_id, StepRun.name == name)).first()
    return _timed(row) if row else None


def get_step(session: Session, step_run_id: int) -> Named | None:
    row = session.execute(select(*_STEP).where(StepRun.id == step_run_id)).first()
    return _timed(row) if row else None


def _outputs():
    return (
        select(StepIO.id, StepIO.step_run_id, StepIO.name, *_VERSION_COLUMNS)
        .join(ArtifactVersion, ArtifactVersion.id == StepIO.version_id)
        .join(Artifact, Artifact.id == ArtifactVersion.artifact_id)
        .join(Store, Store.id == ArtifactVersion.store_id)
        .where(StepIO.direction == OUTPUT, is_live())
    )


def _output(row) -> OutputRecord:
    return OutputRecord(row[0], row[1], row[2], _version(row[3:]))


def list_outputs(session: Session, step_run_id: int) -> list[OutputRecord]:
    """A step's outputs, one per name: a name linked several times (a step
    that saved it more than once) shows its latest live version."""
    rows = session.execute(_outputs().where(StepIO.step_run_id == step_run_id).order_by(StepIO.id))
    latest = {record.name: record for record in map(_output, rows)}
    return sorted(latest.values(), key=lambda record: record.id)




def get_output(session: Session, step_io_id: int) -> OutputRecord | None:
    row = session.execute(_outputs().where(StepIO.id == step_io_id)).first()
    return _output(row) if row else None


def outputs_showing(session: Session, version_ids: Iterable[int]) -> list[tuple[int, int, str, int]]:
    """``(step_io id, step_run id, output name, version id)`` of every step
    output that shows one of the versions, whatever its state."""
    found = []
    for chunk in _chunks(version_ids):
        query = select(StepIO.id, StepIO.step_run_id, StepIO.name, StepIO.version_id).where(
            StepIO.version_id.in_(chunk), StepIO.direction == OUTPUT
        )
        found.extend(tuple(r) for r in session.execute(query))
    return found


# -- lineage --------------------------------------------------------------------------------


def producer(session: Session, version_id: int) -> Producer | None:
    """The step run that produced the version (``index.producers``)."""
    row = session.execute(
        select(Pipeline.name, PipelineRun.name, StepRun.name, StepIO.name, StepRun.uuid)
        .join(StepRun, StepRun.id == StepIO.step_run_id)
        .join(PipelineRun, PipelineRun.id == StepRun.run_id)
        .join(Pipeline, Pipeline.id == PipelineRun.pipeline_id)
        .where(StepIO.id == producing_link(version_id))
    ).first()
    return Producer(*row) if row else None




def documents(session: Session, version_ids: Iterable[int]) -> dict[int, dict]:
    """What the JSON document of each version adds to its record, in a few
    queries for the whole batch: tags, metadata, the step outputs that show
    it (the producer's, ``index.producers``, also with the inputs that step read), and the
    step runs that consumed it."""
    ids = list(version_ids)
    docs: dict[int, dict] = {vid: {"tags": [], "metadata": {}, "outputs": [], "consumers": []} for vid in ids}
    producers: dict[str, list[int]] = {}
    for chunk in _chunks(ids):
        for vid, tag in session.execute(
            select(VersionTag.version_id, Tag.name).join(Tag, Tag.id == VersionTag.tag_id)
            .where(VersionTag.version_id.in_(chunk)).order_by(Tag.name)
        ):
            docs[vid]["tags"].append(tag)
        for vid, key, value, kind in session.execute(
            select(Metadata.version_id, Metadata.key, Metadata.value, Metadata.type)
            .where(Metadata.version_id.in_(chunk)).order_by(Metadata.id)
        ):
            stored = (value or {}).get("v")
            docs[vid]["metadata"][key] = float(stored) if kind == "float" and isinstance(stored, str) else stored
        producing = producing_links(chunk)
        for vid, direction, pipeline, run, step, name, step_uuid, produced in session.execute(
            select(StepIO.version_id, StepIO.direction, Pipeline.name, PipelineRun.name, StepRun.name, StepIO.name,
                   StepRun.uuid, StepIO.id.in_(producing))
            .join(StepRun, StepRun.id == StepIO.step_run_id)
            .join(PipelineRun, PipelineRun.id == StepRun.run_id)
            .join(Pipeline, Pipeline.id == PipelineRun.pipeline_id)
            .where(StepIO.version_id.in_(chunk)).order_by(StepIO.id)
        ):
            link = {"pipeline": pipeline, "run": run, "step": step, "name": name, "step_run_id": step_uuid}
            if direction == OUTPUT:
                docs[vid]["outputs"].append(link)
                if produced:
                    docs[vid]["producer"] = link
                    producers.setdefault(step_uuid, []).append(vid)
            else:
                docs[vid]["consumers"].append(link)
    if producers:
        inputs: dict[str, list[dict]] = {u: [] for u in producers}
        for chunk in _chunks(list(producers)):
            for step_uuid, name, artifact, version, uuid in session.execute(
                select(StepRun.uuid, StepIO.name, Artifact.name, ArtifactVersion.version, ArtifactVersion.uuid)
                .join(StepRun, StepRun.id == StepIO.step_run_id)
                .join(ArtifactVersion, ArtifactVersion.id == StepIO.version_id)
                .join(Artifact, Artifact.id == ArtifactVersion.artifact_id)
                .where(StepRun.uuid.in_(chunk), StepIO.direction == INPUT).order_by(StepIO.id)
            ):
                inputs[step_uuid].append({"name": name, "artifact": artifact, "version": version, "id": uuid})
        for step_uuid, vids in producers.items():
            for vid in vids:
                docs[vid]["producer_inputs"] = inputs[step_uuid]
    return docs


def version_names(session: Session, version_ids: Iterable[int]) -> dict[int, tuple[int, str]]:
    """``{version id: (artifact id, version string)}`` whatever the state."""
    found = {}
    for chunk in _chunks(version_ids):
        query = select(ArtifactVersion.id, ArtifactVersion.artifact_id, ArtifactVersion.version).where(
            ArtifactVersion.id.in_(chunk))
        found.update({vid: (aid, version) for vid, aid, version in session.execute(query)})
    return found


# -- changes ----------------------------------------------------------------------------------


_CONDEMNED = select(ArtifactVersion.id).where(
    ArtifactVersion.state.in_([VersionState.CONDEMNED.value, VersionState.LOST.value]))


def not_live_ids(session: Session) -> set[int]:
    """Ids of versions that exist but are not live (condemned, or lost with
    a removed store; equalities, so the state index answers it without
    reading every version)."""
    return set(session.scalars(_CONDEMNED))


def newest_ids_since(session: Session, after_id: int) -> dict[int, int]:
    """``{artifact id: newest live version id}`` for artifacts that gained a
    version with an id above ``after_id``."""
    rows = session.execute(
        select(ArtifactVersion.artifact_id, func.max(ArtifactVersion.id))
        .where(ArtifactVersion.id > after_id, is_live())
        .group_by(ArtifactVersion.artifact_id)
    )
    return dict(rows.all())


def max_version_id(session: Session) -> int:
    return session.scalar(select(func.max(ArtifactVersion.id))) or 0


def version_uuid(session: Session, version_id: int) -> str | None:
    """The uuid of the version with row id ``version_id`` (None: no such row)."""
    return session.scalar(select(ArtifactVersion.uuid).where(ArtifactVersion.id == version_id))


_USAGE = select(func.coalesce(func.sum(ArtifactVersion.size), 0),
                func.coalesce(func.sum(ArtifactVersion.file_count), 0)).where(is_live())


def live_usage(session: Session) -> tuple[int, int]:
    """``(bytes, files)`` of every live version's payload."""
    size, files = session.execute(_USAGE).one()
    return int(size), int(files)




def _chunks(ids: Iterable[int]) -> Iterable[Sequence[int]]:
    return chunks(ids, _CHUNK)
