"""``@step`` and ``@pipeline``: run pipeline code locally with lineage and caching."""

from artifactfs.api.context import StepRunContext
from artifactfs.pipelines.config import ArtifactConfig, ExternalArtifact, UnmaterializedArtifact
from artifactfs.pipelines.context import StepContext, get_step_context
from artifactfs.pipelines.outputs import StepDefinitionError
from artifactfs.pipelines.pipeline import Pipeline, pipeline
from artifactfs.pipelines.step import Step, StepOutput, step


__all__ = [
    "ArtifactConfig",
    "ExternalArtifact",
    "Pipeline",
    "StepContext",
    "Step",
    "StepDefinitionError",
    "StepOutput",
    "UnmaterializedArtifact",
    "StepRunContext",
    "get_step_context",
    "pipeline",
    "step",
]
