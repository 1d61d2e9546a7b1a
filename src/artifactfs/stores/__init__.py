"""Artifact stores on fsspec: local, s3, gcs, azure and plugin flavors.

A store is a root URI plus a filesystem; every path is confined to the root.
Named stores are rows of the index: see ``artifactfs.get_store``.

The names below are imported on first use (PEP 562), so that importing
``artifactfs.stores.hashing`` does not import fsspec.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from artifactfs.lazy_import import lazy_names

_LAZY = {
    "ArtifactStore": "artifactfs.stores.base",
    "Flavor": "artifactfs.stores.flavor",
    "env_prefix": "artifactfs.stores.flavor",
    "env_secrets": "artifactfs.stores.flavor",
    "parse_options": "artifactfs.stores.flavor",
    "split_secrets": "artifactfs.stores.flavor",
    "ENTRY_POINT_GROUP": "artifactfs.stores.registry",
    "FlavorInfo": "artifactfs.stores.registry",
    "flavor_for_uri": "artifactfs.stores.registry",
    "get_flavor": "artifactfs.stores.registry",
    "list_flavors": "artifactfs.stores.registry",
    "register_flavor": "artifactfs.stores.registry",
}

__all__ = sorted(_LAZY)
__getattr__, __dir__ = lazy_names(__name__, _LAZY)


if TYPE_CHECKING:
    from artifactfs.stores.base import ArtifactStore
    from artifactfs.stores.flavor import Flavor, env_prefix, env_secrets, parse_options, split_secrets
    from artifactfs.stores.registry import (
        ENTRY_POINT_GROUP,
        FlavorInfo,
        flavor_for_uri,
        get_flavor,
        list_flavors,
        register_flavor,
    )
