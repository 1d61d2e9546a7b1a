"""artifactfs: keep, find and read ML pipeline artifacts.

Stores on fsspec, a SQL lineage index, materializers, pipelines, and a
read-only FUSE mount of all of it.

The names below are imported on first use (PEP 562), so that importing one
layer (``artifactfs.cli`` for ``artifactfs --help``, ``artifactfs.index``
for the mount) does not import every other one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from artifactfs.lazy_import import lazy_names

__version__ = "0.1.0"

# name -> the module that defines it
_LAZY = {
    "ArtifactVersion": "artifactfs.api",
    "Client": "artifactfs.api",
    "check_store": "artifactfs.api",
    "get_artifact_version": "artifactfs.api",
    "get_store": "artifactfs.api",
    "init": "artifactfs.api",
    "list_stores": "artifactfs.api",
    "load_artifact": "artifactfs.api",
    "register_artifact": "artifactfs.api",
    "register_store": "artifactfs.api",
    "save_artifact": "artifactfs.api",
    "set_active_store": "artifactfs.api",
    "Pipeline": "artifactfs.pipelines",
    "Step": "artifactfs.pipelines",
    "get_step_context": "artifactfs.pipelines",
    "pipeline": "artifactfs.pipelines",
    "step": "artifactfs.pipelines",
    "ArtifactConfig": "artifactfs.pipelines",
    "ExternalArtifact": "artifactfs.pipelines",
    "log_artifact_metadata": "artifactfs.api.metadata",
    "log_metadata": "artifactfs.api.metadata",
    "bulk_log_metadata": "artifactfs.api.metadata",
    "load_artifact_visualization": "artifactfs.api.visualize",
    "Tag": "artifactfs.api.tags",
    "add_tags": "artifactfs.api.tags",
    "remove_tags": "artifactfs.api.tags",
    "ArtifactSaveType": "artifactfs.enums",
    "ArtifactType": "artifactfs.enums",
    "ExecutionMode": "artifactfs.enums",
    "VisualizationType": "artifactfs.enums",
}

__all__ = ["__version__", *sorted(_LAZY)]
__getattr__, __dir__ = lazy_names(__name__, _LAZY)


if TYPE_CHECKING:  # what type checkers and IDEs see
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
    from artifactfs.api.metadata import bulk_log_metadata, log_artifact_metadata, log_metadata
    from artifactfs.api.tags import Tag, add_tags, remove_tags
    from artifactfs.api.visualize import load_artifact_visualization
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
