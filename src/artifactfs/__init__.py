"""artifactfs: keep, find and read ML pipeline artifacts.

Stores on fsspec, a SQL lineage index, materializers, pipelines, and a
read-only FUSE mount of all of it.
"""

from artifactfs.api import (
    check_store,
    get_store,
    init,
    list_stores,
    register_store,
    set_active_store,
)

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "check_store",
    "get_store",
    "init",
    "list_stores",
    "register_store",
    "set_active_store",
]
