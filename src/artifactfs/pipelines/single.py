"""A step called outside a pipeline, as ZenML runs it: its arguments are
bound and validated, those that cannot be parameters become external
artifacts, and the step runs as a one-step pipeline named after it
(caching off), recorded like any run; the caller gets the step's outputs
loaded back (one value, a tuple of several, or None)."""

from __future__ import annotations

from typing import Any

from artifactfs.enums import ArtifactSaveType
from artifactfs.pipelines import inputs as step_inputs
from artifactfs.pipelines.config import ExternalArtifact
from artifactfs.pipelines.outputs import StepDefinitionError
from artifactfs.pipelines.pipeline import Pipeline
from artifactfs.pipelines.step import Step


def bind(step: Step, args: tuple, kwargs: dict) -> dict[str, Any]:
    """The arguments by parameter name, defaults applied; StepDefinitionError when they do not fit."""
    try:
        bound = step.signature.bind(*args, **kwargs)
    except TypeError as exc:
        raise StepDefinitionError(f"step {step.name!r} called with wrong arguments: {exc}") from exc
    bound.apply_defaults()
    return dict(bound.arguments)


def validated(step: Step, args: tuple, kwargs: dict) -> dict[str, Any]:
    """The arguments converted against the step's annotations (a step called inside another running step)."""
    where = f"step {step.name!r}"
    return {key: step_inputs.convert(value, step.input_types[key], where, key)
            for key, value in bind(step, args, kwargs).items()}


def run_single_step(step: Step, args: tuple, kwargs: dict) -> Any:
    """Run ``step`` alone as a recorded one-step pipeline; its outputs' values."""
    arguments: dict[str, Any] = {}
    for key, value in bind(step, args, kwargs).items():
        arguments[key] = value if step_inputs.is_artifact(value) or _is_parameter(step, key, value) \
            else ExternalArtifact(value=value)

    def single_step_pipeline() -> None:
        step(**arguments)

    run = Pipeline(single_step_pipeline, name=step.name, enable_cache=False, quiet=True)()
    step_run = next(iter(run.steps.values()))
    outputs = [version.load() for versions in step_run.outputs.values() for version in versions
               if version.save_type == ArtifactSaveType.STEP_OUTPUT]
    if not outputs:
        return None
    return outputs[0] if len(outputs) == 1 else tuple(outputs)


def _is_parameter(step: Step, key: str, value: Any) -> bool:
    """ZenML's rule: a value that validates against the annotation and has a
    JSON form is a parameter; anything else is saved as an external artifact."""
    try:
        step_inputs.json_form(value)
        step_inputs.convert(value, step.input_types[key], f"step {step.name!r}", key)
    except (TypeError, ValueError):
        return False
    return True
