"""The index side of the store's journal: gathers, from the index, all it
knows of a version (its row, files, tags, metadata, and the step runs and
runs that wrote or read it) for the one record builder
(``stores.manifest.journal_record``), and rewrites the manifest files of
versions whose tags, metadata or links changed (:func:`rewrite_journals`).

A rewrite reads the index and writes the files while it holds the
versions' rows (``FOR UPDATE`` on PostgreSQL; SQLite's write transaction is
exclusive), so two processes changing one version write its file in the
order of their changes and the last file written holds both changes.
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from artifactfs.errors import PathEscapeError
from artifactfs.index.db import Index
from artifactfs.index.generation import bump_generation
from artifactfs.index.models import (
    Artifact,
    ArtifactVersion,
    Metadata,
    Pipeline,
    PipelineRun,
    StepIO,
    StepRun,
    Tag,
    VersionFile,
    VersionTag,
)
from artifactfs.index.pipelines import get_or_create_pipeline
from artifactfs.index.sql import is_live
from artifactfs.stores.base import ArtifactStore
from artifactfs.stores.manifest import (
    REGISTERED_JOURNAL,
    JournalError,
    ManifestEntry,
    journal_folder,
    journal_record,
    link_record,
    read_manifest_file,
    run_record,
    step_record,
    write_manifest_file,
)

CHUNK = 500
OUTPUT, INPUT = "output", "input"


@dataclass
class Gathered:
    """What the index holds of one version, for its manifest file."""

    row: ArtifactVersion
    name: str
    files: list[ManifestEntry] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    metadata: list[tuple[str, Any, str]] = field(default_factory=list)
    producers: list[dict] = field(default_factory=list)
    consumers: list[dict] = field(default_factory=list)

    def record(self, store: ArtifactStore, uri: str | None = None) -> dict[str, Any]:
        """The manifest file's record (``stores.manifest.journal_record``);
        ``uri``: where the payload is going (a migration), if not its row's."""
        uri = uri or self.row.uri
        folder = journal_folder(store, uri, self.row.uuid)
        in_place = store.relpath(uri) if folder.startswith(REGISTERED_JOURNAL + "/") else None
        return journal_record(self.row, self.name, self.row.version, self.row.created_at, in_place=in_place,
                              tags=self.tags, metadata=self.metadata, producers=self.producers,
                              consumers=self.consumers)


def _metadata_rows(session: Session, column, ids: list[int]) -> dict[int, list[tuple[str, Any, str]]]:
    found: dict[int, list[tuple[str, Any, str]]] = {}
    if ids:
        for owner, key, value, kind in session.execute(
                select(column, Metadata.key, Metadata.value, Metadata.type).where(column.in_(ids))
                .order_by(Metadata.id)):
            found.setdefault(owner, []).append((key, value, kind))
    return found


