"""The lineage index: the single source of truth of what exists (SQLAlchemy 2).

The names below are imported on first use (PEP 562): a command that only
queries rows does not pay for the store flavors (fsspec) it never opens.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from artifactfs.lazy_import import lazy_names

_LAZY = {
    "Generation": "artifactfs.index.generation",
    "Index": "artifactfs.index.db",
    "IndexConflictError": "artifactfs.index.db",
    "IndexConnectionError": "artifactfs.index.db",
    "get_index": "artifactfs.index.db",
    "reset_index_cache": "artifactfs.index.db",
    "add_store": "artifactfs.index.stores",
    "bump_generation": "artifactfs.index.generation",
    "find_store_row": "artifactfs.index.stores",
    "get_generation": "artifactfs.index.generation",
    "list_store_rows": "artifactfs.index.stores",
    "open_store": "artifactfs.index.stores",
    "remove_store_row": "artifactfs.index.stores",
}

__all__ = sorted(_LAZY)
__getattr__, __dir__ = lazy_names(__name__, _LAZY)


if TYPE_CHECKING:
    from artifactfs.index.db import Index, IndexConflictError, IndexConnectionError, get_index, reset_index_cache
    from artifactfs.index.generation import Generation, bump_generation, get_generation
    from artifactfs.index.stores import (
        add_store,
        find_store_row,
        list_store_rows,
        open_store,
        remove_store_row,
    )
