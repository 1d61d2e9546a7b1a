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

__version__ = "0.1.0"

__all__ = [
    "ArtifactVersion",
    "Client",
    "__version__",
    "check_store",
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
