"""Pipeline runs and step runs as users see them, and lineage walks over
versions (producer, consumers, upstream, downstream)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from artifactfs.api.artifacts import ArtifactVersion
from artifactfs.api.journal import update_journals
from artifactfs.index.journal import versions_linked
from artifactfs.index import get_index
from artifactfs.index import pipelines as pipeline_rows
from artifactfs.index.artifacts import get_metadata
from artifactfs.index.models import PipelineRun as RunRow
from artifactfs.index.models import StepRun as StepRow


class OutputVersions(list):
    """The versions a step run wrote under one output name. ZenML 0.98 gives
    a list (``outputs["o"][0]``); with exactly one version (the usual case)
    it also stands for that version (``outputs["o"].load()``)."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or len(self) != 1:
            raise AttributeError(f"{len(self)} versions under this output have no single {name!r}; index the list")
        return getattr(self[0], name)

    def __str__(self) -> str:
        return str(self[0]) if len(self) == 1 else ", ".join(map(str, self))


@dataclass
class StepRunView:
    id: str
    name: str
    status: str
    parameters: dict[str, Any]
    code_hash: str | None
    cache_key: str | None
    start_time: dt.datetime
    end_time: dt.datetime | None
    pipeline: str
    run: str
    inputs: dict[str, ArtifactVersion] = field(default_factory=dict)
    outputs: dict[str, OutputVersions] = field(default_factory=dict)
    _pk: int = field(default=0, repr=False)

    @property
    def is_cached(self) -> bool:
        return self.status == "cached"

    @property
    def output(self) -> ArtifactVersion:
        """The single output of a one-output step."""
        if len(self.outputs) != 1:
            raise ValueError(f"step {self.name!r} has {len(self.outputs)} outputs: {', '.join(self.outputs)}")
        return next(iter(self.outputs.values()))[0]

    @property
    def run_metadata(self) -> dict[str, Any]:
        with get_index().read() as session:
            return get_metadata(session, step_run_id=self._pk)


@dataclass
class PipelineRunView:
    id: str
    name: str
    pipeline: str
    status: str
    parameters: dict[str, Any]
    start_time: dt.datetime
    end_time: dt.datetime | None
    steps: dict[str, StepRunView] = field(default_factory=dict)
    _pk: int = field(default=0, repr=False)

    def __str__(self) -> str:
        return self.name

    @property
    def run_metadata(self) -> dict[str, Any]:
        with get_index().read() as session:
            return get_metadata(session, run_id=self._pk)


def step_view(session, step: StepRow, with_links: bool = True, links: dict | None = None) -> StepRunView:
    """``links``: the step's links from :func:`pipeline_rows.links_of_steps`, when
    the caller fetched them for several steps at once."""
    view = StepRunView(
        id=step.uuid, name=step.name, status=step.status, parameters=dict(step.parameters or {}),
        code_hash=step.code_hash, cache_key=step.cache_key, start_time=step.start_time, end_time=step.end_time,
        pipeline=step.run.pipeline.name, run=step.run.name, _pk=step.id,
    )
    if with_links:
        links = links if links is not None else pipeline_rows.links_of_steps(session, [step.id])
        for name, version in links.get((step.id, "input"), {}).items():
            view.inputs[name] = ArtifactVersion.from_row(version)
        for name, version in links.get((step.id, "output"), {}).items():
            view.outputs[name] = OutputVersions([ArtifactVersion.from_row(version)])
    return view


def run_view(session, run: RunRow) -> PipelineRunView:
    view = PipelineRunView(
        id=run.uuid, name=run.name, pipeline=run.pipeline.name, status=run.status,
        parameters=dict(run.parameters or {}), start_time=run.start_time, end_time=run.end_time, _pk=run.id,
    )
    steps = pipeline_rows.steps_of(session, run.id)
    links = pipeline_rows.links_of_steps(session, [s.id for s in steps])
    view.steps = {s.name: step_view(session, s, links=links) for s in steps}
    return view


def get_pipeline_run(name_or_id: str) -> PipelineRunView:
    with get_index().read() as session:
        return run_view(session, pipeline_rows.find_run(session, name_or_id))


def list_pipeline_runs(pipeline: str | None = None, limit: int | None = None) -> list[PipelineRunView]:
    with get_index().read() as session:
        return [run_view(session, r) for r in pipeline_rows.list_runs(session, pipeline, limit)]


def delete_pipeline_run(name_or_id: str) -> PipelineRunView:
    linked: list[int] = []

    def delete(session) -> PipelineRunView:
        run = pipeline_rows.find_run(session, name_or_id)
        view = run_view(session, run)
        linked[:] = versions_linked(session, run_ids=[run.id])
        pipeline_rows.delete_run(session, run)
        return view

    view = get_index().run_write(delete)
    update_journals(linked)  # their manifest files no longer name the run
    return view


# -- lineage of versions --------------------------------------------------------------------


def producer(version: ArtifactVersion) -> StepRunView | None:
    with get_index().read() as session:
        step = pipeline_rows.producer_of(session, version._pk)
        return step_view(session, step) if step is not None else None


def consumers(version: ArtifactVersion) -> list[StepRunView]:
    with get_index().read() as session:
        return [step_view(session, s) for s in pipeline_rows.consumers_of(session, version._pk)]


def walk(version: ArtifactVersion, depth: int, upstream: bool) -> list[ArtifactVersion]:
    """Versions reachable through producing (upstream) or consuming
    (downstream) step runs, breadth first, at most ``depth`` steps away."""
    seen = {version.id}
    frontier, found = [version], []
    with get_index().read() as session:
        for _ in range(depth):
            following = []
            for current in frontier:
                if upstream:
                    step = pipeline_rows.producer_of(session, current._pk)
                    steps = [step] if step is not None else []
                    direction = "input"
                else:
                    steps, direction = pipeline_rows.consumers_of(session, current._pk), "output"
                for step in steps:
                    for linked in pipeline_rows.step_links(session, step.id, direction).values():
                        if linked.uuid not in seen:
                            seen.add(linked.uuid)
                            following.append(ArtifactVersion.from_row(linked))
            found.extend(following)
            frontier = following
            if not frontier:
                break
    return found
