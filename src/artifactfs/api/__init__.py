"""The Python API: stores by name, artifacts, and queries over the index."""

from artifactfs.api.artifacts import (
    ArtifactFile,
    ArtifactVersion,
    IntegrityError,
    get_artifact_version,
    load_artifact,
    register_artifact,
    save_artifact,
)
from artifactfs.api.client import Client
from artifactfs.api.stores import (
    check_store,
    describe_store,
    get_store,
    init,
    list_stores,
    register_store,
    set_active_store,
)

__all__ = [
    "ArtifactFile",
    "ArtifactVersion",
    "Client",
    "IntegrityError",
    "check_store",
    "describe_store",
    "get_artifact_version",
    "get_store",
    "init",
    "list_stores",
    "load_artifact",
    "register_artifact",
    "register_store",
    "save_artifact",
    "set_active_store",
]
