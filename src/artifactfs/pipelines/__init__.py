"""``@step`` and ``@pipeline``: run pipeline code locally with lineage and caching."""

from artifactfs.api.context import StepRunContext, current_step_run
from artifactfs.pipelines.outputs import StepDefinitionError
from artifactfs.pipelines.pipeline import Pipeline, pipeline
from artifactfs.pipelines.step import Step, StepOutput, step


def get_step_context() -> StepRunContext:
    """The step run the calling code runs in (pipeline, run and step names)."""
    context = current_step_run()
    if context is None:
        raise RuntimeError("get_step_context() is only available inside a running step")
    return context


__all__ = [
    "Pipeline",
    "Step",
    "StepDefinitionError",
    "StepOutput",
    "StepRunContext",
    "get_step_context",
    "pipeline",
    "step",
]
