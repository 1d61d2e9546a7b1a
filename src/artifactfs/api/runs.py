"""Pipeline runs and step runs as users see them, and lineage walks over
versions (producer, consumers, upstream, downstream)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from artifactfs.api.artifacts import ArtifactVersion
from artifactfs.api.journal import update_journals
from artifactfs.index.journal import versions_linked
from artifactfs.index import get_index
from artifactfs.index import pipelines as pipeline_rows
from artifactfs.index.gc import prune_runs
from artifactfs.index import tags as tag_rules
from artifactfs.index.tags import Tag
from artifactfs.index.artifacts import get_metadata
from artifactfs.enums import StepRunInputArtifactType
from artifactfs.index.liveness import crashed_among, shown_status
from artifactfs.index.models import RunStatus
from artifactfs.errors import NotFoundError
from artifactfs.index.models import Pipeline as PipelineRow
from artifactfs.index.models import PipelineRun as RunRow
from artifactfs.index.models import StepRun as StepRow


def pipeline_id(name: str) -> str:
    """A stable id for a pipeline name (the index keys pipelines by name)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"artifactfs:pipeline:{name}"))


class PipelineView(str):
    """A pipeline, as ZenML's ``PipelineResponse`` (``.name``, ``.id``,
    ``.runs``, ``.last_run``). It is also the pipeline's name as a ``str``,
    so code written when ``run.pipeline`` was a string keeps working."""

    @property
    def name(self) -> str:
        """The pipeline's name."""
        return str.__str__(self)

    @property
    def id(self) -> str:
        """The pipeline's id (derived from its name)."""
        return pipeline_id(self.name)

    @property
    def runs(self) -> list[PipelineRunView]:
        """Its recorded runs, newest first."""
        return list_pipeline_runs(self.name)

    @property
    def num_runs(self) -> int:
        """How many runs the pipeline has."""
        with get_index().read() as session:
            return len(pipeline_rows.list_runs(session, self.name))

    @property
    def last_run(self) -> PipelineRunView:
        """The pipeline's newest run (``NotFoundError`` when it has none)."""
        found = list_pipeline_runs(self.name, limit=1)
        if not found:
            raise NotFoundError(f"pipeline {self.name!r} has no runs yet", "call the pipeline first")
        return found[0]

    @property
    def last_successful_run(self) -> PipelineRunView:
        """The pipeline's newest completed run (ZenML's; ``NotFoundError`` when none completed)."""
        found = list_pipeline_runs(self.name, limit=1, status=RunStatus.COMPLETED.value)
        if not found:
            raise NotFoundError(f"pipeline {self.name!r} has no completed run", "run it until it completes")
        return found[0]

    @property
    def tags(self) -> list[Tag]:
        """The pipeline's own tags (``add_tags(pipeline=...)``)."""
        with get_index().read() as session:
            row = session.scalars(select(PipelineRow).where(PipelineRow.name == self.name)).first()
            return tag_rules.tags_of(session, "pipeline", [row.id]).get(row.id, []) if row is not None else []

    @property
    def latest_run_status(self) -> str | None:
        """The status of the newest run, or None when there is none."""
        found = list_pipeline_runs(self.name, limit=1)
        return found[0].status if found else None


@dataclass(frozen=True)
class StepConfigView:
    """What ZenML's ``step_run.config`` tells that the index records: the
    invocation name, its parameters and whether caching was on."""

    name: str
    parameters: dict[str, Any]
    enable_cache: bool
    substitutions: dict[str, str] = field(default_factory=dict)  # the run's, then the step's own