def step_records(session: Session, step_run_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """``{step run id: stores.manifest.step_record}`` with its run's record."""
    ids = sorted(set(step_run_ids))
    if not ids:
        return {}
    steps = list(session.execute(
        select(StepRun, PipelineRun, Pipeline.name)
        .join(PipelineRun, PipelineRun.id == StepRun.run_id).join(Pipeline, Pipeline.id == PipelineRun.pipeline_id)
        .where(StepRun.id.in_(ids))).all())
    originals = {s.original_step_run_id for s, _, _ in steps if s.original_step_run_id}
    original_uuids = dict(session.execute(select(StepRun.id, StepRun.uuid).where(StepRun.id.in_(originals))).all()) \
        if originals else {}
    step_meta = _metadata_rows(session, Metadata.step_run_id, ids)
    run_meta = _metadata_rows(session, Metadata.run_id, sorted({r.id for _, r, _ in steps}))
    found = {}
    for step, run, pipeline in steps:
        run_doc = run_record(run.uuid, run.name, pipeline, run.status, parameters=run.parameters,
                             start_time=run.start_time, end_time=run.end_time, seq=run.id,
                             metadata=run_meta.get(run.id, []))
        found[step.id] = step_record(step.uuid, step.name, step.status, code_hash=step.code_hash,
                                     cache_key=step.cache_key, parameters=step.parameters,
                                     start_time=step.start_time, end_time=step.end_time,
                                     original=original_uuids.get(step.original_step_run_id or 0), seq=step.id,
                                     metadata=step_meta.get(step.id, []), run=run_doc)
    return found


def gather(session: Session, version_ids: Iterable[int], lock_live: bool = False) -> dict[int, Gathered]:
    """Everything the index holds of these versions, a few queries per 500.
    ``lock_live``: only the live ones, their rows locked (in id order) by the
    query that reads them (:func:`rewrite_journals`)."""
    result: dict[int, Gathered] = {}
    ids = sorted(set(version_ids))
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        query = (select(ArtifactVersion, Artifact.name).join(Artifact, Artifact.id == ArtifactVersion.artifact_id)
                 .where(ArtifactVersion.id.in_(chunk)))
        if lock_live:
            query = query.where(is_live()).order_by(ArtifactVersion.id).with_for_update(of=ArtifactVersion)
        for row, name in session.execute(query):
            result[row.id] = Gathered(row, name)
        chunk = [i for i in chunk if i in result]
        for f in session.scalars(select(VersionFile).where(VersionFile.version_id.in_(chunk))
                                 .order_by(VersionFile.version_id, VersionFile.path)):
            result[f.version_id].files.append(ManifestEntry(f.path, f.size, f.mode, f.digest or ""))
        for vid, tag in session.execute(select(VersionTag.version_id, Tag.name).join(Tag, Tag.id == VersionTag.tag_id)
                                        .where(VersionTag.version_id.in_(chunk))):
            result[vid].tags.append(tag)
        for vid, rows in _metadata_rows(session, Metadata.version_id, chunk).items():
            result[vid].metadata = rows
        links = list(session.execute(select(StepIO).where(StepIO.version_id.in_(chunk)).order_by(StepIO.id)).scalars())
        steps = step_records(session, [link.step_run_id for link in links])
        for link in links:
            if link.step_run_id not in steps:
                # Its run was deleted between the two reads (on PostgreSQL each
                # statement sees what was committed before it): a link going away,
                # whose deleter rewrites this journal after us, under the same row locks.
                continue
            target = result[link.version_id].producers if link.direction == OUTPUT else result[link.version_id].consumers
            target.append(link_record(link.name, steps[link.step_run_id], link.id))
    return result


def versions_linked(session: Session, step_run_ids: Iterable[int] = (), run_ids: Iterable[int] = ()) -> list[int]:
    """Ids of the versions linked to these step runs, or to any step run of these runs."""
    steps = list(step_run_ids)
    runs = list(run_ids)
    query = select(StepIO.version_id).distinct()
    if runs:
        query = query.join(StepRun, StepRun.id == StepIO.step_run_id).where(
            StepRun.run_id.in_(runs) | StepIO.step_run_id.in_(steps))
    elif steps:
        query = query.where(StepIO.step_run_id.in_(steps))
    else:
        return []
    return sorted(session.scalars(query))


def rewrite_journals(index: Index, version_ids: Iterable[int],
                     open_store: Callable[[int], ArtifactStore | None]) -> list[str]:
    """Rewrite the manifest files of the live versions of ``version_ids``
    from the index (after their tags, metadata or links changed). A file
    that cannot be written is a problem returned (and warned about), never
    an error: the change itself is committed, and ``fsck`` finds the file
    out of date and ``fsck --repair`` rewrites it. ``open_store(store id)``:
    the opened store, or None when it cannot be reached from here."""
    problems: list[str] = []
    ids = sorted(set(version_ids))
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        opened = _open_stores(index, chunk, open_store)  # before the write: one connection at a time
        with index.write(durable=False) as session:
            for gathered in gather(session, chunk, lock_live=True).values():
                problem = write_journal(gathered, opened.get)
                if problem:
                    problems.append(problem)
    for problem in problems:
        warnings.warn(problem, stacklevel=3)
    return problems


def _open_stores(index: Index, version_ids: list[int],
                 open_store: Callable[[int], ArtifactStore | None]) -> dict[int, ArtifactStore | None]:
    """The stores of these versions, opened (opening may read the index, so
    never inside the write transaction that holds the versions' rows)."""
    with index.read() as session:
        store_ids = set(session.scalars(select(ArtifactVersion.store_id).where(ArtifactVersion.id.in_(version_ids))))
    opened: dict[int, ArtifactStore | None] = {}
    for store_id in store_ids:
        try:
            opened[store_id] = open_store(store_id)
        except Exception:  # noqa: BLE001 - a store that cannot be opened is reported per version
            opened[store_id] = None
    return opened


def write_journal(gathered: Gathered, open_store: Callable[[int], ArtifactStore | None]) -> str | None:
    """Write one version's manifest file; the problem when it cannot be."""
    label = f"{gathered.name}:{gathered.row.version}"
    try:
        store = open_store(gathered.row.store_id)
        if store is None:
            return f"the manifest file of {label} was not updated: its store cannot be reached from here"
        write_manifest_file(store, journal_folder(store, gathered.row.uri, gathered.row.uuid), gathered.files,
                            gathered.record(store))
    except Exception as exc:  # noqa: BLE001 - any flavor error: the index change stands
        return (f"the manifest file of {label} could not be updated ({type(exc).__name__}); "
                "`artifactfs fsck --repair` rewrites it")
    return None




# -- rebuilding the index from the journal (``fsck --adopt``) ---------------------------------


def restore_metadata(session: Session, rows: Iterable, **owner: int) -> None:
    """Metadata rows ``[key, stored value, type]`` as a manifest file keeps
    them, inserted as they were (types and order kept)."""
    values = []
    for item in rows:
        key, value, kind = item
        if isinstance(key, str) and isinstance(value, dict) and isinstance(kind, str):
            values.append({"key": key, "value": value, "type": kind, **owner})
    if values:
        session.execute(insert(Metadata), values)


@dataclass
class Restored:
    runs: int = 0
    steps: int = 0
    links: int = 0
    problems: list[str] = field(default_factory=list)


def _finality(record: dict[str, Any]) -> tuple:
    """Of two copies of one step run's record (manifest files written at
    different times), the later one: a finished run, an end time, an id."""
    run = record.get("run") or {}
    return (run.get("status") not in (None, "running"), run.get("end_time") is not None,
            record.get("end_time") is not None, record.get("seq") is not None)


def _order(record: dict[str, Any]) -> tuple:
    seq = record.get("seq")
    return (seq is None, seq if isinstance(seq, int) else 0, str(record.get("start_time") or ""))


def _time(text: Any) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text) if isinstance(text, str) and text else None


