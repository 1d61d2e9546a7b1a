"""Which machine a local store belongs to: the check every opener of a store
makes, the name of this machine's own default store, and the claim of local
stores recorded before stores had owners.

A local store is a folder on one machine's disk. Its row records that
machine's id (``settings.machine_id()``, never the hostname: cloned VMs
share one) in ``host_id``. Every other machine sees its versions in the
index but never reads, writes, repairs or sweeps it: opening it raises
:class:`ForeignStoreError`, which names the owner and points to a shared
store. Remote stores (S3, GCS, Azure) have no owner.

Rows from before owners were recorded have ``host_id`` NULL. Such a store
is used only where its root folder exists, and never by the pruner or fsck
(a machine that merely has a folder at the same path would take the owner's
payloads for missing or orphaned) until a machine claims it: `artifactfs
init` (or the first use of the default store) claims it when its root is a
folder here that holds the newest payloads of its live versions;
``artifactfs store update NAME --on-this-machine`` records it explicitly.

Default store names: the first machine of an index owns ``default``; every
other machine's own default local store is ``default-<machine id, first 8
characters>`` (longer if two machines share those).
"""

from __future__ import annotations

import os
import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from artifactfs.errors import StoreError
from artifactfs.index.generation import bump_generation
from artifactfs.index.models import ArtifactVersion, Store, VersionState
from artifactfs.settings import DEFAULT_STORE, machine_id

CLAIM_SAMPLE = 20  # newest live payloads that must be here before a claim
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class ForeignStoreError(StoreError):
    """A local store that this machine does not own."""


def is_local_row(row: Store) -> bool:
    from artifactfs.stores import get_flavor  # fsspec: only where a store is needed

    return get_flavor(row.flavor).protocol == "file"


def short_id(host_id: str, length: int = 8) -> str:
    """A machine id as users see it: its first characters, safe in a store name."""
    return _UNSAFE.sub("-", host_id)[:length].strip("-") or "unknown"


def owner_label(row: Store) -> str:
    """Who a store belongs to, for listings."""
    if not is_local_row(row):
        return "shared"
    if row.host_id is None:
        return "unknown (recorded before machines were)"
    return "this machine" if row.host_id == machine_id() else f"machine {short_id(row.host_id)}"


def check_usable(row: Store, pruning: bool = False) -> None:
    """Raise :class:`ForeignStoreError` unless this machine may use the store
    (``pruning``: delete from it, or judge its payloads missing)."""
    if not is_local_row(row) or row.host_id == machine_id():
        return
    where = f"its files are on that machine, at {row.root_uri}"
    hint = ("keep what several machines need in a shared store (S3, GCS, Azure): "
            f"`artifactfs migrate --from {row.name} --to <shared store>` on its machine")
    if row.host_id is not None:
        raise ForeignStoreError(
            f"store {row.name!r} is the local store of machine {short_id(row.host_id)}, not of this one "
            f"({short_id(machine_id())}): {where}", hint)
    if pruning:
        raise ForeignStoreError(
            f"store {row.name!r} is a local store with no recorded owner: the pruner and fsck leave it alone",
            f"on the machine that holds {row.root_uri}, run `artifactfs store update {row.name} --on-this-machine`")
    if not os.path.isdir(row.root_uri):
        raise ForeignStoreError(
            f"store {row.name!r} is a local store with no recorded owner, and its folder {row.root_uri} "
            "does not exist on this machine", hint)


def default_store_name(session: Session, machine: str) -> str:
    """The name of ``machine``'s own default local store (it may not exist yet)."""
    candidates = (DEFAULT_STORE, f"{DEFAULT_STORE}-{short_id(machine)}", f"{DEFAULT_STORE}-{short_id(machine, 48)}")
    for name in candidates:
        row = session.scalar(select(Store).where(Store.name == name))
        if row is None or row.host_id == machine:
            return name
    raise StoreError(f"machine ids collide on store names {', '.join(candidates)}",
                     "set ARTIFACTFS_STORE to a store of your own")


def claim_if_unowned(session: Session, row: Store, machine: str) -> bool:
    """Record ``machine`` as the owner of a local store that has none, if its
    root is a folder here holding the newest payloads of its live versions
    (a machine that only has a folder at the same path holds other files)."""
    if not is_local_row(row) or row.host_id is not None or not os.path.isdir(row.root_uri):
        return False
    from artifactfs.stores import ArtifactStore, get_flavor

    store = ArtifactStore(row.name, get_flavor(row.flavor), row.root_uri, row.options)
    uris = session.scalars(
        select(ArtifactVersion.uri)
        .where(ArtifactVersion.store_id == row.id, ArtifactVersion.state == VersionState.LIVE.value)
        .order_by(ArtifactVersion.id.desc()).limit(CLAIM_SAMPLE)
    )
    for uri in uris:
        try:
            if not store.exists(uri):  # beneath the root, no link followed
                return False
        except (StoreError, OSError):
            return False
    claim(session, row, machine)
    return True


def claim(session: Session, row: Store, machine: str) -> None:
    row.host_id = machine
    bump_generation(session)
