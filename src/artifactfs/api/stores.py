"""Named stores for users: init, register, look up (by name or by URI), make
active, and check that a store really works."""

from __future__ import annotations

import logging
import os
import re
import threading
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from artifactfs.errors import AlreadyExistsError, ArtifactfsError, NotFoundError, StoreError
from artifactfs.faults import fault_point
from artifactfs.index import add_store, find_store_row, get_index, list_store_rows, open_store
from artifactfs.api.context import remove_after_step
from artifactfs.index import hosts
from artifactfs.index.db import Index
from artifactfs.index.models import Store
from artifactfs.materializers.base import set_api_hooks
from artifactfs.settings import DEFAULT_STORE, get_settings, machine_id, private_dir
from artifactfs.stores import ArtifactStore, get_flavor, split_secrets
from artifactfs.stores.flavor import is_local_uri
from artifactfs.stores.secrets import secret_names
from artifactfs.index.stores import index_identity, shared_stores
from artifactfs.stores.marker import read_marker, write_marker

log = logging.getLogger("artifactfs")


@dataclass(frozen=True)
class StoreInfo:
    name: str
    flavor: str
    path: str
    options: dict[str, Any]
    active: bool
    secrets: tuple[str, ...]  # names only, never values
    owner: str = "shared"  # "shared", "this machine", "machine <id>" (see index.hosts)


def init() -> ArtifactStore:
    """Create the index and this machine's own default local store (see
    ``index.hosts`` for its name); safe to call again."""
    settings = get_settings()
    machine = machine_id()

    def own_default(session) -> Store:
        legacy = session.scalar(select(Store).where(Store.name == DEFAULT_STORE, Store.removed_at.is_(None)))
        if legacy is not None and legacy.root_uri == str(settings.default_store_root):
            hosts.claim_if_unowned(session, legacy, machine)  # a store recorded before owners were
        name = hosts.default_store_name(session, machine)
        fault_point("default_store_named")
        row = session.scalar(select(Store).where(Store.name == name))
        if row is None:
            private_dir(settings.default_store_root)
            return add_store(session, name, "local", str(settings.default_store_root), {}, host_id=machine)
        if row.host_id != machine or row.root_uri != os.path.normpath(settings.default_store_root):
            # another machine or home took the name since we looked: look again
            raise AlreadyExistsError(f"store {name!r} was just created by another machine")
        return row

    index = get_index()
    for attempt in range(3):
        try:
            row = index.run_write(own_default)
            break
        except (AlreadyExistsError, IntegrityError):
            # Another machine created that name at the same moment (PostgreSQL
            # does not serialize writers as SQLite's BEGIN IMMEDIATE does): the
            # next look finds this machine's name.
            if attempt == 2:
                raise
    _defaults[(index.url, machine)] = row.name
    store = open_store(row)
    mark_new_store(store)
    return store


# (index URL, machine id) -> the name of that machine's own default store.
_defaults: dict[tuple[str, str], str] = {}


def own_default_store_name(index: Index | None = None) -> str:
    """This machine's default local store, created (or claimed) on first use
    (``index``: the process's index, when the caller holds it already)."""
    index, machine = index or get_index(), machine_id()
    name = _defaults.get((index.url, machine))
    if name is None:
        with index.read() as session:
            name = hosts.default_store_name(session, machine)
            fault_point("default_store_looked_up")
            # Ours, checked again: each statement has its own snapshot on PostgreSQL,
            # and another machine may have taken the name since the line above.
            exists = session.scalar(select(Store.id).where(
                Store.name == name, Store.host_id == machine,
                Store.root_uri == os.path.normpath(get_settings().default_store_root))) is not None
            legacy = session.scalar(select(Store).where(Store.name == DEFAULT_STORE))
        claimable = legacy is not None and legacy.host_id is None \
            and legacy.root_uri == str(get_settings().default_store_root)
        if not exists or claimable:
            name = init().name
        _defaults[(index.url, machine)] = name
    return name


def active_store_name(index: Index | None = None) -> str:
    """The store new artifacts go to: the one chosen on this machine
    (``ARTIFACTFS_STORE`` or ``store set-active``), else its own default."""
    return get_settings().chosen_store or own_default_store_name(index)


def register_store(name: str, flavor: str, path: str, options: dict[str, Any] | None = None) -> ArtifactStore:
    """Add a store. Secret options go to the owner-only credentials file, the
    rest into the index. The store is not contacted (see :func:`check_store`)."""
    flavor_cls = get_flavor(flavor)
    flavor_cls.require_installed()
    public, secret = split_secrets(flavor_cls, options or {})
    local = flavor_cls.protocol == "file"
    try:
        # A local folder belongs to this machine (see index.hosts).
        row = get_index().run_write(add_store, name, flavor, path, public, host_id=machine_id() if local else None)
    except IntegrityError as exc:  # registered by another process at the same moment
        raise AlreadyExistsError(f"a store named {name!r} already exists", "pick another name") from exc
    if local:
        flavor_cls.filesystem({}).makedirs(row.root_uri, exist_ok=True)
    if secret:
        get_settings().write_credentials(name, secret)
    store = open_store(row)
    if local:  # a remote store is not contacted here: it is marked on first use
        mark_new_store(store)
    return store