def restore_lineage(session: Session, links: list[tuple[str, str, dict[str, Any]]]) -> Restored:
    """Recreate the pipelines, runs, step runs and links named by
    ``(version uuid, direction, link record)`` triples of adopted versions,
    in the order they were first made; what exists already (by uuid) is
    used as it is. Returns counts and what could not be rebuilt."""
    done = Restored()
    steps: dict[str, dict[str, Any]] = {}
    for _, _, link in links:
        step = link.get("step") if isinstance(link, dict) else None
        if not isinstance(step, dict) or not isinstance(step.get("uuid"), str) or not isinstance(step.get("run"), dict):
            done.problems.append(f"a link without a readable step run record: {str(link)[:120]}")
            continue
        known = steps.get(step["uuid"])
        if known is None or _finality(step) > _finality(known):
            steps[step["uuid"]] = step
    runs: dict[str, dict[str, Any]] = {}
    for step in steps.values():
        run = step["run"]
        known = runs.get(run.get("uuid"))
        if known is None or _finality({"run": run}) > _finality({"run": known}):
            runs[run.get("uuid")] = run
    run_ids = dict(session.execute(select(PipelineRun.uuid, PipelineRun.id)
                                   .where(PipelineRun.uuid.in_([u for u in runs if u]))).all()) if runs else {}
    taken = set(session.scalars(select(PipelineRun.name).where(
        PipelineRun.name.in_([str(r.get("name")) for r in runs.values()])))) if runs else set()
    pipelines: dict[str, int] = {}
    new_runs: list[tuple[PipelineRun, dict[str, Any]]] = []
    for run_uuid, run in sorted(runs.items(), key=lambda item: _order(item[1])):
        if run_uuid in run_ids:
            continue
        try:
            if run["name"] in taken:
                done.problems.append(f"run {run['name']!r}: another run of that name exists; its steps are not linked")
                continue
            if run["pipeline"] not in pipelines:
                pipelines[run["pipeline"]] = get_or_create_pipeline(session, run["pipeline"]).id
            row = PipelineRun(uuid=run_uuid, pipeline_id=pipelines[run["pipeline"]], name=run["name"],
                              status=run["status"], parameters=run.get("parameters") or {},
                              start_time=_time(run.get("start_time")), end_time=_time(run.get("end_time")))
            new_runs.append((row, run))
            taken.add(run["name"])
        except (KeyError, TypeError, ValueError) as exc:
            done.problems.append(f"run {run.get('name')!r} cannot be rebuilt ({type(exc).__name__}: {exc})")
    session.add_all([row for row, _ in new_runs])  # one flush, rows in the order they were first made
    session.flush()
    for row, run in new_runs:
        restore_metadata(session, run.get("metadata") or [], run_id=row.id)
        run_ids[row.uuid] = row.id
    done.runs = len(new_runs)
    step_ids = dict(session.execute(select(StepRun.uuid, StepRun.id)
                                    .where(StepRun.uuid.in_(list(steps)))).all()) if steps else {}
    new_steps: list[tuple[StepRun, dict[str, Any]]] = []
    for step_uuid, step in sorted(steps.items(), key=lambda item: _order(item[1])):
        if step_uuid in step_ids:
            continue
        run_id = run_ids.get(str(step["run"].get("uuid")))
        if run_id is None:
            done.problems.append(f"step run {step.get('name')!r}: its run could not be rebuilt")
            continue
        try:
            new_steps.append((StepRun(uuid=step_uuid, run_id=run_id, name=step["name"], status=step["status"],
                                      code_hash=step.get("code_hash"), cache_key=step.get("cache_key"),
                                      parameters=step.get("parameters") or {},
                                      start_time=_time(step.get("start_time")), end_time=_time(step.get("end_time"))),
                              step))
        except (KeyError, TypeError, ValueError) as exc:
            done.problems.append(f"step run {step.get('name')!r} cannot be rebuilt ({type(exc).__name__}: {exc})")
    session.add_all([step_row for step_row, _ in new_steps])
    session.flush()
    for step_row, step in new_steps:
        restore_metadata(session, step.get("metadata") or [], step_run_id=step_row.id)
        step_ids[step_row.uuid] = step_row.id
    for step_row, step in new_steps:
        original = step_ids.get(str(step.get("original")))
        if original is not None:
            step_row.original_step_run_id = original
    session.flush()
    done.steps = len(new_steps)
    version_ids = dict(session.execute(select(ArtifactVersion.uuid, ArtifactVersion.id).where(
        ArtifactVersion.uuid.in_(sorted({v for v, _, _ in links})))).all())
    existing = {(s, d, n, v) for s, d, n, v in session.execute(
        select(StepIO.step_run_id, StepIO.direction, StepIO.name, StepIO.version_id)
        .where(StepIO.step_run_id.in_(list(step_ids.values()))))} if step_ids else set()
    wanted = []
    for version_uuid, direction, link in links:
        step = link.get("step") if isinstance(link, dict) else None
        step_id = step_ids.get(str(step.get("uuid"))) if isinstance(step, dict) else None
        if step_id is None or version_uuid not in version_ids:
            continue
        key = (step_id, direction, str(link.get("name")), version_ids[version_uuid])
        if key in existing:
            continue
        existing.add(key)
        seq = link.get("seq")
        wanted.append(((step_id, seq is None, seq if isinstance(seq, int) else 0, direction == "output", key[2]),
                       {"step_run_id": step_id, "version_id": version_ids[version_uuid], "direction": direction,
                        "name": key[2]}))
    wanted.sort(key=lambda item: item[0])
    if wanted:  # ids in the order the links were first made
        session.execute(insert(StepIO), [values for _, values in wanted])
    done.links = len(wanted)
    bump_generation(session)
    return done




