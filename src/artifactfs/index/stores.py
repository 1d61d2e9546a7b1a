"""Store rows: add, find, list, change, remove, and turn a row into a working
``ArtifactStore`` with its secrets taken from the environment or the
owner-only credentials file (and only on a machine allowed to use it, see
``index.hosts``)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from artifactfs.errors import AlreadyExistsError, NotFoundError, StoreError
from artifactfs.index.generation import bump_generation, get_generation  # noqa: F401 - their old home
from artifactfs.index.hosts import check_usable
from artifactfs.index.clock import index_now
from artifactfs.index.models import Artifact, ArtifactVersion, IndexState, Store, VersionState
from artifactfs.settings import get_settings

if TYPE_CHECKING:
    from artifactfs.stores import ArtifactStore

_STORE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def index_identity(session: Session) -> str:
    """This index's uuid (set by migration 0004): what a store's marker names
    when this index owns the store."""
    value = session.scalar(select(IndexState.index_uuid).where(IndexState.id == 1))
    if value is None:  # an index migrated by hand without 0004's update
        value = str(uuid.uuid4())
        session.execute(update(IndexState).where(IndexState.id == 1, IndexState.index_uuid.is_(None))
                        .values(index_uuid=value))
        value = session.scalar(select(IndexState.index_uuid).where(IndexState.id == 1))
    return value


def check_store_name(name: str) -> None:
    if not _STORE_NAME.match(name or ""):
        raise StoreError(
            f"store name {name!r} is not allowed",
            "use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
        )


def add_store(session: Session, name: str, flavor: str, root: str, options: dict[str, Any],
              host_id: str | None = None) -> Store:
    """Insert a store row. Secret options must already have been split off.
    ``host_id``: the machine a local store belongs to."""
    check_store_name(name)
    from artifactfs.stores import get_flavor, split_secrets  # fsspec: only where a store is needed

    flavor_cls = get_flavor(flavor)
    _, secret = split_secrets(flavor_cls, options)
    if secret:
        raise StoreError(f"secret options {sorted(secret)} cannot be stored in the index")
    _, root_uri = flavor_cls.canonical_root(root)
    if session.scalar(select(Store).where(Store.name == name)) is not None:
        raise AlreadyExistsError(f"a store named {name!r} already exists", "pick another name")
    row = Store(name=name, flavor=flavor, root_uri=root_uri, options=options, host_id=host_id)
    session.add(row)
    bump_generation(session)
    session.flush()
    return row


def find_store_row(session: Session, name: str, lock: bool = False) -> Store:
    """The store named ``name`` (``lock``: row-locked until commit, read fresh)."""
    query = select(Store).where(Store.name == name, Store.removed_at.is_(None))
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    row = session.scalar(query)
    if row is None:
        known = list(session.scalars(select(Store.name).where(Store.removed_at.is_(None)).order_by(Store.name)))
        raise NotFoundError(
            f"no store named {name!r} (known stores: {', '.join(known) or 'none'})",
            "register it with `artifactfs store register`, or run `artifactfs init`",
            name=name, known=known,
        )
    return row


def list_store_rows(session: Session) -> list[Store]:
    return list(session.scalars(select(Store).where(Store.removed_at.is_(None)).order_by(Store.name)))


def remove_store_row(session: Session, name: str) -> None:
    session.delete(find_store_row(session, name))
    bump_generation(session)


def version_counts(session: Session, store_id: int) -> dict[str, int]:
    """How many versions of each state (live, condemned, lost) a store holds."""
    return dict(session.execute(
        select(ArtifactVersion.state, func.count()).where(ArtifactVersion.store_id == store_id)
        .group_by(ArtifactVersion.state)
    ).all())


def some_versions(session: Session, store_id: int, state: str, limit: int = 3) -> list[str]:
    """A few ``name:version`` labels of a store's versions in ``state``, for messages."""
    return [f"{n}:{v}" for n, v in session.execute(
        select(Artifact.name, ArtifactVersion.version).join(ArtifactVersion.artifact)
        .where(ArtifactVersion.store_id == store_id, ArtifactVersion.state == state)
        .order_by(ArtifactVersion.id).limit(limit)
    )]


def retire_store(session: Session, row: Store) -> int:
    """Remove a store from use. Its versions not yet lost become ``lost``
    (they vanish from the API and the mount; fsck lists them); a store that
    recorded versions keeps its row, renamed ``<name>~<id>`` (a name no user
    can register) and stamped ``removed_at``, so they still say where they
    were; one that never did is deleted. Returns how many became lost."""
    lost = session.execute(
        update(ArtifactVersion)
        .where(ArtifactVersion.store_id == row.id, ArtifactVersion.state != VersionState.LOST.value)
        .values(state=VersionState.LOST.value, condemned_at=index_now())
    ).rowcount
    if session.scalar(select(ArtifactVersion.id).where(ArtifactVersion.store_id == row.id).limit(1)) is None:
        session.delete(row)
    else:
        row.name, row.removed_at = f"{row.name}~{row.id}", index_now()
    bump_generation(session)
    return lost


def removed_name(stored: str) -> str:
    """The name a removed store had (``<name>~<id>`` -> ``<name>``)."""
    return stored.rsplit("~", 1)[0]


def set_options(session: Session, row: Store, changes: dict[str, Any], unset: Iterable[str] = ()) -> None:
    """Change a store's options in the index (none of them secret)."""
    from artifactfs.stores import get_flavor, split_secrets

    _, secret = split_secrets(get_flavor(row.flavor), changes)
    if secret:
        raise StoreError(f"secret options {sorted(secret)} cannot be stored in the index")
    options = {k: v for k, v in {**row.options, **changes}.items() if k not in set(unset)}
    row.options = options  # a new dict: the JSON column sees the change
    bump_generation(session)


def open_store(row: Store, pruning: bool = False) -> ArtifactStore:
    """A usable store for a row: options from the row, secrets from the
    credentials file, then ``ARTIFACTFS_STORE_<NAME>_<OPTION>`` variables.
    A local store of another machine is refused (``hosts.check_usable``;
    ``pruning``: also one with no recorded owner)."""
    from artifactfs.stores import ArtifactStore, env_secrets, get_flavor

    check_usable(row, pruning)
    flavor = get_flavor(row.flavor)
    secrets = get_settings().read_credentials().get(row.name, {}) | env_secrets(row.name, flavor.secret_options)
    store = ArtifactStore(row.name, flavor, row.root_uri, row.options, secrets)
    store.index_id = row.id
    return store
