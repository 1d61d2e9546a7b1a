"""ZenML 0.98 names -> artifactfs names: the ONE place the ported ZenML tests
and docs snippets change (their ``zenml`` imports come from here).

Every name is looked up lazily and tolerantly, so that the ported tests also
run against an artifactfs that lacks a name (that test then fails, it does
not break the collection of the others): this is how the before/after pass
counts in docs/zenml.md were measured.
"""

from __future__ import annotations

import importlib

_NAMES = {
    # zenml, zenml.client, zenml.artifacts.utils
    "Client": "artifactfs.Client",
    "ArtifactConfig": "artifactfs.ArtifactConfig",
    "ExternalArtifact": "artifactfs.ExternalArtifact",
    "get_step_context": "artifactfs.get_step_context",
    "load_artifact": "artifactfs.load_artifact",
    "log_artifact_metadata": "artifactfs.log_artifact_metadata",
    "log_metadata": "artifactfs.log_metadata",
    "load_artifact_visualization": "artifactfs.load_artifact_visualization",
    "bulk_log_metadata": "artifactfs.bulk_log_metadata",
    "PipelineRunIdentifier": "artifactfs.api.metadata.PipelineRunIdentifier",
    "StepRunIdentifier": "artifactfs.api.metadata.StepRunIdentifier",
    "ArtifactVersionIdentifier": "artifactfs.api.metadata.ArtifactVersionIdentifier",
    "MetadataResourceTypes": "artifactfs.api.metadata.MetadataResourceTypes",
    "RunMetadataResource": "artifactfs.api.metadata.RunMetadataResource",
    "pipeline": "artifactfs.pipeline",
    # zenml.utils.tag_utils
    "Tag": "artifactfs.Tag",
    "add_tags": "artifactfs.add_tags",
    "remove_tags": "artifactfs.remove_tags",
    "register_artifact": "artifactfs.register_artifact",
    "save_artifact": "artifactfs.save_artifact",
    "step": "artifactfs.step",
    "ArtifactResponse": "artifactfs.api.client.ArtifactView",
    "UnmaterializedArtifact": "artifactfs.pipelines.UnmaterializedArtifact",
    # zenml.types
    "CSVString": "artifactfs.types.CSVString",
    "HTMLString": "artifactfs.types.HTMLString",
    "JSONString": "artifactfs.types.JSONString",
    "MarkdownString": "artifactfs.types.MarkdownString",
    # zenml.io / zenml.utils / zenml.logger / zenml.constants / zenml.environment
    "fileio": "artifactfs.fileio",
    "io_utils": "artifactfs.io_utils",
    "get_logger": "logging.getLogger",
    "ENV_ZENML_DEBUG": "artifactfs.settings.ENV_DEBUG",  # none: its test is skipped
    "ENV_ZENML_CONFIG_PATH": "artifactfs.settings.ENV_CONFIG_DIR",
    "REMOTE_FS_PREFIX": "artifactfs.io_utils.REMOTE_FS_PREFIX",
    "Environment": "artifactfs.materializers.cloudpickle_fallback.Environment",
    # zenml.enums / zenml.exceptions / zenml.metadata.metadata_types
    "ExecutionStatus": "artifactfs.enums.RunStatus",
    "StepRunInputArtifactType": "artifactfs.enums.StepRunInputArtifactType",
    "ArtifactType": "artifactfs.enums.ArtifactType",
    "ArtifactSaveType": "artifactfs.enums.ArtifactSaveType",
    "ExecutionMode": "artifactfs.enums.ExecutionMode",
    "VisualizationType": "artifactfs.enums.VisualizationType",
    "MaterializerInterfaceError": "artifactfs.materializers.MaterializerInterfaceError",
    "StepInterfaceError": "artifactfs.pipelines.outputs.StepDefinitionError",
    "DType": "artifactfs.enums.DType",
    "MetadataTypeTuple": "artifactfs.enums.MetadataTypeTuple",
    "MetadataType": "artifactfs.enums.MetadataType",
    # zenml.materializers.* and the numpy/pandas integrations
    "BaseMaterializer": "artifactfs.materializers.BaseMaterializer",
    "BuiltInContainerMaterializer": "artifactfs.materializers.ContainerMaterializer",
    "CloudpickleMaterializer": "artifactfs.materializers.CloudpickleMaterializer",
    "DEFAULT_FILENAME": "artifactfs.materializers.cloudpickle_fallback.PICKLE_FILE",
    "DataclassMaterializer": "artifactfs.materializers.DataclassMaterializer",
    "NumpyMaterializer": "artifactfs.materializers.NumpyMaterializer",
    "PandasMaterializer": "artifactfs.materializers.PandasMaterializer",
    "PathMaterializer": "artifactfs.materializers.PathMaterializer",
    "PydanticMaterializer": "artifactfs.materializers.PydanticMaterializer",
    "materializer_registry": "artifactfs.materializers.registry",
}


# ZenML constants whose artifactfs counterpart is a plain value.
_VALUES = {
    # artifactfs keeps no client-side cache of runs, so the variable ZenML's
    # tests set to turn theirs off changes nothing here.
    "ENV_ZENML_PREVENT_CLIENT_SIDE_CACHING": "ZENML_PREVENT_CLIENT_SIDE_CACHING",
}


class Missing:
    """Stands for a ZenML name artifactfs does not offer: any use fails."""

    def __init__(self, name: str, target: str) -> None:
        self._what = f"{name} (artifactfs has no {target})"

    def __getattr__(self, attr: str):
        raise AttributeError(self._what)

    def __call__(self, *args, **kwargs):
        raise NotImplementedError(self._what)

    def __iter__(self):  # a missing list of names is an empty one
        return iter(())


def __getattr__(name: str):
    if name in _VALUES:
        return _VALUES[name]
    target = _NAMES.get(name)
    if target is None:
        raise AttributeError(f"the shim maps no ZenML name {name!r}")
    module, _, attr = target.rpartition(".")
    try:
        value = getattr(importlib.import_module(module), attr)
    except AttributeError:  # a sub-module not imported by its package yet
        try:
            value = importlib.import_module(target)
        except ImportError:
            value = Missing(name, target)
    except ImportError:
        value = Missing(name, target)
    globals()[name] = value
    return value