def link_keys(links: Iterable[Any]) -> set[tuple[str, str]]:
    """``(step run uuid, link name)`` of journal link records (unreadable ones left out)."""
    keys = set()
    for link in links:
        step = link.get("step") if isinstance(link, dict) else None
        if isinstance(step, dict) and isinstance(step.get("uuid"), str):
            keys.add((step["uuid"], str(link.get("name"))))
    return keys


def ahead_of_index(record: dict[str, Any], gathered: Gathered, tags: Iterable[str] | None = None) -> str | None:
    """What the manifest file ``record`` holds of its version that the
    index (``gathered``) lacks and that protects it, or None: tags (only
    ``tags`` when given: the pruner's keep tags) and links to step runs. An
    index restored from a backup lacks what was tagged or linked since; what
    the index has and the manifest file lacks is only an out-of-date manifest
    file. The one comparison of its kind (``gc.journal_ahead``, ``gc.fsck``,
    ``gc.adopt``, ``api.deleting``)."""
    recorded = {str(t) for t in record.get("tags") or () if isinstance(t, str)}
    missing_tags = recorded - set(gathered.tags)
    if tags is not None:
        missing_tags &= set(tags)
    known = link_keys(gathered.producers) | link_keys(gathered.consumers)
    missing_links = (link_keys(record.get("producers") or ()) | link_keys(record.get("consumers") or ())) - known
    said = []
    if missing_tags:
        said.append(f"tag{'s' if len(missing_tags) > 1 else ''} {', '.join(sorted(missing_tags))}")
    if missing_links:
        said.append(f"{len(missing_links)} link{'s' if len(missing_links) > 1 else ''} to step runs")
    return " and ".join(said) or None


