"""The local runner: executes a traced pipeline step by step, records the run
and its step runs, links inputs and outputs, and reuses cached step runs.

Per step: link the inputs (only live versions can be linked), reuse a
cached step run with the same cache key if all its outputs are still live,
else call the function, check the output types, write the payloads, and in
one transaction insert the versions, link them and complete the step run.

Each transaction runs under ``Index.run_write`` (re-run after a deadlock
or serialization abort), so the functions it runs only touch the index.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import traceback
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import IntegrityError

from artifactfs.api.artifacts import ArtifactVersion
from artifactfs.api.journal import update_journals, update_linked_journals
from artifactfs.api.lazy import LazyArtifactVersion
from artifactfs.api.context import StepRunContext, inside_step_run
from artifactfs.api.runs import PipelineRunView, get_pipeline_run
from artifactfs.api.stores import get_store
from artifactfs.api.writing import WriteBatch, pick_materializer, write_value
from artifactfs.errors import AlreadyExistsError
from artifactfs.index import get_index
from artifactfs.index import artifacts as artifact_rows
from artifactfs.index import pipelines as pipeline_rows
from artifactfs.index import tags as tag_rules
from artifactfs.index.tags import Tag
from artifactfs.index.artifacts import check_name
from artifactfs.index.journal import step_records
from artifactfs.stores.manifest import link_record
from artifactfs.index.models import ArtifactType, PipelineRun, RunStatus, SaveType, StepRun, utcnow
from artifactfs.pipelines.config import ArtifactConfig, ExternalArtifact, UnmaterializedArtifact
from artifactfs.index.pipelines import Link, VersionNotLiveError
from artifactfs.pipelines.outputs import (
    StepDefinitionError,
    cache_name,
    fill,
    matches,
    substitution_values,
    type_label,
)
from artifactfs.pipelines import inputs as step_inputs
from artifactfs.pipelines import logs as step_logs
from artifactfs.pipelines.heartbeat import keep_alive
from artifactfs.pipelines.progress import RunProgress
from artifactfs.pipelines.step import StepOutput
from artifactfs.pipelines.trace import Invocation, Trace
from artifactfs.stores.base import ArtifactStore


@dataclass
class RunOptions:
    pipeline: str
    run_name: str | None = None
    enable_cache: bool = True
    substitutions: dict[str, str] = field(default_factory=dict)
    store: str | None = None
    quiet: bool = False
    tags: list[Tag] = field(default_factory=list)  # the run's; cascading ones also go on its output versions


@dataclass
class PlannedStep:
    """An invocation with everything decided before anything runs."""

    invocation: Invocation
    parameters: dict[str, Any]  # as the run records them (JSON)
    arguments: dict[str, Any]  # the parameters as the step gets them: validated and converted
    inputs: dict[str, Any]  # a step output (or a list of them), a version, a lazy version or an external value
    artifact_names: dict[str, str]  # output name -> artifact name
    cache_names: dict[str, str]  # output name -> its name as the cache key sees it (outputs.cache_name)
    substitutions: dict[str, str]  # the step's own (ZenML's step_run.config.substitutions adds the run's)
    use_cache: bool


def run_pipeline(trace: Trace, parameters: dict[str, Any], options: RunOptions) -> PipelineRunView:
    """Run a traced pipeline's steps in order on this machine (a cached step
    reuses its outputs); returns the run as the index recorded it."""
    start = utcnow()
    plan = [_plan_step(inv, options, start) for inv in trace.invocations]
    run_name = _run_name(options, start)
    store = get_store(options.store)
    config = {"substitutions": substitution_values(start, options.substitutions), "enable_cache": options.enable_cache,
              "steps_without_cache": [p.invocation.name for p in plan if not p.use_cache],
              "step_substitutions": {p.invocation.name: p.substitutions for p in plan if p.substitutions},
              "input_types": {p.invocation.name: {k: step_inputs.input_type(v).value for k, v in p.inputs.items()}
                              for p in plan if p.inputs}}
    run_id = get_index().run_write(_create_run, options.pipeline, run_name, parameters, config, options.tags)
    produced: dict[str, dict[str, ArtifactVersion]] = {}
    with RunProgress(options.pipeline, run_name, len(plan), quiet=options.quiet) as progress, keep_alive(run_id):
        try:
            for number, planned in enumerate(plan, 1):
                with progress.step(number, planned.invocation.name) as outcome:
                    outcome.outputs, outcome.cached = _run_step(planned, run_id, options, run_name, store, produced)
                produced[planned.invocation.name] = outcome.outputs
        except BaseException:
            _finish_run(run_id, RunStatus.FAILED, options.tags)
            raise
        _finish_run(run_id, RunStatus.COMPLETED, options.tags)
    return get_pipeline_run(run_name)


def _run_name(options: RunOptions, start: dt.datetime) -> str:
    template = options.run_name or f"{options.pipeline}-{{date}}-{{time}}"
    name = fill(template, substitution_values(start, options.substitutions), f"pipeline {options.pipeline!r}")
    return check_name(name, "run name")


def _create_run(session, pipeline: str, run_name: str, parameters: dict[str, Any], config: dict[str, Any],
                tags: list[Tag]) -> int:
    try:
        run_id = pipeline_rows.create_run(session, pipeline, run_name, parameters, config).id
    except IntegrityError:  # run names are unique (the only constraint a new run can break): no need to ask first
        raise AlreadyExistsError(f"a pipeline run named {run_name!r} exists", "choose another run_name") from None
    tag_rules.attach(session, "run", [run_id], tags)
    return run_id


def _finish_run(run_id: int, status: RunStatus, tags: list[Tag] = ()) -> None:
    """End the run; ``cascade`` tags go on every version its steps output (ZenML's)."""
    def finish(session) -> None:
        pipeline_rows.finish_by_id(session, PipelineRun, run_id, status)
        cascading = [tag for tag in tags if tag.cascade]
        if cascading:
            tag_rules.attach(session, "version", pipeline_rows.run_outputs(session, run_id), cascading)

    get_index().run_write(finish)
    update_linked_journals(run_ids=[run_id])  # the run's end, in the manifest file of every version it touched


# -- planning ---------------------------------------------------------------------------------


def _plan_step(invocation: Invocation, options: RunOptions, start: dt.datetime) -> PlannedStep:
    step = invocation.step
    where = f"step {invocation.name!r} of pipeline {options.pipeline!r}"
    parameters, arguments, inputs = {}, {}, {}
    for key, value in invocation.arguments.items():
        if step_inputs.is_artifact(value):
            inputs[key] = value
            continue
        try:
            parameters[key] = step_inputs.json_form(value)
        except (TypeError, ValueError):
            raise StepDefinitionError(
                f"{where}: parameter {key!r} is a {type(value).__name__}, which is not JSON-serializable",
                "pass it as an artifact instead: return it from another step, or save_artifact() it and pass "
                "the ArtifactVersion",
            ) from None
        default = step.signature.parameters[key].default
        arguments[key] = value if value is default else step_inputs.convert(value, step.input_types[key], where, key)
    values = substitution_values(start, {**options.substitutions, **step.substitutions})
    names, cache_names = {}, {}
    for spec in step.outputs:
        if spec.named:
            names[spec.name] = check_name(fill(spec.name, values, where))
            cache_names[spec.name] = cache_name(spec.name, values)
        else:
            names[spec.name] = cache_names[spec.name] = check_name(
                f"{options.pipeline}::{invocation.name}::{spec.name}")
    use_cache = options.enable_cache and step.enable_cache is not False
    return PlannedStep(invocation, parameters, arguments, inputs, names, cache_names, dict(step.substitutions),
                       use_cache)


def cache_key(planned: PlannedStep, inputs: dict[str, ArtifactVersion], store: ArtifactStore) -> str:
    """Same code, parameters, input contents, outputs and store: same result."""
    material = {
        "code": planned.invocation.step.code_hash,
        "parameters": planned.parameters,
        "inputs": {k: [x.content_hash or x.id for x in v] if isinstance(v, list) else v.content_hash or v.id
                   for k, v in sorted(inputs.items())},
        "outputs": planned.cache_names,
        "store": store.name,
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()


# -- running one step -----------------------------------------------------------------------


def _run_step(
    planned: PlannedStep, run_id: int, options: RunOptions, run_name: str, store: ArtifactStore,
    produced: dict[str, dict[str, ArtifactVersion]],
) -> tuple[dict[str, ArtifactVersion], bool]:
    """The step's outputs, and whether they came from the cache."""
    inputs = {key: _resolve(ref, key, planned, options, store, produced) for key, ref in planned.inputs.items()}
    step = planned.invocation.step
    key = cache_key(planned, inputs, store)
    if planned.use_cache:
        cached = _reuse_cached(planned, run_id, key, inputs)
        if cached is not None:
            return cached, True
    step_run_id, step_run_uuid = get_index().run_write(_start_step, planned, run_id, key, inputs)
    update_journals([v._pk for v in _each(inputs)])  # each input's manifest file names this consumer
    context = StepRunContext(step_run_id, step_run_uuid, options.pipeline, run_name, planned.invocation.name,
                             output_names=tuple(spec.name for spec in step.outputs))
    try:
        with inside_step_run(context):  # materializers too may ask get_step_context() (ZenML's)
            values = _load_inputs(planned, inputs)
            with step_logs.captured(step_run_id):
                result = step.entrypoint(**planned.arguments, **values)
            return _save_outputs(planned, context, result, store), False
    except BaseException as exc:
        _finish_step(context.step_run_id, RunStatus.FAILED, exc)
        if isinstance(exc, Exception) and hasattr(exc, "add_note"):
            exc.add_note(f"artifactfs: step {planned.invocation.name!r} of run {run_name!r} failed")
        raise


def _resolve(ref, key: str, planned: PlannedStep, options: RunOptions, store: ArtifactStore,
             produced: dict[str, dict[str, ArtifactVersion]]) -> ArtifactVersion:
    """The version an input stands for, decided now that the step runs: an
    earlier step's output, a version looked up in the pipeline body (late:
    an earlier step of this run may have made it), or an external value
    saved now as ``<pipeline>::<step>::<input>``."""
    if isinstance(ref, StepOutput):
        return produced[ref.invocation][ref.output]
    if step_inputs.is_output_list(ref):
        return [produced[item.invocation][item.output] for item in ref]
    if isinstance(ref, LazyArtifactVersion):
        return ref.resolve()
    if isinstance(ref, ExternalArtifact):
        return ref.save(check_name(f"{options.pipeline}::{planned.invocation.name}::{key}"), store)
    return ref


def _start_step(session, planned: PlannedStep, run_id: int, key: str, inputs: dict[str, ArtifactVersion]):
    step = planned.invocation.step
    # The key is kept even with caching off (as ZenML keeps it): a later run with caching on reuses this one.
    row = pipeline_rows.create_step_run(session, run_id, planned.invocation.name, step.code_hash, key, planned.parameters)
    pipeline_rows.link_all(session, row.id, _input_links(inputs))
    return row.id, row.uuid


def _input_links(inputs: dict[str, Any]) -> list[Link]:
    """One link per version; a list input links each of its versions under its name."""
    return [Link(version._pk, "input", name) for name, given in inputs.items()
            for version in (given if isinstance(given, list) else [given])]


def _each(inputs: dict[str, Any]) -> list[ArtifactVersion]:
    return [version for given in inputs.values() for version in (given if isinstance(given, list) else [given])]


def _reuse_cached(planned: PlannedStep, run_id: int, key: str, inputs: dict[str, ArtifactVersion]):
    """Record a cached step run linked to the original outputs, or None."""
    try:
        outputs = get_index().run_write(_record_cached, planned, run_id, key, inputs)
    except VersionNotLiveError:
        return None  # the pruner got there first: run the step for real
    if outputs is not None:
        update_journals([v._pk for v in [*_each(inputs), *outputs.values()]])
    return outputs


def _record_cached(session, planned: PlannedStep, run_id: int, key: str, inputs: dict[str, ArtifactVersion]):
    original = pipeline_rows.find_cached_step(session, key)
    if original is None:
        return None
    step = planned.invocation.step
    row = pipeline_rows.create_step_run(session, run_id, planned.invocation.name, step.code_hash, key, planned.parameters,
                               original_step_run_id=original.id, status=RunStatus.CACHED)
    outputs = pipeline_rows.step_links(session, original.id, "output")
    # What the original loaded itself (manual inputs) it read for this run too, as ZenML records it.
    manual = [Link(v.id, "input", n) for n, v in pipeline_rows.step_links(session, original.id, "input") if n not in inputs]
    # One call for inputs and outputs: every version is locked in id order.
    pipeline_rows.link_all(session, row.id, _input_links(inputs) + manual + [Link(v.id, "output", n) for n, v in outputs])
    output_of = {link: output for output, link in _link_names(planned).items()}
    # a name saved several times (save_artifact in the step) stands for its last version here
    return {output_of.get(name, name): ArtifactVersion.from_row(v) for name, v in outputs}


def _link_names(planned: PlannedStep) -> dict[str, str]:
    """Output name -> the name the run records it under: a named output's
    resolved name (``x_{date}`` is recorded as ``x_2026_12_06``, as ZenML
    keys ``run.steps[...].outputs``), an unnamed one's output name."""
    return {spec.name: planned.artifact_names[spec.name] if spec.named else spec.name
            for spec in planned.invocation.step.outputs}


def _load_inputs(planned: PlannedStep, inputs: dict[str, ArtifactVersion]) -> dict[str, Any]:
    values = {}
    annotations = planned.invocation.step.input_types
    for key, version in inputs.items():
        annotation = annotations[key]
        if isinstance(version, list):  # several step outputs as one argument: a list of their values
            values[key] = [item.load() for item in version]
            continue
        if isinstance(annotation, type) and issubclass(annotation, UnmaterializedArtifact):
            values[key] = UnmaterializedArtifact.of(version)  # the version itself, not its value
            continue
        value = version.load()
        if not matches(value, annotation):
            raise StepDefinitionError(
                f"step {planned.invocation.name!r}: input {key!r} is {type(value).__qualname__} "
                f"(artifact {version}), but the step expects {type_label(annotation)}"
            )
        values[key] = value
    return values


def _split_result(planned: PlannedStep, result: Any) -> dict[str, Any]:
    specs = planned.invocation.step.outputs
    name = planned.invocation.name
    if not specs:
        return {}
    if len(specs) == 1:
        return {specs[0].name: result}
    if not isinstance(result, (tuple, list)) or len(result) != len(specs):
        raise StepDefinitionError(
            f"step {name!r} must return {len(specs)} values ({', '.join(s.name for s in specs)}), "
            f"got {type(result).__qualname__}"
        )
    return {spec.name: value for spec, value in zip(specs, result)}


def _save_outputs(planned: PlannedStep, context: StepRunContext, result: Any, store: ArtifactStore):
    step_name = planned.invocation.name
    values = _split_result(planned, result)
    for spec in planned.invocation.step.outputs:
        if not matches(values[spec.name], spec.annotation):
            raise StepDefinitionError(
                f"step {step_name!r}: output {spec.name!r} is {type(values[spec.name]).__qualname__}, "
                f"but the step is annotated to return {type_label(spec.annotation)}"
            )
    step = planned.invocation.step
    chosen = [(spec, pick_materializer(values[spec.name], step.materializer_for(spec.name, values[spec.name])))
              for spec in step.outputs]
    with WriteBatch(store) as batch:  # one write batch: every output's intent, payload and commit
        payloads = batch.begin([(planned.artifact_names[spec.name], _configured_version(spec.config))
                                for spec in step.outputs])
        pending = []
        producer = _producer_record(context.step_run_id)  # what `fsck --adopt` re-indexes after losing the index
        for (spec, cls), payload in zip(chosen, payloads):
            new, metadata = write_value(batch, payload, values[spec.name], cls, save_type=SaveType.STEP_OUTPUT)
            _configure_output(new, metadata, spec.config, context, spec.name)
            new.producers = [link_record(spec.name, producer)]
            pending.append(spec.name)
        links = _link_names(planned)
        inserted = batch.commit_versions(lambda session, versions: _link_outputs(
            session, context.step_run_id, [links[output] for output in pending], versions))
        return {output: ArtifactVersion.from_row(row, store.name) for output, row in zip(pending, inserted)}


def _configured_version(config: ArtifactConfig | None) -> str | None:
    """The version an output's ArtifactConfig asks for (None: the next number)."""
    if config is None or config.version is None:
        return None
    return check_name(str(config.version), "version")


def _producer_record(step_run_id: int) -> dict[str, Any]:
    """The step run as its outputs' manifest files name it before the
    commit, which completes it (the run's end rewrites them from the index)."""
    with get_index().read() as session:
        record = step_records(session, [step_run_id])[step_run_id]
    return {**record, "status": RunStatus.COMPLETED.value}


def _configure_output(new, metadata: dict[str, Any], config: ArtifactConfig | None, context: StepRunContext,
                      output: str) -> None:
    """An output's version, tags, metadata and type: from its ArtifactConfig,
    then from what the step logged for it while running."""
    new.metadata = metadata
    if config is not None:
        new.tags = list(config.tags or [])
        new.metadata.update(config.run_metadata or {})
        if config.artifact_type is not None:
            new.artifact_type = ArtifactType(config.artifact_type).value
        new.tags += [flag for flag in ("model", "deployment")
                     if getattr(config, f"is_{flag}_artifact")]
    new.metadata.update(context.output_metadata.get(output, {}))
    new.tags = list(new.tags or []) + context.output_tags.get(output, [])


def _link_outputs(session, step_run_id: int, outputs: list[str], inserted: list) -> None:
    """In the commit's transaction: link every output to its step run and
    complete the run (the versions were inserted by this very transaction:
    they need no lock)."""
    links = [Link(row.id, "output", output) for output, row in zip(outputs, inserted)]
    pipeline_rows.link_all(session, step_run_id, links, fresh=[row.id for row in inserted])
    pipeline_rows.finish_by_id(session, StepRun, step_run_id, RunStatus.COMPLETED)


ERROR_TEXT_LIMIT = 4000


def _finish_step(step_run_id: int, status: RunStatus, error: BaseException | None = None) -> None:
    """Close a step run; a failed one keeps its error (type, message and
    traceback, shortened) as step-run metadata, which the web view shows."""
    metadata = None
    if error is not None:
        text = "".join(traceback.format_exception(error))
        metadata = {"error": f"{type(error).__name__}: {error}"[:ERROR_TEXT_LIMIT], "traceback": text[-ERROR_TEXT_LIMIT:]}

    def finish(session) -> None:
        pipeline_rows.finish_by_id(session, StepRun, step_run_id, status)
        if metadata is not None:
            artifact_rows.set_metadata(session, metadata, step_run_id=step_run_id)

    get_index().run_write(finish)
