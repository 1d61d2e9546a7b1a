"""The Python API: stores by name, artifacts, and queries over the index."""

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
    "check_store",
    "describe_store",
    "get_store",
    "init",
    "list_stores",
    "register_store",
    "set_active_store",
]
