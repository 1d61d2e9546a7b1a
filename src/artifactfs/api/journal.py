"""Keeping the store's journal current: after a version's tags, metadata or
step-run links change, its manifest file is rewritten from the index
(``index.journal``), once per change of a batch (a step's inputs, a run's
end, one tag or metadata call), with this process's opened stores."""

from __future__ import annotations

from collections.abc import Iterable

from artifactfs.api.stores import get_store
from artifactfs.index import get_index
from artifactfs.index.journal import rewrite_journals, versions_linked
from artifactfs.index.models import Store
from artifactfs.stores.base import ArtifactStore


def update_journals(version_ids: Iterable[int]) -> list[str]:
    """Rewrite the manifest files of these versions; the problems (also
    warned about: the index change stands either way)."""
    ids = sorted(set(version_ids))
    if not ids:
        return []
    index = get_index()
    names: dict[int, str] = {}

    def open_by_id(store_id: int) -> ArtifactStore | None:
        if store_id not in names:
            with index.read() as session:
                row = session.get(Store, store_id)
                names[store_id] = row.name if row is not None else ""
        return get_store(names[store_id]) if names[store_id] else None

    return rewrite_journals(index, ids, open_by_id)


def update_linked_journals(step_run_ids: Iterable[int] = (), run_ids: Iterable[int] = ()) -> list[str]:
    """Rewrite the manifest files of every version linked to these step
    runs or to any step of these runs (a step started, a run ended)."""
    with get_index().read() as session:
        ids = versions_linked(session, step_run_ids, run_ids)
    return update_journals(ids)


__all__ = ["update_journals", "update_linked_journals"]
