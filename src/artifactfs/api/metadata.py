"""``log_metadata`` and ``log_artifact_metadata`` with ZenML's signatures and
targets: a step run's outputs (applied when they are committed), a named
artifact version, a step run, or a pipeline run. Values are merged into
what is there; a key logged again is replaced."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from typing import Any

from artifactfs.api.artifacts import get_artifact_version
from artifactfs.api.context import StepRunContext, current_step_run
from artifactfs.api.journal import update_journals, update_linked_journals
from artifactfs.errors import ArtifactfsError
from artifactfs.index import artifacts as artifact_rows
from artifactfs.index import get_index
from artifactfs.index import pipelines as pipeline_rows
from artifactfs.index.models import StepRun
from sqlalchemy import select


class MetadataTargetError(ArtifactfsError, ValueError):
    """``log_metadata`` cannot tell where the metadata should go."""


def log_metadata(
    metadata: dict[str, Any],
    step_id: str | uuid.UUID | None = None,
    step_name: str | None = None,
    run_id_name_or_prefix: str | uuid.UUID | None = None,
    artifact_version_id: str | uuid.UUID | None = None,
    artifact_name: str | None = None,
    artifact_version: str | None = None,
    infer_artifact: bool = False,
    **ignored: Any,
) -> None:
    """Attach ``metadata`` to one target, chosen as ZenML chooses it."""
    context = current_step_run()
    if artifact_version_id is not None:
        return _to_version(get_artifact_version(artifact_version_id), metadata)
    if infer_artifact:
        if context is None:
            raise MetadataTargetError("log_metadata(infer_artifact=True) works inside a running step only",
                                      "name the artifact with artifact_name= and artifact_version=")
        return _to_output(context, _output_name(context, artifact_name), metadata)
    if artifact_name is not None:
        return _to_version(get_artifact_version(artifact_name, artifact_version), metadata)
    if step_id is not None or step_name is not None:
        return _to_step(metadata, step_id, step_name, run_id_name_or_prefix, context)
    if run_id_name_or_prefix is not None:
        run_id = get_index().run_write(_run_metadata, metadata, str(run_id_name_or_prefix))
        update_linked_journals(run_ids=[run_id])  # the run's record in its versions' manifest files
        return None
    if context is not None:  # inside a step, no target: the step run
        get_index().run_write(lambda session: artifact_rows.set_metadata(session, metadata, step_run_id=context.step_run_id))
        update_linked_journals(step_run_ids=[context.step_run_id])
        return None
    raise MetadataTargetError(
        "log_metadata got no target",
        "pass artifact_version_id=, artifact_name= (and artifact_version=), step_name= with "
        "run_id_name_or_prefix=, or run_id_name_or_prefix=; or call it inside a step",
    )


class MetadataResourceTypes(str, enum.Enum):
    """What ``Client().create_run_metadata`` can attach metadata to (ZenML's
    names; ``model_versions`` and ``schedules`` are absent here)."""

    PIPELINE_RUN = "pipeline_runs"
    STEP_RUN = "step_runs"
    ARTIFACT_VERSION = "artifact_versions"


@dataclass(frozen=True)
class RunMetadataResource:
    """One target of ``create_run_metadata``: an id and its kind."""

    id: str | uuid.UUID
    type: MetadataResourceTypes | str


def create_run_metadata(metadata: dict[str, Any], resources: list[RunMetadataResource]) -> None:
    """Attach ``metadata`` to every resource, each found by its id."""
    _check(metadata)
    for resource in resources:
        try:
            kind = MetadataResourceTypes(getattr(resource.type, "value", resource.type))
        except ValueError:
            raise MetadataTargetError(
                f"cannot attach metadata to a {resource.type!r}",
                f"use one of: {', '.join(t.value for t in MetadataResourceTypes)} (artifactfs has no models)",
            ) from None
        if kind is MetadataResourceTypes.ARTIFACT_VERSION:
            _to_version(get_artifact_version(resource.id), metadata)
        elif kind is MetadataResourceTypes.STEP_RUN:
            _to_step(metadata, resource.id, None, None, None)
        else:
            log_metadata(metadata, run_id_name_or_prefix=resource.id)


@dataclass
class PipelineRunIdentifier:
    """A pipeline run for ``bulk_log_metadata``: by id, name or id prefix."""

    id: str | uuid.UUID | None = None
    name: str | None = None
    prefix: str | None = None

    @property
    def value(self) -> str:
        """The run's id, else its name, else its id prefix, as given."""
        return str(self.id or self.name or self.prefix or "")


@dataclass
class StepRunIdentifier:
    """A step run for ``bulk_log_metadata``: by id, or by name within ``run``."""

    id: str | uuid.UUID | None = None
    name: str | None = None
    run: PipelineRunIdentifier | None = None


@dataclass
class ArtifactVersionIdentifier:
    """An artifact version for ``bulk_log_metadata``: by id, or name and version."""

    id: str | uuid.UUID | None = None
    name: str | None = None
    version: str | int | None = None


