"""Artifact stores on fsspec: local, s3, gcs, azure and plugin flavors.

A store is a root URI plus a filesystem; every path is confined to the root.
Named stores are rows of the index: see ``artifactfs.get_store``.
"""

from artifactfs.stores.base import ArtifactStore
from artifactfs.stores.flavor import Flavor, env_secrets, parse_options, split_secrets
from artifactfs.stores.registry import (
    ENTRY_POINT_GROUP,
    FlavorInfo,
    flavor_for_uri,
    get_flavor,
    list_flavors,
    register_flavor,
)

__all__ = [
    "ArtifactStore",
    "ENTRY_POINT_GROUP",
    "Flavor",
    "FlavorInfo",
    "env_secrets",
    "flavor_for_uri",
    "get_flavor",
    "list_flavors",
    "parse_options",
    "register_flavor",
    "split_secrets",
]
