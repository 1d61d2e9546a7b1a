"""artifactfs: keep, find and read ML pipeline artifacts.

Stores on fsspec, a SQL lineage index, materializers, pipelines, and a
read-only FUSE mount of all of it.
"""

from artifactfs.api import (
    ArtifactVersion,
    Client,
    check_store,
    get_artifact_version,
    get_store,
    init,
    list_stores,
    load_artifact,
    register_artifact,
    register_store,
    save_artifact,
    set_active_store,
)
from artifactfs.api.metadata import log_artifact_metadata, log_metadata
from artifactfs.enums import ArtifactSaveType, ArtifactType, ExecutionMode, VisualizationType
from artifactfs.pipelines import (
    ArtifactConfig,
    ExternalArtifact,
    Pipeline,
    Step,
    get_step_context,
    pipeline,
    step,
)

__version__ = "0.1.0"

__all__ = [
    "ArtifactConfig",
    "ArtifactSaveType",
    "ArtifactType",
    "ArtifactVersion",
    "ExecutionMode",
    "ExternalArtifact",
    "VisualizationType",
    "Client",
    "Pipeline",
    "Step",
    "__version__",
    "check_store",
    "get_artifact_version",
    "get_step_context",
    "get_store",
    "init",
    "list_stores",
    "load_artifact",
    "log_artifact_metadata",
    "log_metadata",
    "pipeline",
    "register_artifact",
    "register_store",
    "save_artifact",
    "set_active_store",
    "step",
]