def bulk_log_metadata(
    metadata: dict[str, Any],
    pipeline_runs: list[PipelineRunIdentifier] | None = None,
    step_runs: list[StepRunIdentifier] | None = None,
    artifact_versions: list[ArtifactVersionIdentifier] | None = None,
    model_versions: list[Any] | None = None,
    infer_models: bool = False,
    infer_artifacts: bool = False,
) -> None:
    """Attach ``metadata`` to several targets at once (ZenML's
    ``bulk_log_metadata``); ``infer_artifacts`` means every output of the
    running step. Model versions are refused: artifactfs has no models.

    Raises:
        MetadataTargetError: no metadata, no target, a model target, or
            ``infer_artifacts`` outside a step (also a ValueError).
    """
    if not metadata:
        raise MetadataTargetError("bulk_log_metadata got no metadata", "pass e.g. {'accuracy': 0.9}")
    if model_versions or infer_models:
        raise MetadataTargetError("artifactfs has no model versions to log metadata to",
                                  "log it to the artifact versions or runs instead")
    if not (pipeline_runs or step_runs or artifact_versions or infer_artifacts):
        raise MetadataTargetError("bulk_log_metadata got no target",
                                  "pass pipeline_runs=, step_runs=, artifact_versions= or infer_artifacts=True")
    context = current_step_run()
    if infer_artifacts and context is None:
        raise MetadataTargetError("bulk_log_metadata(infer_artifacts=True) works inside a running step only",
                                  "name the artifact versions with artifact_versions=")
    _check(metadata)
    for run in pipeline_runs or []:
        log_metadata(metadata, run_id_name_or_prefix=run.value)
    for step in step_runs or []:
        if step.id is not None:
            log_metadata(metadata, step_id=step.id)
        else:
            log_metadata(metadata, step_name=step.name, run_id_name_or_prefix=step.run.value if step.run else None)
    for version in artifact_versions or []:
        _to_version(get_artifact_version(version.id if version.id is not None else version.name,
                                         None if version.id is not None else version.version), metadata)
    if infer_artifacts:
        for output in context.output_names:
            _to_output(context, output, metadata)


def log_artifact_metadata(
    metadata: dict[str, Any], artifact_name: str | None = None, artifact_version: str | None = None
) -> None:
    """ZenML's older call: inside a step, an output of it (the only one when
    no name is given); elsewhere, the named artifact version (newest if no version)."""
    context = current_step_run()
    if context is not None and (artifact_name is None or artifact_name in context.output_names):
        return _to_output(context, _output_name(context, artifact_name), metadata)
    if artifact_name is None:
        raise MetadataTargetError("log_artifact_metadata outside a step needs artifact_name=",
                                  "name the artifact (and artifact_version=)")
    return _to_version(get_artifact_version(artifact_name, artifact_version), metadata)


def _output_name(context: StepRunContext, name: str | None) -> str:
    outputs = context.output_names
    if name is None:
        if len(outputs) != 1:
            raise MetadataTargetError(
                f"step {context.step!r} has {len(outputs)} outputs ({', '.join(outputs) or 'none'}), "
                "so the metadata has no single target",
                "pass artifact_name= with one of the output names",
            )
        return outputs[0]
    if name not in outputs:
        raise MetadataTargetError(f"step {context.step!r} has no output {name!r}",
                                  f"its outputs are: {', '.join(outputs) or 'none'}")
    return name


def _to_output(context: StepRunContext, output: str, metadata: dict[str, Any]) -> None:
    _check(metadata)
    context.output_metadata.setdefault(output, {}).update(metadata)


def _to_version(version, metadata: dict[str, Any]) -> None:
    get_index().run_write(lambda session: artifact_rows.set_metadata(session, metadata, version_id=version._pk))
    update_journals([version._pk])  # one rewrite per call, whatever the number of keys


def _run_metadata(session, metadata: dict[str, Any], run: str) -> int:
    run_id = pipeline_rows.find_run(session, run).id
    artifact_rows.set_metadata(session, metadata, run_id=run_id)
    return run_id


def _to_step(metadata, step_id, step_name, run, context) -> None:
    step_run_id = get_index().run_write(_step_metadata, metadata, step_id, step_name, run, context)
    update_linked_journals(step_run_ids=[step_run_id])


def _step_metadata(session, metadata, step_id, step_name, run, context) -> None:
    if step_id is not None:
        step = session.scalar(select(StepRun).where(StepRun.uuid == str(step_id)))
    else:
        run_id = pipeline_rows.find_run(session, str(run)).id if run is not None else (
            session.get(StepRun, context.step_run_id).run_id if context is not None else None)
        if run_id is None:
            raise MetadataTargetError("log_metadata(step_name=...) needs run_id_name_or_prefix= outside a run",
                                      "pass the run's name or id")
        step = session.scalar(select(StepRun).where(StepRun.run_id == run_id, StepRun.name == step_name))
    if step is None:
        raise MetadataTargetError(f"no step run {step_id or step_name!r}", "check the step name and the run")
    artifact_rows.set_metadata(session, metadata, step_run_id=step.id)
    return step.id


def _check(metadata: dict[str, Any]) -> None:
    if not isinstance(metadata, dict) or not all(isinstance(k, str) for k in metadata):
        raise MetadataTargetError("metadata must be a dict with string keys", "pass e.g. {'accuracy': 0.9}")
