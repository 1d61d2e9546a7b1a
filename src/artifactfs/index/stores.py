"""Store rows: add, find, list, and turn a row into a working ``ArtifactStore``
with its secrets taken from the environment or the owner-only credentials file."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from artifactfs.errors import AlreadyExistsError, NotFoundError, StoreError
from artifactfs.index.models import IndexState, Store
from artifactfs.settings import get_settings

if TYPE_CHECKING:
    from artifactfs.stores import ArtifactStore

_STORE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


# Built once: it runs in every writing transaction.
# Core, not ORM: an ORM UPDATE also evaluates its WHERE against the session's
# objects (about 0.2 ms on every save).
_STATE = IndexState.__table__
_BUMP = update(_STATE).where(_STATE.c.id == 1).values(generation=_STATE.c.generation + 1)


def bump_generation(session: Session) -> None:
    """Tell pollers that something changed; call inside every writing transaction."""
    session.execute(_BUMP)


def get_generation(session: Session) -> int:
    return session.scalar(select(IndexState.generation).where(IndexState.id == 1)) or 0


def check_store_name(name: str) -> None:
    if not _STORE_NAME.match(name or ""):
        raise StoreError(
            f"store name {name!r} is not allowed",
            "use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
        )


def add_store(session: Session, name: str, flavor: str, root: str, options: dict[str, Any]) -> Store:
    """Insert a store row. Secret options must already have been split off."""
    check_store_name(name)
    from artifactfs.stores import get_flavor, split_secrets  # fsspec: only where a store is needed

    flavor_cls = get_flavor(flavor)
    _, secret = split_secrets(flavor_cls, options)
    if secret:
        raise StoreError(f"secret options {sorted(secret)} cannot be stored in the index")
    _, root_uri = flavor_cls.canonical_root(root)
    if session.scalar(select(Store).where(Store.name == name)) is not None:
        raise AlreadyExistsError(f"a store named {name!r} already exists", "pick another name")
    row = Store(name=name, flavor=flavor, root_uri=root_uri, options=options)
    session.add(row)
    bump_generation(session)
    session.flush()
    return row


def find_store_row(session: Session, name: str) -> Store:
    row = session.scalar(select(Store).where(Store.name == name))
    if row is None:
        known = list(session.scalars(select(Store.name).order_by(Store.name)))
        raise NotFoundError(
            f"no store named {name!r} (known stores: {', '.join(known) or 'none'})",
            "register it with `artifactfs store register`, or run `artifactfs init`",
            name=name, known=known,
        )
    return row


def list_store_rows(session: Session) -> list[Store]:
    return list(session.scalars(select(Store).order_by(Store.name)))


def remove_store_row(session: Session, name: str) -> None:
    session.delete(find_store_row(session, name))
    bump_generation(session)


def open_store(row: Store) -> ArtifactStore:
    """A usable store for a row: options from the row, secrets from the
    credentials file, then ``ARTIFACTFS_STORE_<NAME>_<OPTION>`` variables."""
    from artifactfs.stores import ArtifactStore, env_secrets, get_flavor

    flavor = get_flavor(row.flavor)
    secrets = get_settings().read_credentials().get(row.name, {}) | env_secrets(row.name, flavor.secret_options)
    store = ArtifactStore(row.name, flavor, row.root_uri, row.options, secrets)
    store.index_id = row.id
    return store
