"""Lineage queries: which step runs produced or consumed a version, and the
graph of versions and step runs around one (``walk``)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from artifactfs.index.browse import StepRef, VersionLink
from artifactfs.index.models import Artifact, ArtifactVersion, Pipeline, PipelineRun, StepIO, StepRun
from artifactfs.index.sql import is_live


@dataclass(frozen=True)
class Link:
    direction: str  # "input" | "output"
    pipeline: str
    run: str
    step: str
    name: str
    step_run_uuid: str


def version_links(session: Session, version_id: int) -> list[Link]:
    query = (
        select(StepIO.direction, Pipeline.name, PipelineRun.name, StepRun.name, StepIO.name, StepRun.uuid)
        .join(StepRun, StepRun.id == StepIO.step_run_id)
        .join(PipelineRun, PipelineRun.id == StepRun.run_id)
        .join(Pipeline, Pipeline.id == PipelineRun.pipeline_id)
        .where(StepIO.version_id == version_id)
        .order_by(StepIO.direction.desc(), StepIO.id)
    )
    return [Link(*row) for row in session.execute(query)]


# -- the graph around a version, for browsing ----------------------------------------------------


@dataclass(frozen=True)
class LineageEdge:
    """A step run read (``input``) or wrote (``output``) a version under ``name``."""

    step: str  # step run uuid
    version: str  # version uuid
    direction: str
    name: str


@dataclass(frozen=True)
class Lineage:
    root: str  # version uuid
    versions: list[VersionLink]
    steps: list[StepRef]
    edges: list[LineageEdge]
    truncated: bool  # more step runs lie within the depth than ``max_steps``


def walk(session: Session, version_id: int, upstream: bool = True, downstream: bool = True,
         depth: int | None = 2, max_steps: int = 100) -> Lineage:
    """The live versions and step runs around a version: ``upstream`` through
    the step runs that wrote it and what they read, ``downstream`` through
    those that read it and what they wrote, at most ``depth`` step runs away
    (``None``: no limit). A step run is shown whole (all its inputs and
    outputs). One query per hop and direction, plus two for the records."""
    links: dict[int, list[tuple[int, str, str]]] = {}  # step run id -> (version id, direction, name)
    truncated = False
    for going_up in [up for up, wanted in ((True, upstream), (False, downstream)) if wanted]:
        frontier, visited, hops = {version_id}, {version_id}, 0
        while frontier and (depth is None or hops < depth) and not truncated:
            found = list(dict.fromkeys(session.scalars(
                select(StepIO.step_run_id).where(StepIO.version_id.in_(frontier),
                                                 StepIO.direction == ("output" if going_up else "input"))
                .order_by(StepIO.step_run_id))))
            new = [s for s in found if s not in links]
            if len(links) + len(new) > max_steps:
                new, truncated = new[: max_steps - len(links)], True
            _load_links(session, new, links)
            following = "input" if going_up else "output"
            frontier = {v for s in found if s in links for v, d, _ in links[s] if d == following} - visited
            visited |= frontier
            hops += 1
    return _lineage_records(session, version_id, links, truncated)


def _load_links(session: Session, step_ids: list[int], links: dict) -> None:
    for step_id in step_ids:
        links[step_id] = []
    if step_ids:
        for step_id, vid, direction, name in session.execute(
            select(StepIO.step_run_id, StepIO.version_id, StepIO.direction, StepIO.name)
            .where(StepIO.step_run_id.in_(step_ids)).order_by(StepIO.id)
        ):
            links[step_id].append((vid, direction, name))


def _lineage_records(session: Session, root: int, links: dict, truncated: bool) -> Lineage:
    version_ids = {root} | {v for rows in links.values() for v, _, _ in rows}
    versions = {r[0]: VersionLink(*r[1:]) for r in session.execute(
        select(ArtifactVersion.id, ArtifactVersion.uuid, Artifact.name, ArtifactVersion.version,
               ArtifactVersion.data_type, ArtifactVersion.size)
        .join(Artifact, Artifact.id == ArtifactVersion.artifact_id)
        .where(ArtifactVersion.id.in_(version_ids), is_live())
        .order_by(ArtifactVersion.id))}
    steps = {}
    if links:
        steps = {r[0]: StepRef(*r[1:]) for r in session.execute(
            select(StepRun.id, StepRun.uuid, StepRun.name, StepRun.status, PipelineRun.name, PipelineRun.uuid,
                   Pipeline.name)
            .join(PipelineRun, PipelineRun.id == StepRun.run_id).join(Pipeline, Pipeline.id == PipelineRun.pipeline_id)
            .where(StepRun.id.in_(list(links))).order_by(StepRun.id))}
    edges = [LineageEdge(steps[s].id, versions[v].id, direction, name)
             for s, rows in links.items() for v, direction, name in rows if v in versions and s in steps]
    return Lineage(versions[root].id if root in versions else "", list(versions.values()), list(steps.values()),
                   edges, truncated)
