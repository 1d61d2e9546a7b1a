"""The lineage index: the single source of truth of what exists (SQLAlchemy 2)."""

from artifactfs.index.db import Index, get_index, reset_index_cache
from artifactfs.index.stores import (
    add_store,
    bump_generation,
    find_store_row,
    get_generation,
    list_store_rows,
    open_store,
    remove_store_row,
)

__all__ = [
    "Index",
    "add_store",
    "bump_generation",
    "find_store_row",
    "get_generation",
    "get_index",
    "list_store_rows",
    "open_store",
    "remove_store_row",
    "reset_index_cache",
]