# A process keeps each store it opened (and its fsspec filesystem, with its
# connections) for reuse; `store update` and `store login` drop the copy.
def get_store(name: str | None = None, index: Index | None = None) -> ArtifactStore:
    """The named store, or the active one (this machine's default unless
    changed); ``index``: the process's index, when the caller holds it already."""
    index = index or get_index()
    name = name or active_store_name(index)
    stores = shared_stores(index)
    store = stores.find(name)
    if store is None:
        with index.read() as session:
            row = find_store_row(session, name)
        if row.host_id is None and hosts.is_local_row(row):
            row = index.run_write(_claim_if_safe, name)  # recorded before owners were: ours?
        store = stores.open_row(row)
        mark_new_store(store)  # a process's first use of the store
    return store


def _claim_if_safe(session, name: str) -> Store:
    row = find_store_row(session, name, lock=True)
    hosts.claim_if_unowned(session, row, machine_id())
    return row


def forget_opened(name: str | None) -> None:
    """Drop this process's opened copy of a store whose row changed (every store: None)."""
    shared_stores(get_index()).forget(name)


def mark_new_store(store: ArtifactStore) -> None:
    """Put down the marker naming this index in a store whose root holds
    nothing yet (at registration, ``init``, and a process's first use of a
    store): the pruner sweeps orphans only in stores it owns. A root that
    already holds something, or a marker, is left as it is (``artifactfs
    store claim`` and ``fsck --adopt`` decide those). Best effort: a store
    that cannot be written now is marked by a later use or by the pruner."""
    try:
        if read_marker(store) is not None:
            return
        if any(not name.startswith(".artifactfs-") for name in _root_names(store)):
            return
        with get_index().read() as session:
            identity = index_identity(session)
        write_marker(store, identity)
    except Exception as exc:  # noqa: BLE001 - never fail a save or a load over the marker
        log.debug("could not mark store %s: %s", store.name, exc)


def _root_names(store: ArtifactStore) -> list[str]:
    try:
        return store.listdir("")
    except FileNotFoundError:
        return []


def list_stores() -> list[StoreInfo]:
    """Every registered store, with which one is active and the names (never values) of its secrets."""
    active, credentials = _active_for_listing(), get_settings().read_credentials()
    with get_index().read() as session:
        rows = list_store_rows(session)
    return [_info(row, active, credentials) for row in rows]


def describe_store(name: str) -> StoreInfo:
    """One registered store, as :func:`list_stores` shows it; ``NotFoundError`` for an unknown name."""
    with get_index().read() as session:
        row = find_store_row(session, name)
    return _info(row, _active_for_listing(), get_settings().read_credentials())


def flavor_of(name: str):
    """The flavor class of a registered store."""
    with get_index().read() as session:
        return get_flavor(find_store_row(session, name).flavor)


def _active_for_listing() -> str:
    """The active store's name, without creating this machine's default store."""
    chosen = get_settings().chosen_store
    if chosen:
        return chosen
    with get_index().read() as session:
        return hosts.default_store_name(session, machine_id())


def _info(row: Store, active: str, credentials: dict) -> StoreInfo:
    # Split again: a row written before secrets were told apart this well
    # may still hold one, and it is never shown.
    public, legacy = split_secrets(_secret_option_names(row.flavor), dict(row.options))
    names = set(secret_names(credentials.get(row.name, {}))) | set(secret_names(legacy))
    return StoreInfo(
        name=row.name,
        flavor=row.flavor,
        path=row.root_uri,
        options=public,
        active=row.name == active,
        secrets=tuple(sorted(names)),
        owner=hosts.owner_label(row),
    )


def _secret_option_names(flavor: str) -> frozenset[str]:
    try:
        return get_flavor(flavor).secret_options
    except ArtifactfsError:  # a plugin flavor that is not installed here
        return frozenset()


def set_active_store(name: str) -> None:
    """Make ``name`` this machine's active store (kept in this machine's
    config, never in the index); another machine's local store is refused."""
    with get_index().read() as session:
        hosts.check_usable(find_store_row(session, name))
    get_settings().write_config(active_store=name)


def store_for_uri(uri: str) -> ArtifactStore | None:
    """The registered store whose root holds ``uri`` (the deepest root wins)."""
    index = get_index()
    with index.read() as session:
        rows = list_store_rows(session)
    best: ArtifactStore | None = None
    for row in rows:
        flavor = get_flavor(row.flavor)
        if flavor.split_uri(uri)[0] not in flavor.schemes:
            continue
        try:
            store = shared_stores(index).open_row(row)
        except hosts.ForeignStoreError:
            continue  # a path here is never inside another machine's folder
        if store.contains(uri) and (best is None or len(store.root) > len(best.root)):
            best = store
    return best


