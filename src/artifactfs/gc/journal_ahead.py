"""Whether a store's journal (the manifest file beside a payload) knows more
than the index about a version: a tag or a step-run link the index lacks.

An index restored from a backup taken before a version was tagged ``keep``
or read by a step run lacks what protects the version, while its manifest
file, rewritten at every such change, has it; no new payload need tell
(``gc.ownership``'s "behind" sees only payloads the index does not know).
So the pruner condemns no version whose manifest file is ahead of the index
(:func:`held_by_journals`), ``fsck`` says the index is older than the store
instead of offering to rewrite that manifest file from the index
(:func:`ahead_of_index`), and ``fsck --adopt`` merges what the index lacks
back (``gc.adopt``). Only what protects is compared: a tag or a link the
index lacks. What the index has and the manifest file lacks is an
out-of-date manifest file, which ``fsck --repair`` rewrites.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from artifactfs.gc.payloads import StoreCache, StoreFailure, describe_error
from artifactfs.index.db import Index
from artifactfs.index.gc import VersionRef
from artifactfs.index.journal import Gathered, gather
from artifactfs.stores.base import ArtifactStore
from artifactfs.stores.manifest import JournalError, journal_folder, read_manifest_file

#: Manifest files read at once while planning (a remote store answers each in a round trip).
READERS = 8


def link_keys(links: Iterable[Any]) -> set[tuple[str, str]]:
    """``(step run uuid, link name)`` of journal link records (unreadable ones left out)."""
    keys = set()
    for link in links:
        step = link.get("step") if isinstance(link, dict) else None
        if isinstance(step, dict) and isinstance(step.get("uuid"), str):
            keys.add((step["uuid"], str(link.get("name"))))
    return keys


def ahead_of_index(record: dict[str, Any], gathered: Gathered, tags: Iterable[str] | None = None) -> str | None:
    """What the manifest file ``record`` holds of its version that the
    index (``gathered``) lacks and that protects it: tags (only ``tags``
    when given: the pruner's keep tags) and links to step runs; None when
    nothing."""
    recorded = {str(t) for t in record.get("tags") or () if isinstance(t, str)}
    missing_tags = recorded - set(gathered.tags)
    if tags is not None:
        missing_tags &= set(tags)
    known = link_keys(gathered.producers) | link_keys(gathered.consumers)
    missing_links = (link_keys(record.get("producers") or ()) | link_keys(record.get("consumers") or ())) - known
    said = []
    if missing_tags:
        said.append(f"tag{'s' if len(missing_tags) > 1 else ''} {', '.join(sorted(missing_tags))}")
    if missing_links:
        said.append(f"{len(missing_links)} link{'s' if len(missing_links) > 1 else ''} to step runs")
    return " and ".join(said) or None


def behind_message(store: str, label: str, what: str) -> str:
    """The one sentence for a version whose manifest file is ahead of the index."""
    return (f"this index is older than store {store!r}: the manifest file of {label} records {what} this index "
            f"does not have (restored from a backup?); gc does not condemn it; run `artifactfs fsck --adopt --store "
            f"{store}` to bring them back")


def held_by_journals(index: Index, stores: StoreCache, candidates: list[VersionRef],
                     keep_tags: Iterable[str]) -> tuple[list[VersionRef], list[tuple[str, str]]]:
    """Of the versions a pass would condemn, those whose manifest file is
    not ahead of the index, and ``(store, why)`` for each one held back: its
    manifest file records a keep tag or a link the index lacks, or it could
    not be read from a store that failed (checked again next pass). A
    version without a manifest file (saved before they existed) or with a
    damaged one (``fsck`` reports it) is judged by the index alone."""
    if not candidates:
        return [], []
    keep_tags = set(keep_tags)
    with index.read() as session:
        gathered = gather(session, [ref.id for ref in candidates])

    opened: dict[int, ArtifactStore | StoreFailure] = {}
    for store_id in sorted({ref.store_id for ref in candidates if stores.here(ref.store_id)}):
        try:  # opened here, once each: the readers below share them
            opened[store_id] = stores.get(store_id)
        except StoreFailure as exc:
            opened[store_id] = exc

    def check(ref: VersionRef) -> tuple[str, str] | None:
        store = opened.get(ref.store_id)
        if store is None:
            return None  # its own machine's pass sweeps it, and checks it there
        if isinstance(store, StoreFailure):
            return store.store, f"{ref.label} is not condemned: {store.problem}"
        try:
            what = _ahead(store, ref, gathered.get(ref.id), keep_tags)
        except Exception as exc:  # noqa: BLE001 - any flavor error: cannot tell, so not now
            return store.name, (f"{ref.label} is not condemned this pass: its manifest file cannot be read "
                                f"({describe_error(store, exc)})")
        return None if what is None else (store.name, behind_message(store.name, ref.label, what))

    with ThreadPoolExecutor(max_workers=min(READERS, len(candidates)), thread_name_prefix="artifactfs-gc") as pool:
        verdicts = list(pool.map(check, candidates))
    kept = [ref for ref, held in zip(candidates, verdicts) if held is None]
    return kept, [held for held in verdicts if held is not None]


def _ahead(store: ArtifactStore, ref: VersionRef, gathered: Gathered | None, keep_tags: set[str]) -> str | None:
    if gathered is None:
        return None  # forgotten meanwhile: the condemn step re-reads the row
    try:
        record, _ = read_manifest_file(store, journal_folder(store, ref.uri, ref.uuid))
    except (FileNotFoundError, JournalError):
        return None
    return ahead_of_index(record, gathered, keep_tags)


__all__ = ["ahead_of_index", "behind_message", "held_by_journals", "link_keys"]
