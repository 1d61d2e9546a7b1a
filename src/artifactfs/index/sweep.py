"""Deleting the payload of a condemned version: the one piece the pruner
(``gc``) and the API's explicit deletes (``Client().delete_artifact_version``,
``Client().prune_artifacts``) share. Both follow DESIGN.md's protocol,
condemn -> sweep -> forget; this module is the sweep of one version, placed
in ``index`` because ``api`` sits below ``gc`` and may not import it.

A payload that a live version overlaps (adopted paths may nest) is never
deleted: the row goes, the files stay. A folder registered in place loses
only the files its manifest lists. Every local delete goes through the
store, beneath its root's descriptor without following links
(``stores.beneath``): a payload (or a folder on the way to it) swapped for
a link raises ``LinkFound`` and nothing is deleted through it.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterable

from sqlalchemy.orm import Session

from artifactfs.index.artifacts import uri_owners
from artifactfs.index.gc import VersionRef, manifests
from artifactfs.index.models import PayloadKind
from artifactfs.stores.base import ArtifactStore
from artifactfs.stores.layout import manifest_file, viz_folder
from artifactfs.stores.manifest import journal_folder


def _gone(delete, uri: str) -> bool:
    """Run ``delete(uri)``; something already gone is fine. Returns whether it was there."""
    try:
        delete(uri)
        return True
    except FileNotFoundError:
        return False


def rmtree_quietly(store: ArtifactStore, uri: str) -> bool:
    return _gone(store.rmtree, uri)


def remove_quietly(store: ArtifactStore, uri: str) -> bool:
    return _gone(store.remove, uri)


def delete_payload(store: ArtifactStore, ref: VersionRef, listed: list[str] | None = None) -> list[str]:
    """Delete a condemned version's payload; a payload already gone is fine.

    A layout payload goes whole, with its visualizations (when the row lists
    any: a stray ``.viz`` folder becomes an orphan once the row is
    forgotten) and its manifest file. A folder registered in place loses only
    the files its manifest lists (``listed``: :func:`listed_files`), then the
    sub-folders those leave empty: anything added to it later stays. Returns
    what stayed there (paths relative to the payload)."""
    if ref.payload_kind == PayloadKind.FILE.value or ref.in_place:
        left = [] if ref.payload_kind == PayloadKind.FILE.value else _delete_listed(store, ref.uri, listed or [])
        if ref.payload_kind == PayloadKind.FILE.value:
            remove_quietly(store, ref.uri)
        remove_journal(store, ref)  # after the files: a lost index must not bring the version back
        return left
    rmtree_quietly(store, ref.uri)
    if ref.has_viz:
        rmtree_quietly(store, viz_folder(ref.uri))
    remove_quietly(store, manifest_file(ref.uri))
    return []


def remove_journal(store: ArtifactStore, ref: VersionRef) -> None:
    """Remove a version's manifest file (its journal), wherever it lies; gone already is fine."""
    remove_quietly(store, manifest_file(journal_folder(store, ref.uri, ref.uuid)))


def drop_journals(refs: Iterable[VersionRef], open_store: Callable[[int], ArtifactStore | None]) -> None:
    """Before rows are forgotten with their payloads left in place (``gc
    --only-metadata``, a delete of metadata only): their manifest files go
    first. A payload folder that still had a manifest file naming it, once
    its row is gone, would prove the index behind the store
    (``gc.orphans.known_to_store``) and stop every orphan sweep there; a
    file that cannot be removed does just that, until ``fsck --adopt``."""
    for ref in refs:
        try:
            store = open_store(ref.store_id)
            if store is not None:
                remove_journal(store, ref)
        except Exception:  # noqa: BLE001 - safe: the index then stays behind this store
            pass


def _delete_listed(store: ArtifactStore, uri: str, listed: list[str]) -> list[str]:
    for path in listed:
        remove_quietly(store, posixpath.join(uri, path))
    if not store.is_local:
        return store.find(uri) if store.isdir(uri) else []  # an object store has no empty folders to remove
    folders = {""}
    for path in listed:
        while path := posixpath.dirname(path):
            folders.add(path)
    root, top = store.beneath, store.local_relative(uri)  # no link followed (stores.beneath)
    for folder in sorted(folders, key=lambda p: (p.count("/") if p else -1), reverse=True):
        try:
            root.rmdir(posixpath.join(top, folder) if folder else top)  # only when empty
        except OSError:
            pass
    return store.find(uri) if root.kind(top) == "folder" else []


def listed_files(session: Session, refs: list[VersionRef]) -> dict[int, list[str]]:
    """The manifest paths of payloads registered in place: all they may lose."""
    wanted = [ref.id for ref in refs if ref.in_place]
    return {vid: [f.path for f in files] for vid, files in manifests(session, wanted).items()} if wanted else {}


def live_overlap(session: Session, ref: VersionRef) -> str | None:
    """The uri of a live version whose payload overlaps ``ref``'s, if any."""
    owners = uri_owners(session, ref.uri, exclude_id=ref.id, live_only=True)
    return owners[0].uri if owners else None