def local_filesystem() -> ArtifactStore:
    """Local files outside every store, for ``fileio`` on plain paths: the
    user's own paths, whose links are followed as any program would (a
    store root's never are: ``stores.beneath``)."""
    return ArtifactStore("<local files>", get_flavor("local"), "/", follow_links=True)


def store_or_local(uri: str) -> ArtifactStore:
    """The registered store holding ``uri``, else the plain local filesystem
    for a local path; ``NotFoundError`` for any other URI."""
    store = store_for_uri(uri)
    if store is not None:
        return store
    if is_local_uri(uri):
        return local_filesystem()
    raise NotFoundError(
        f"no registered store holds {uri!r}",
        "register one whose root contains it: `artifactfs store register NAME --flavor F --path URI`",
    )


# A materializer made with only a URI (ZenML's way) finds its store here.
set_api_hooks(store_for=store_or_local, after_step=remove_after_step)


# -- checking a store for real ---------------------------------------------------


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    step: str  # the step that failed, or "done"
    problem: str  # "credentials", "bucket missing", "network", "permissions", "other", or ""
    detail: str


CHECK_TIMEOUT_S = 30.0


def check_store(name: str, timeout: float = CHECK_TIMEOUT_S) -> CheckResult:
    """Write, read back and delete a probe object; say what failed if anything.

    Some client libraries retry a dead endpoint for minutes; after ``timeout``
    seconds the check reports a network problem and leaves the worker thread
    to finish on its own.
    """
    try:
        store = get_store(name)
    except ArtifactfsError as exc:
        return CheckResult(False, "configure", "other", str(exc))
    progress: dict = {"step": "write"}
    # A daemon thread: a CLI process may exit while the library still retries.
    worker = threading.Thread(target=lambda: progress.update(result=_probe(store, progress)), daemon=True)
    worker.start()
    worker.join(timeout)
    if "result" in progress:
        return progress["result"]
    return CheckResult(False, progress["step"], "network", f"store {name!r} did not answer within {timeout:.0f} s")


def _probe(store: ArtifactStore, progress: dict[str, str]) -> CheckResult:
    probe = f".artifactfs-probe-{uuid.uuid4().hex}"
    payload = b"artifactfs store check\n"
    try:
        with store.open(probe, "wb") as f:
            f.write(payload)
        progress["step"] = "read"
        if store.read_bytes(probe) != payload:
            return CheckResult(False, "read", "other", "the probe object read back differs from what was written")
        progress["step"] = "delete"
        store.remove(probe)
    except Exception as exc:  # classify whatever the library raised
        return CheckResult(False, progress["step"], classify_store_error(exc), store.redact(_describe(exc)))
    return CheckResult(True, "done", "", f"wrote, read and deleted {store.uri(probe)}")


_URL = re.compile(r"[a-z][a-z0-9+.-]*://\S+")
_AUTH_STATUS = re.compile(r"\b40[13]\b")


def classify_store_error(exc: BaseException) -> str:
    """The kind of problem behind a store's error (``CheckResult.problem``):
    "credentials", "bucket missing", "network", "permissions" or "other"."""
    text = f"{type(exc).__name__} {exc}".lower()
    chain = exc.__cause__ or exc.__context__
    if chain is not None:
        text += f" {type(chain).__name__} {chain}".lower()
    # URLs in messages carry ports and object names: "403" inside one is no status code.
    text = _URL.sub(" ", text)
    if any(k in text for k in ("nosuchbucket", "bucket does not exist", "containernotfound",
                                "container does not exist", "specified container", "bucket not found")):
        return "bucket missing"
    if any(k in text for k in ("accessdenied", "invalidaccesskeyid", "signaturedoesnotmatch",
                                "authentication", "authorization", "credentials", "forbidden")) \
            or _AUTH_STATUS.search(text):
        return "credentials"
    if any(k in text for k in ("connect", "timeout", "timed out", "unreachable", "name resolution",
                                "connection refused", "endpoint")):
        return "network"
    if isinstance(exc, FileNotFoundError):
        return "bucket missing"
    if isinstance(exc, PermissionError):
        return "permissions"
    return "other"


def _describe(exc: BaseException) -> str:
    message = str(exc) or type(exc).__name__
    return message.splitlines()[0][:300]


__all__ = [
    "CheckResult",
    "StoreError",
    "StoreInfo",
    "check_store",
    "describe_store",
    "get_store",
    "init",
    "list_stores",
    "mark_new_store",
    "register_store",
    "set_active_store",
    "active_store_name",
    "store_for_uri",
    "store_or_local",
]