class OutputVersions(list):
    """The versions a step run wrote (or read) under one name. ZenML 0.98
    gives a list (``outputs["o"][0]``); with exactly one version (the usual
    case) it also stands for that version (``outputs["o"].load()``)."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or len(self) != 1:
            raise AttributeError(f"{len(self)} versions under this output have no single {name!r}; index the list")
        return getattr(self[0], name)

    def __str__(self) -> str:
        return str(self[0]) if len(self) == 1 else ", ".join(map(str, self))


@dataclass
class StepInput(ArtifactVersion):
    """A version a step run read, with how it got it (ZenML's ``StepRunInputResponse``)."""

    input_type: StepRunInputArtifactType = StepRunInputArtifactType.MANUAL

    @classmethod
    def of(cls, version: ArtifactVersion, input_type: str) -> StepInput:
        """The input view of ``version``, read by a step as ``input_type`` says."""
        return cls(**{f.name: getattr(version, f.name) for f in dataclasses.fields(version)},
                   input_type=StepRunInputArtifactType(input_type))


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
    pipeline: PipelineView
    run: str
    inputs: dict[str, OutputVersions] = field(default_factory=dict)  # StepInput lists, as ZenML 0.98's
    outputs: dict[str, OutputVersions] = field(default_factory=dict)
    _pk: int = field(default=0, repr=False)
    _caching: bool = field(default=True, repr=False)  # index.pipelines.caching_on
    _substitutions: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def is_cached(self) -> bool:
        """Whether the step run reused a cached run's outputs."""
        return self.status == "cached"

    @property
    def config(self) -> StepConfigView:
        """The step's configuration: its name, parameters, whether caching was on and its substitutions."""
        return StepConfigView(self.name, dict(self.parameters), self._caching, dict(self._substitutions))

    @property
    def input_types(self) -> dict[str, StepRunInputArtifactType]:
        """ZenML's: how each input reached the step (an input the run did
        not plan was loaded by the step itself: ``MANUAL``)."""
        return {name: versions[0].input_type for name, versions in self.inputs.items()}

    @property
    def pipeline_run(self) -> PipelineRunView:
        """The run this step run belongs to (ZenML's ``pipeline_run_id`` resolved)."""
        return get_pipeline_run(self.run)

    @property
    def pipeline_run_id(self) -> str:
        """The id of the pipeline run this step run belongs to."""
        return self.pipeline_run.id

    @property
    def output(self) -> ArtifactVersion:
        """The single output of a one-output step."""
        if len(self.outputs) != 1:
            raise ValueError(f"step {self.name!r} has {len(self.outputs)} outputs: {', '.join(self.outputs)}")
        return next(iter(self.outputs.values()))[0]

    @property
    def run_metadata(self) -> dict[str, Any]:
        """The step run's metadata, read from the index now."""
        with get_index().read() as session:
            return get_metadata(session, step_run_id=self._pk)


@dataclass(frozen=True)
class RunConfigView:
    """What ZenML's ``run.config`` tells that the index records: the
    substitutions the run's names were filled with (``date``, ``time`` and
    the pipeline's own) and whether caching was on. Empty for runs recorded
    before artifactfs kept it."""

    substitutions: dict[str, str] = field(default_factory=dict)
    enable_cache: bool | None = None


RUN_CONFIG_KEYS = frozenset({"substitutions", "enable_cache"})


@dataclass
class PipelineRunView:
    id: str
    name: str
    pipeline: PipelineView
    status: str
    parameters: dict[str, Any]
    start_time: dt.datetime
    end_time: dt.datetime | None
    steps: dict[str, StepRunView] = field(default_factory=dict)
    config: RunConfigView = field(default_factory=RunConfigView)
    _pk: int = field(default=0, repr=False)

    def __str__(self) -> str:
        return self.name

    @property
    def run_metadata(self) -> dict[str, Any]:
        """The pipeline run's metadata, read from the index now."""
        with get_index().read() as session:
            return get_metadata(session, run_id=self._pk)

    @property
    def artifact_versions(self) -> list[ArtifactVersion]:
        """Every version the run's steps output (cached steps' included), in step order (ZenML's)."""
        seen: dict[str, ArtifactVersion] = {}
        for step_run in self.steps.values():
            for versions in step_run.outputs.values():
                for version in versions:
                    seen.setdefault(version.id, version)
        return list(seen.values())

    @property
    def tags(self) -> list[Tag]:
        """The run's tags (``@pipeline(tags=...)``, ``add_tags(run=...)``), by name."""
        with get_index().read() as session:
            return tag_rules.tags_of(session, "run", [self._pk]).get(self._pk, [])


def _crashed(session, run: RunRow) -> bool:
    """Whether the run is marked running but its process is gone (``index.liveness``)."""
    return run.status == RunStatus.RUNNING.value and bool(crashed_among(session, [run.id]))


def step_view(session, step: StepRow, with_links: bool = True, links: dict | None = None,
              crashed: bool | None = None) -> StepRunView:
    """``links``: the step's links from :func:`pipeline_rows.links_of_steps`, when
    the caller fetched them for several steps at once; ``crashed``: whether
    its run crashed, when the caller knows."""
    if crashed is None:
        crashed = step.status == RunStatus.RUNNING.value and _crashed(session, step.run)
    view = StepRunView(
        id=step.uuid, name=step.name, status=shown_status(step.status, crashed), parameters=dict(step.parameters or {}),
        code_hash=step.code_hash, cache_key=step.cache_key, start_time=step.start_time, end_time=step.end_time,
        pipeline=PipelineView(step.run.pipeline.name), run=step.run.name, _pk=step.id,
        _caching=pipeline_rows.caching_on(step.name, step.run.config, step.cache_key),
        _substitutions=_step_substitutions(step.run.config, step.name),
    )
    if with_links:
        links = links if links is not None else pipeline_rows.links_of_steps(session, [step.id])
        # how each input came, as the run planned it; an unplanned one the step loaded itself
        planned = ((step.run.config or {}).get("input_types") or {}).get(step.name, {})
        for name, versions in links.get((step.id, "input"), {}).items():
            kind = planned.get(name, StepRunInputArtifactType.MANUAL.value)
            view.inputs[name] = OutputVersions([StepInput.of(ArtifactVersion.from_row(v), kind) for v in versions])
        for name, versions in links.get((step.id, "output"), {}).items():
            view.outputs[name] = OutputVersions([ArtifactVersion.from_row(v) for v in versions])
    return view


def step_views(session, steps: list[StepRow], links: dict | None = None) -> list[StepRunView]:
    """The views of several step runs (of any runs): their links and whether
    their runs crashed each read in one query for all of them."""
    running = [s.run_id for s in steps if s.status == RunStatus.RUNNING.value]
    crashed = crashed_among(session, running) if running else set()
    links = links if links is not None else pipeline_rows.links_of_steps(session, [s.id for s in steps])
    return [step_view(session, s, links=links, crashed=s.run_id in crashed) for s in steps]


def _step_substitutions(config: dict[str, Any] | None, step: str) -> dict[str, str]:
    config = config or {}
    return {**(config.get("substitutions") or {}), **((config.get("step_substitutions") or {}).get(step) or {})}


def run_view(session, run: RunRow) -> PipelineRunView:
    """The view of a run row, with its step runs and their inputs and outputs."""
    crashed = _crashed(session, run)
    view = PipelineRunView(
        id=run.uuid, name=run.name, pipeline=PipelineView(run.pipeline.name), status=shown_status(run.status, crashed),
        parameters=dict(run.parameters or {}), start_time=run.start_time, end_time=run.end_time, _pk=run.id,
        config=RunConfigView(**{k: v for k, v in (run.config or {}).items() if k in RUN_CONFIG_KEYS}),
    )
    steps = pipeline_rows.steps_of(session, run.id)
    links = pipeline_rows.links_of_steps(session, [s.id for s in steps])
    view.steps = {s.name: step_view(session, s, links=links, crashed=crashed) for s in steps}
    return view


def get_pipeline_run(name_or_id: str) -> PipelineRunView:
    """A pipeline run by name, id or id prefix."""
    with get_index().read() as session:
        return run_view(session, pipeline_rows.find_run(session, name_or_id))


def list_pipeline_runs(pipeline: str | None = None, limit: int | None = None,
                       status: str | None = None) -> list[PipelineRunView]:
    """Pipeline runs, newest first (``pipeline``: of that pipeline only; ``limit``: at most so many;
    ``status``: with that stored status, see ``index.pipelines.list_runs``)."""
    with get_index().read() as session:
        return [run_view(session, r) for r in pipeline_rows.list_runs(session, pipeline, limit, status)]


def get_step_run(step_run_id: str | uuid.UUID) -> StepRunView:
    """A step run by its id (or a unique id prefix of at least 4 characters)."""
    key = str(step_run_id)
    with get_index().read() as session:
        found = list(session.scalars(select(StepRow).where(StepRow.uuid.like(key + "%")).limit(2))) if len(key) >= 4 else []
        if len(found) != 1:
            raise NotFoundError(f"no step run with id {key!r}" if not found else f"step run id prefix {key!r} is ambiguous",
                                "list step runs with Client().list_run_steps()")
        return step_view(session, found[0])


def list_step_runs(pipeline_run: str | None = None, name: str | None = None) -> list[StepRunView]:
    """Step runs, oldest first; of one run (name or id) and/or with one name."""
    with get_index().read() as session:
        query = select(StepRow).order_by(StepRow.id)
        if pipeline_run is not None:
            query = query.where(StepRow.run_id == pipeline_rows.find_run(session, pipeline_run).id)
        if name is not None:
            query = query.where(StepRow.name == name)
        return step_views(session, list(session.scalars(query)))


def get_pipeline(name_id_or_prefix: str | uuid.UUID) -> PipelineView:
    """A pipeline that has run, by name, id or unique id prefix (4+ characters)."""
    key = str(name_id_or_prefix)
    with get_index().read() as session:
        names = list(session.scalars(select(PipelineRow.name)))
    if key in names:
        return PipelineView(key)
    matches = [n for n in names if len(key) >= 4 and pipeline_id(n).startswith(key.lower())]
    if len(matches) == 1:
        return PipelineView(matches[0])
    if matches:
        raise NotFoundError(f"pipeline id prefix {key!r} is ambiguous", "give more characters of the id")
    raise NotFoundError(f"no pipeline named {key!r} and no pipeline with that id",
                        "list pipelines with `artifactfs pipeline list`", name=key, known=names)


def list_pipelines() -> list[PipelineView]:
    """Every pipeline that has run, by name."""
    with get_index().read() as session:
        return [PipelineView(p.name) for p, _, _ in pipeline_rows.list_pipelines(session)]


def delete_pipeline_run(name_or_id: str) -> PipelineRunView:
    """Delete a run and its step runs (the versions they made stay); the run as it was."""
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


def prune_pipeline_runs(run_ids: list[int], cutoff: dt.datetime, keep_last: int, pipeline: str | None) -> list:
    """Delete those of ``run_ids`` that ``artifactfs run prune`` still may
    (checked again in the transaction: a run may have been deleted or kept
    meanwhile), as :func:`delete_pipeline_run` deletes one: the manifest
    files of the versions they linked stop naming them. The runs deleted."""
    linked: list[int] = []

    def delete(session) -> list:
        linked[:] = versions_linked(session, run_ids=run_ids)
        return prune_runs(session, run_ids, cutoff, keep_last, pipeline)

    deleted = get_index().run_write(delete)
    update_journals(linked)
    return deleted


# -- lineage of versions --------------------------------------------------------------------


def producer(version: ArtifactVersion) -> StepRunView | None:
    """The step run that produced ``version``, or None for a version saved outside a step."""
    with get_index().read() as session:
        step = pipeline_rows.producer_of(session, version._pk)
        return step_view(session, step) if step is not None else None


def consumers(version: ArtifactVersion) -> list[StepRunView]:
    """The step runs that read ``version``."""
    with get_index().read() as session:
        return step_views(session, list(pipeline_rows.consumers_of(session, version._pk)))


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
                    for _, linked in pipeline_rows.step_links(session, step.id, direction):
                        if linked.uuid not in seen:
                            seen.add(linked.uuid)
                            following.append(ArtifactVersion.from_row(linked))
            found.extend(following)
            frontier = following
            if not frontier:
                break
    return found
