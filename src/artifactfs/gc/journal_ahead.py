"""Whether a store's journal (the manifest file beside a payload) knows more
than the index about a version: a tag or a step-run link the index lacks.

An index restored from a backup taken before a version was tagged ``keep``
or read by a step run lacks what protects the version, while its manifest
file, rewritten at every such change, has it; no new payload need tell
(``gc.ownership``'s "behind" sees only payloads the index does not know).
So the pruner condemns no version whose manifest file is ahead of the index
(:func:`held_by_journals`, and the sweep again: :func:`held_at_sweep`),
``fsck`` says the index is older than the store instead of offering to
rewrite that manifest file from the index, and ``fsck --adopt`` merges
what the index lacks back (``gc.adopt``). The comparison itself is
``index.journal.ahead_of_index`` (``Client().prune_artifacts`` makes it
too). Only what protects is compared: what the index has and the manifest
file lacks is an out-of-date manifest file, which ``fsck --repair`` rewrites.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from artifactfs.gc.payloads import StoreCache, StoreFailure, describe_error
from artifactfs.index.db import Index
from artifactfs.index.gc import VersionRef
from artifactfs.index.journal import journals_ahead, read_journal
from artifactfs.stores.base import ArtifactStore

#: Manifest files of a remote store read at once while planning (each is a round trip).
READERS = 8


def behind_message(store: str, label: str, what: str, kept: str = "gc does not condemn it") -> str:
    """The one sentence for a version whose manifest file is ahead of the
    index; ``kept``: what is left alone because of it."""
    return (f"this index is older than store {store!r}: the manifest file of {label} records {what} this index "
            f"does not have (restored from a backup?); {kept}; run `artifactfs fsck --adopt --store "
            f"{store}` to bring them back")


def held_by_journals(index: Index, stores: StoreCache, candidates: list[VersionRef], keep_tags: Iterable[str]
                     ) -> tuple[list[VersionRef], list[tuple[str, str]], list[int]]:
    """Of the versions a pass would condemn: those whose manifest file is
    not ahead of the index; ``(store, why)`` for each one held back (its
    manifest file records a keep tag or a link the index lacks); and the ids
    of those whose manifest file could not be read now (a store that
    failed: condemned, hidden, and checked by the sweep before it deletes
    anything, :func:`held_at_sweep`). A version without a manifest file
    (saved before they existed) or with a damaged one (``fsck`` reports it)
    is judged by the index alone."""
    if not candidates:
        return [], [], []
    opened: dict[int, ArtifactStore | StoreFailure] = {}
    for store_id in sorted({ref.store_id for ref in candidates if stores.here(ref.store_id)}):
        try:  # opened here, once each: the readers below share them
            opened[store_id] = stores.get(store_id)
        except StoreFailure as exc:
            opened[store_id] = exc

    def read(ref: VersionRef) -> dict | None | StoreFailure:
        store = opened.get(ref.store_id)
        if store is None:
            return None  # another machine's store: its own pass sweeps it, and checks it there
        if isinstance(store, StoreFailure):
            return store
        try:
            return read_journal(store, ref.uri, ref.uuid)
        except Exception as exc:  # noqa: BLE001 - any flavor error: the store failed, the sweep will tell
            return StoreFailure(store.name, describe_error(store, exc))

    # A local store's files are read in this thread (threads only fight over
    # the GIL there); a remote store's, several at once (each a round trip).
    remote = [ref for ref in candidates if not getattr(opened.get(ref.store_id), "is_local", True)]
    records = {ref.id: read(ref) for ref in candidates if getattr(opened.get(ref.store_id), "is_local", True)}
    if remote:
        with ThreadPoolExecutor(max_workers=min(READERS, len(remote)), thread_name_prefix="artifactfs-gc") as pool:
            records.update(zip((ref.id for ref in remote), pool.map(read, remote)))
    unchecked = [vid for vid, record in records.items() if isinstance(record, StoreFailure)]
    with index.read() as session:
        ahead = journals_ahead(session, {vid: r for vid, r in records.items() if isinstance(r, dict)}, keep_tags)
    names = {ref.id: ref for ref in candidates}
    held = [(stores.name(names[vid].store_id), behind_message(stores.name(names[vid].store_id), names[vid].label,
                                                              what)) for vid, what in ahead.items()]
    return [ref for ref in candidates if ref.id not in ahead], held, unchecked


def held_at_sweep(index: Index, store: ArtifactStore, refs: list[VersionRef],
                  keep_tags: Iterable[str]) -> dict[int, str]:
    """Right before condemned versions' payloads are deleted: ``{id: why}``
    of those whose manifest file is ahead of the index, or cannot be read
    now. For versions the plan did not check (condemned by an earlier pass,
    or while their store failed)."""
    held: dict[int, str] = {}
    records: dict[int, dict | None] = {}
    for ref in refs:
        try:
            records[ref.id] = read_journal(store, ref.uri, ref.uuid)
        except Exception as exc:  # noqa: BLE001 - any flavor error: cannot tell, so not now
            held[ref.id] = f"not deleted: its manifest file cannot be read ({describe_error(store, exc)})"
    if records:
        with index.read() as session:
            ahead = journals_ahead(session, records, keep_tags)
        labels = {ref.id: ref.label for ref in refs}
        for vid, what in ahead.items():
            held[vid] = behind_message(store.name, labels[vid], what, "its payload is not deleted")
    return held


__all__ = ["behind_message", "held_at_sweep", "held_by_journals"]
