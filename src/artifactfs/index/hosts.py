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
characters>`` (longer if two machines share those). A local store belongs to
a machine and a folder: a second home on the same machine (another user, or
another ARTIFACTFS_HOME) gets ``default-<machine>-<user>`` (or
``-<hash of its folder>``).
"""

from __future__ import annotations

import hashlib
import os
import pwd
import re
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from artifactfs.errors import StoreError
from artifactfs.index.generation import bump_generation
from artifactfs.index.tables import artifact, artifact_version, store
from artifactfs.settings import DEFAULT_STORE, get_settings, machine_id
from artifactfs.index.sql import is_live

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Row
    from sqlalchemy.orm import Session

    from artifactfs.index.models import Store

CLAIM_SAMPLE = 20  # newest live payloads that must be here before a claim
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class ForeignStoreError(StoreError):
    """A local store that this machine does not own."""


def is_local_row(row: Store | Row) -> bool:
    """Whether a store's row (a model, or a row with its ``flavor``) is a local folder."""
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


def default_store_name(session: Session, machine: str, root: str | None = None) -> str:
    """The name of the default local store of ``machine`` and of the home
    whose default store folder is ``root`` (default: this process's); it may
    not exist yet. A local store belongs to a machine and a folder: two
    homes on one machine (two users, or two ARTIFACTFS_HOMEs) each get their
    own. A row of this machine and this folder whose folder is missing here
    is refused, never taken: a VM cloned with the first machine's
    /etc/machine-id looks exactly so."""
    root = os.path.normpath(str(root or get_settings().default_store_root))  # as add_store records it
    short = short_id(machine)
    candidates = (DEFAULT_STORE, f"{DEFAULT_STORE}-{short}", f"{DEFAULT_STORE}-{short_id(machine, 48)}",
                  f"{DEFAULT_STORE}-{short}-{short_id(_user())}",
                  f"{DEFAULT_STORE}-{short}-{hashlib.sha256(root.encode()).hexdigest()[:8]}")
    for name in candidates:
        row = session.execute(select(store.c.host_id, store.c.root_uri).where(store.c.name == name)).first()
        if row is None:
            return name
        if row.host_id != machine or row.root_uri != root:
            continue  # another machine's, or another home's on this machine
        if os.path.isdir(root):
            return name
        raise StoreError(
            f"store {name!r} is recorded as this machine's ({short}) default store in {root}, but that folder "
            "does not exist here: this may be a clone of that machine with the same /etc/machine-id",
            "on a cloned machine give it an id of its own (`rm /etc/machine-id && systemd-machine-id-setup`, or set "
            f"ARTIFACTFS_MACHINE_ID); if you deleted the folder yourself, `mkdir -p {root}` to use the store again")
    raise StoreError(f"machine ids collide on store names {', '.join(candidates)}",
                     "set ARTIFACTFS_STORE to a store of your own")


def _user() -> str:
    """The name of the user this process runs as (not $USER: setpriv and sudo keep it)."""
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


def claim_if_unowned(session: Session, row: Store, machine: str) -> bool:
    """Record ``machine`` as the owner of a local store that has none, if its
    root is a folder here holding the newest payloads of its live versions
    (a machine that only has a folder at the same path holds other files)."""
    if not is_local_row(row) or row.host_id is not None or not os.path.isdir(row.root_uri):
        return False
    from artifactfs.stores import ArtifactStore, get_flavor

    opened = ArtifactStore(row.name, get_flavor(row.flavor), row.root_uri, row.options)
    version = artifact_version.c
    uris = session.scalars(
        select(version.uri).where(version.store_id == row.id, is_live()).order_by(version.id.desc()).limit(CLAIM_SAMPLE)
    )
    for uri in uris:
        try:
            if not opened.exists(uri):  # beneath the root, no link followed
                return False
        except (StoreError, OSError):
            return False
    claim(session, row, machine)
    return True


def claim(session: Session, row: Store, machine: str) -> None:
    row.host_id = machine
    bump_generation(session)


def unreadable_here(connection: Session | Connection, names: list[str], machine: str | None = None) -> dict[str, int]:
    """``{artifact name: live versions kept in another machine's local store}``
    for ``names``: listings count them, but this machine can never read them
    (Core only: ``artifact list`` asks it without loading the ORM)."""
    machine = machine or machine_id()
    others = connection.execute(select(store.c.id, store.c.flavor).where(store.c.host_id.is_not(None),
                                                                         store.c.host_id != machine))
    foreign = [row.id for row in others if is_local_row(row)]
    if not foreign or not names:
        return {}
    version = artifact_version.c
    counted = (select(artifact.c.name, func.count(version.id))
               .join(artifact_version, version.artifact_id == artifact.c.id)
               .where(artifact.c.name.in_(names), version.store_id.in_(foreign), is_live())
               .group_by(artifact.c.name))
    return {name: count for name, count in connection.execute(counted)}


def local_roots_here(session: Session, machine: str | None = None) -> list[str]:
    """Root folders of the local stores this machine owns (the mount's ``df``
    reports the free space of the file systems holding them)."""
    from artifactfs.stores import get_flavor

    machine = machine or machine_id()
    rows = session.execute(select(store.c.root_uri, store.c.flavor).where(store.c.host_id == machine,
                                                                          store.c.removed_at.is_(None)))
    return sorted(root for root, flavor in rows if get_flavor(flavor).protocol == "file")
