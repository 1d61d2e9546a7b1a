"""Explicit deletes of artifact versions (ZenML's ``delete_artifact_version``
and ``prune_artifacts``), through DESIGN.md's delete protocol:

1. condemn, in one transaction that refuses a version some step run read
   or wrote (the version vanishes from the API and the mount at once);
2. sweep its payload (``index.sweep``, shared with the pruner), unless a
   live version overlaps it, and mark it swept;
3. forget the row.

``api`` may not import ``gc`` (it sits above), so the one shared piece, the
sweep of a payload, lives in ``index/sweep.py``, and the pruner's own
lease is not taken: each step is idempotent and re-checks the row's state
in its transaction, so a pruner running at the same time finds these rows
condemned or gone and skips them.

Without ``delete_from_artifact_store`` the payload stays where it is: a
``<name>/<uuid>`` folder without a row is an orphan that the pruner removes
after the orphan grace; a file or folder adopted in place is never an orphan.
"""

from __future__ import annotations

from collections.abc import Sequence

from artifactfs.api.stores import get_store
from artifactfs.index import get_index
from artifactfs.index import gc as gc_rows
from artifactfs.index.clock import index_now
from artifactfs.index.journal import journals_ahead, read_journal
from artifactfs.index.sweep import delete_payload, drop_journals, listed_files, live_overlap


def delete_versions(ids: Sequence[int], delete_metadata: bool, delete_from_artifact_store: bool) -> list[int]:
    """Condemn, then (as asked) sweep and forget; returns the ids condemned."""
    if not (delete_metadata or delete_from_artifact_store):
        return []
    index = get_index()
    condemned = index.run_write(gc_rows.condemn_requested, ids, index_now())
    if delete_from_artifact_store:
        _sweep(condemned)
    if delete_metadata:
        if not delete_from_artifact_store:  # the payloads stay for the orphan sweep: their manifest files go
            with index.read() as session:
                wanted = set(condemned)
                refs = [ref for ref in gc_rows.condemned_versions(session) if ref.id in wanted]
                names = {row.id: row.name for row in gc_rows.store_rows(session)}
            drop_journals(refs, lambda store_id: get_store(names[store_id]))
        index.run_write(gc_rows.forget, condemned, require_swept=delete_from_artifact_store)
    return condemned


def _sweep(ids: Sequence[int]) -> None:
    index = get_index()
    with index.read() as session:
        refs = gc_rows.sweepable(session, ids, index_now())
        names = {row.id: row.name for row in gc_rows.store_rows(session)}
        listed = listed_files(session, refs)
    swept = []
    for ref in refs:
        with index.read() as session:
            shared = live_overlap(session, ref)
        if shared is None:
            delete_payload(get_store(names[ref.store_id]), ref, listed.get(ref.id))
        swept.append(ref.id)
    index.run_write(gc_rows.mark_swept, swept, index_now())


def unused_version_ids() -> list[int]:
    """Live versions no step run links (ZenML's "unused"), any age. One
    whose manifest file names a step run the index does not know (an index
    restored from a backup taken before that run read it) is not unused,
    nor one whose manifest file cannot be read now (its store failed)."""
    with get_index().read() as session:
        refs = gc_rows.candidate_versions(session, index_now(), (), 0)
        names = {row.id: row.name for row in gc_rows.store_rows(session)}
    records = {}
    for ref in refs:
        try:
            records[ref.id] = read_journal(get_store(names[ref.store_id]), ref.uri, ref.uuid)
        except Exception:  # noqa: BLE001 - a store that fails: its versions are not pruned now
            continue
    with get_index().read() as session:
        ahead = journals_ahead(session, records, tags=())
    return [vid for vid in records if vid not in ahead]
