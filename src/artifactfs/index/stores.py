"""Store rows: add, find, list, change, remove, and turn a row into a working
``ArtifactStore`` with its secrets taken from the environment or the
owner-only credentials file (and only on a machine allowed to use it, see
``index.hosts``), and keep the opened stores (``OpenStores``: the one cache of
them, opened again when a row changes)."""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import CursorResult, func, select, update
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
    if value is None:
        raise StoreError("the index has no identity row (index_state)", "run `artifactfs init` to repair it")
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
    lost = cast(CursorResult, session.execute(
        update(ArtifactVersion)
        .where(ArtifactVersion.store_id == row.id, ArtifactVersion.state != VersionState.LOST.value)
        .values(state=VersionState.LOST.value, condemned_at=index_now())
    )).rowcount
    if session.scalar(select(ArtifactVersion.id).where(ArtifactVersion.store_id == row.id).limit(1)) is None:
        session.delete(row)
    else:
        row.name, row.removed_at = f"{row.name}~{row.id}", index_now()
    bump_generation(session)
    return lost


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


# -- opened stores ------------------------------------------------------------------------------


def _fingerprint(row: Store, credentials: dict[str, str]) -> tuple:
    """What opening a store depends on: its row and this machine's credentials for it."""
    return (row.name, row.flavor, row.root_uri, repr(sorted((row.options or {}).items())), row.host_id,
            row.removed_at, repr(sorted(credentials.items())))


class OpenStores:
    """The one cache of opened stores of an index: each store opened once per
    process (or per pass), shared by threads, and opened again after its row
    changed (``store update``, ``store login``, ``store remove``).

    Freshness: every ``recheck`` seconds at most, a ``get`` reads the index's
    generation (one small query; every row change bumps it) and the
    credentials file's change time; when either moved, the rows are read again and
    the stores whose row or credentials changed are dropped. ``recheck=0``
    checks on every ``get`` (the web view); ``None`` never does (one gc
    pass sees the rows as they were when it started).

    Args:
        index: the index whose store rows these are.
        pruning: open as the pruner does (``hosts.check_usable``).
        recheck: seconds between freshness checks, or None.
    """

    def __init__(self, index, pruning: bool = False, recheck: float | None = 1.0) -> None:
        self.index, self.pruning, self.recheck = index, pruning, recheck
        self._lock = threading.Lock()
        self._open: dict[int, tuple[tuple, ArtifactStore]] = {}
        self._checked_at = time.monotonic()
        self._seen: tuple[Any, float | None] | None = None
        self._credentials_read: tuple[tuple, dict[str, dict[str, str]]] | None = None

    def get(self, store_id: int) -> ArtifactStore:
        """The store of a row id, opened now or earlier; ``NotFoundError`` for a removed one."""
        self._check()
        with self._lock:
            entry = self._open.get(store_id)
        if entry is not None:
            return entry[1]
        with self.index.read() as session:
            row = session.get(Store, store_id)
            if row is None:
                raise NotFoundError(f"store {store_id} is not in the index any more", "it was removed")
            return self._opened(row)

    def by_name(self, name: str) -> ArtifactStore:
        """The store named ``name`` (``find_store_row`` explains an unknown name)."""
        store = self.find(name)
        if store is not None:
            return store
        with self.index.read() as session:
            return self._opened(find_store_row(session, name))

    def open_row(self, row: Store) -> ArtifactStore:
        """The store of a row just read (its cached copy if the row is unchanged)."""
        with self._lock:
            entry = self._open.get(row.id)
        if entry is not None and entry[0] == _fingerprint(row, self._credentials(row.name)):
            return entry[1]
        return self._opened(row, replace=True)

    def find(self, name: str) -> ArtifactStore | None:
        """The store named ``name`` if it is open (and still current), else None."""
        self._check()
        with self._lock:
            for fingerprint, store in self._open.values():
                if fingerprint[0] == name:
                    return store
        return None

    def get_if_fresh(self, store_id: int) -> ArtifactStore | None:
        """The store if it is open and its freshness needs no check now (no
        query, no file: what a caller that must not wait may use), else None."""
        if self.recheck is None or (self.recheck and time.monotonic() - self._checked_at < self.recheck):
            return self.get_if_open(store_id)
        return None

    def get_if_open(self, store_id: int) -> ArtifactStore | None:
        """The store if it is open (for redacting its secrets from a message)."""
        with self._lock:
            entry = self._open.get(store_id)
        return entry[1] if entry else None

    def forget(self, name: str | None = None) -> None:
        """Drop the opened store named ``name`` (every store: None); the next use opens it again."""
        with self._lock:
            for store_id in [i for i, (f, _) in self._open.items() if name is None or f[0] == name]:
                del self._open[store_id]

    def _opened(self, row: Store, replace: bool = False) -> ArtifactStore:
        fingerprint = _fingerprint(row, self._credentials(row.name))
        store = open_store(row, pruning=self.pruning)  # outside the lock: may build a client
        with self._lock:
            entry = self._open.get(row.id)
            if entry is None or (replace and entry[0] != fingerprint):
                entry = self._open[row.id] = (fingerprint, store)
            return entry[1]

    def _credentials(self, name: str) -> dict[str, str]:
        """This machine's credentials for store ``name``, the file read again only when it changed."""
        path = get_settings().credentials_path
        try:
            stamp: int | None = path.stat().st_ctime_ns  # a write or a chmod
        except OSError:
            stamp = None
        memo = self._credentials_read
        if memo is None or memo[0] != (path, stamp):
            memo = self._credentials_read = ((path, stamp), get_settings().read_credentials())
        return memo[1].get(name, {})

    def _check(self) -> None:
        """Drop the stores whose row or credentials changed, at most every ``recheck`` seconds."""
        if self.recheck is None or (self.recheck and time.monotonic() - self._checked_at < self.recheck):
            return
        with self._lock:
            if not self._open:
                self._checked_at = time.monotonic()
                return
        try:
            stamp = get_settings().credentials_path.stat().st_ctime_ns  # a write or a chmod
        except OSError:
            stamp = None
        with self.index.read() as session:
            generation = get_generation(session)
            seen = self._seen
            if seen is not None and not generation.moved_since(seen[0]) and seen[1] == stamp:
                self._checked_at = time.monotonic()
                return
            rows = {row.id: row for row in session.scalars(select(Store))}
            current = {i: _fingerprint(r, self._credentials(r.name)) for i, r in rows.items()}
        with self._lock:
            for store_id in [i for i, (f, _) in self._open.items() if current.get(i) != f]:
                del self._open[store_id]
            self._seen, self._checked_at = (generation, stamp), time.monotonic()


_shared_lock = threading.Lock()


def shared_stores(index) -> OpenStores:
    """This process's opened stores of ``index`` (the API's and migrate's); they
    live as long as the ``Index`` object (``reset_index_cache`` drops them)."""
    with _shared_lock:
        found = index.__dict__.get("opened_stores")
        if found is None:
            found = index.__dict__["opened_stores"] = OpenStores(index)
        return found