def read_journal(store: ArtifactStore, uri: str, uuid: str) -> dict[str, Any] | None:
    """The record of the manifest file of the version ``uuid`` at ``uri``,
    read now; None when it has none, a damaged one (``fsck`` reports it) or
    a link where it belongs (never followed): then the index alone decides.
    What the store raised otherwise is raised."""
    try:
        record, _ = read_manifest_file(store, journal_folder(store, uri, uuid))
    except (FileNotFoundError, JournalError, PathEscapeError):
        return None
    return record


def might_protect(record: dict[str, Any] | None, tags: Iterable[str] | None = None) -> bool:
    """Whether a manifest file's record names anything that protects its
    version (a tag, of ``tags`` when given; a step-run link): only then is
    the index asked (most candidates of a pass name nothing of the kind)."""
    if not record:
        return False
    recorded = set(record.get("tags") or ())
    return bool(recorded if tags is None else recorded & set(tags)) or bool(
        record.get("producers") or record.get("consumers"))


def journals_ahead(session: Session, records: dict[int, dict[str, Any] | None],
                   tags: Iterable[str] | None = None) -> dict[int, str]:
    """``{version id: what}`` of the versions whose manifest file's record
    (``records``, by version id; None: none to compare) is ahead of the
    index (:func:`ahead_of_index`); the index is read only for those that
    might protect."""
    tags = None if tags is None else set(tags)
    wanted = {vid: record for vid, record in records.items() if record is not None and might_protect(record, tags)}
    gathered = gather(session, wanted)
    ahead = {}
    for vid, record in wanted.items():
        found = gathered.get(vid)
        what = ahead_of_index(record, found, tags) if found is not None else None
        if what is not None:
            ahead[vid] = what
    return ahead


def runs_in_progress(gathered: dict[int, Gathered]) -> set[int]:
    """Ids of the versions of ``gathered`` linked to a run still running
    (their manifest files are rewritten when it ends)."""
    return {vid for vid, g in gathered.items()
            if any((link["step"].get("run") or {}).get("status") == "running" for link in g.producers + g.consumers)}


__all__ = ["Gathered", "Restored", "ahead_of_index", "gather", "journals_ahead", "link_keys", "might_protect",
           "read_journal", "restore_lineage", "restore_metadata", "rewrite_journals", "runs_in_progress",
           "step_records", "versions_linked", "write_journal"]
