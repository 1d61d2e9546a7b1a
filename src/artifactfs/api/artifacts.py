"""The artifact API: ``save_artifact``, ``load_artifact``, ``register_artifact``
and the ``ArtifactVersion`` a user holds.

Writes follow DESIGN.md's protocol through one code path
(``api.writing.WriteBatch``): intent, payload, manifest file and
durability, then one transaction. Loads never hand out a
way to change what is stored (a file or folder comes back as a private copy,
or as a read-only view: ``api.views``), and a load that may unpickle reads
each file once, verified (``api.verified``).
"""

from __future__ import annotations

import datetime as dt
import os
import posixpath
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from artifactfs.api.context import current_step_run, pipeline_tracing
from artifactfs.api.journal import update_journals
from artifactfs.api.lazy import lazy_version
from artifactfs.api.stores import get_store, local_filesystem, store_for_uri
from artifactfs.api.verified import IntegrityError, VerifiedReads, missing, verify_payload
from artifactfs.api.views import PayloadView
from artifactfs.api.writing import (
    WriteBatch,
    copy_into,
    copy_plan,
    manifest_in_place,
    pick_materializer,
    write_value,
)
from artifactfs.errors import AlreadyExistsError, ArtifactfsError, PathNotFoundError
from artifactfs.faults import fault_point
from artifactfs.index import get_index
from artifactfs.index import artifacts as artifact_rows
from artifactfs.index import pipelines as pipeline_rows
from artifactfs.index.models import VersionRow
from artifactfs.enums import SAVE_TYPES, ArtifactSaveType
from artifactfs.index.models import ArtifactType, PayloadKind, SaveType
from artifactfs.materializers import BaseMaterializer, PathMaterializer, import_by_name, qualified_name, registry
from artifactfs.materializers.path import private_folder
from artifactfs.stores.base import ArtifactStore
from artifactfs.stores.flavor import is_local_uri
from artifactfs.stores.layout import registered_in_place
from artifactfs.stores.manifest import ManifestEntry, content_hash


@dataclass(frozen=True)
class ArtifactFile:
    path: str
    size: int
    mode: int
    digest: str | None  # hex, in the version's hash_algorithm


@dataclass
class ArtifactVersion:
    """One immutable version of an artifact, as the index records it."""

    id: str
    name: str
    version: str
    uri: str
    store: str
    data_type: str | None
    materializer: str | None
    size: int
    file_count: int
    content_hash: str | None
    hash_algorithm: str
    save_type: str
    payload_kind: str
    created_at: dt.datetime
    visualizations: list[dict[str, str]] = field(default_factory=list)
    artifact_type: str = ArtifactType.DATA.value
    _pk: int = field(default=0, repr=False)

    @classmethod
    def from_row(cls, row: VersionRow, store_name: str | None = None) -> ArtifactVersion:
        """The version a row of the index describes (``store_name``: spares the store's lookup)."""
        return cls(
            id=row.uuid,
            name=row.artifact.name,
            version=row.version,
            uri=row.uri,
            store=store_name or row.store.name,
            data_type=row.data_type,
            materializer=row.materializer,
            size=row.size,
            file_count=row.file_count,
            content_hash=row.content_hash,
            hash_algorithm=row.hash_algorithm,
            save_type=SAVE_TYPES.get(row.save_type, row.save_type),
            payload_kind=row.payload_kind,
            created_at=row.created_at,
            visualizations=list(row.visualizations or []),
            artifact_type=row.artifact_type,
            _pk=row.id,
        )

    def __str__(self) -> str:
        return f"{self.name}:{self.version}"

    # -- details read on demand --------------------------------------------------------

    @property
    def type(self) -> ArtifactType:
        """ZenML's artifact type (what the materializer or the caller said)."""
        return ArtifactType(self.artifact_type)

    @property
    def run_metadata(self) -> dict[str, Any]:
        """ZenML's name for the version's metadata."""
        return self.metadata

    @property
    def data_type_class(self) -> type | None:
        """The class of the saved value, imported; None when it cannot be imported here."""
        try:
            return import_by_name(self.data_type, str(self)) if self.data_type else None
        except ArtifactfsError:
            return None

    @property
    def tags(self) -> list[str]:
        """``Tag`` values (``t.name``; each also its name as a ``str``)."""
        with get_index().read() as session:
            return artifact_rows.version_tags(session, self._pk)

    @property
    def metadata(self) -> dict[str, Any]:
        """The version's metadata (``{key: value}``), read from the index now."""
        with get_index().read() as session:
            return artifact_rows.get_metadata(session, version_id=self._pk)

    @property
    def files(self) -> list[ArtifactFile]:
        """The manifest: every payload file with size, mode and digest."""
        with get_index().read() as session:
            return [ArtifactFile(f.path, f.size, f.mode, f.digest) for f in artifact_rows.version_files(session, self._pk)]

    def open_store(self) -> ArtifactStore:
        """The store holding the payload (opened once per process, like every store)."""
        return get_store(self.store)

    def file_uri(self, relative: str) -> str:
        """The URI of one payload file."""
        return self.uri if self.payload_kind == PayloadKind.FILE.value else posixpath.join(self.uri, relative)

    # -- actions --------------------------------------------------------------------------

    def load(self, verify: bool = False, *, zero_copy: bool = False) -> Any:
        """The value; see :func:`load_artifact`."""
        return _load(self, verify, zero_copy)

    def download_files(self, path: str | os.PathLike, overwrite: bool = False) -> None:
        """Every payload file into one zip archive at ``path`` (ZenML's
        method; paths inside the zip are relative to the version folder)."""
        from artifactfs.api.export import zip_version  # export builds on this module

        zip_version(self, path, overwrite)

    def add_tags(self, tags: Iterable[str]) -> None:
        """Tag the version (tags it has already are kept once); its manifest file is rewritten."""
        get_index().run_write(lambda session: artifact_rows.add_tags(session, session.get(VersionRow, self._pk), _as_list(tags)))
        update_journals([self._pk])

    def remove_tags(self, tags: Iterable[str]) -> None:
        """Remove these tags from the version; its manifest file is rewritten."""
        get_index().run_write(
            lambda session: artifact_rows.remove_tags(session, session.get(VersionRow, self._pk), _as_list(tags)))
        update_journals([self._pk])

    def verify(self) -> None:
        """Re-read every payload file and compare with the manifest."""
        verify_payload(self, self.open_store())

    # Lineage lives in api.runs, which builds on this module (hence the local imports).

    @property
    def producer(self):
        """The step run that produced this version, or None for manual saves."""
        from artifactfs.api import runs

        return runs.producer(self)

    @property
    def artifact(self):
        """The artifact this version belongs to (ZenML's ``.artifact``): its
        ``.id`` and ``.name`` outlive the artifact's deletion."""
        from artifactfs.api.client import ArtifactView  # the Client builds on this module

        return ArtifactView.of_name(self.name)

    @property
    def consumers(self) -> list:
        """The step runs that read this version."""
        from artifactfs.api import runs

        return runs.consumers(self)

    @property
    def step(self):
        """ZenML's ``artifact_version.step``: the producing step run; a
        RuntimeError for a version no step produced (as ZenML's)."""
        found = self.producer
        if found is None:
            raise RuntimeError(f"{self} was not produced by a step (saved or registered outside a pipeline run)")
        return found

    @property
    def run(self):
        """ZenML's ``artifact_version.run``: the pipeline run of :attr:`step`."""
        return self.step.pipeline_run

    @property
    def producer_step_run_id(self) -> str | None:
        """ZenML's: the id of the step run that produced this version (None: saved outside a step)."""
        found = self.producer
        return found.id if found is not None else None

    @property
    def producer_pipeline_run_id(self) -> str | None:
        """ZenML's: the id of the pipeline run that produced this version
        (a cached step's outputs keep their original run)."""
        found = self.producer
        return found.pipeline_run_id if found is not None else None

    def upstream(self, depth: int = 1) -> list[ArtifactVersion]:
        """The versions this one was made from: the inputs of the step run that
        produced it, and theirs, ``depth`` steps back."""
        from artifactfs.api import runs

        return runs.walk(self, depth, upstream=True)

    def downstream(self, depth: int = 1) -> list[ArtifactVersion]:
        """The versions made from this one: the outputs of the step runs that
        read it, and theirs, ``depth`` steps on."""
        from artifactfs.api import runs

        return runs.walk(self, depth, upstream=False)

    def visualize(self) -> None:
        """Show the stored visualizations in a notebook (or print where they are)."""
        from artifactfs.api.visualize import show

        show(self)


def _as_list(tags: Iterable[str] | str) -> list[str]:
    return [tags] if isinstance(tags, str) else list(tags)


# -- save -----------------------------------------------------------------------------------


def save_artifact(
    data: Any,
    name: str,
    version: str | int | None = None,
    artifact_type: ArtifactType | str | None = None,
    tags: Iterable[str] | None = None,
    extract_metadata: bool = True,
    include_visualizations: bool = True,
    user_metadata: dict[str, Any] | None = None,
    materializer: type[BaseMaterializer] | str | None = None,
    uri: str | None = None,
    save_type: ArtifactSaveType | str = ArtifactSaveType.MANUAL,
    *,
    store: str | ArtifactStore | None = None,
    metadata: dict[str, Any] | None = None,
) -> ArtifactVersion:
    """Save ``data`` as the next version of ``name`` (or as ``version``).

    ZenML's signature, in ZenML's order; ``store=`` (a store name) and
    ``metadata=`` (an alias of ``user_metadata``) are artifactfs's own and
    keyword-only. ``uri=`` is refused: artifactfs always writes a fresh
    ``<name>/<uuid>`` folder (the pruner's orphan rule relies on it).
    ``save_type`` is ``MANUAL`` or ``EXTERNAL`` (what ``ExternalArtifact``
    saves); the other kinds are the runner's and ``register_artifact``'s."""
    artifact_rows.check_name(name)
    kept_as = _manual_save_type(save_type)
    version = _version_string(version)
    if uri is not None:
        raise ArtifactfsError(
            f"save_artifact(uri={uri!r}): artifactfs chooses the payload folder itself",
            "leave uri out (the version's .uri tells where it went), or pass store= to pick the store",
        )
    if metadata is not None and user_metadata is not None:
        raise ArtifactfsError("save_artifact got both user_metadata= and metadata=", "pass one of them")
    kind = _artifact_type(artifact_type)
    tags = artifact_rows.check_tags(_as_list(tags or ()))  # names and metadata: checked before any byte is written
    metadata = artifact_rows.check_metadata(user_metadata if user_metadata is not None else metadata)
    index = get_index()  # looked up once: the store and the batch use it
    target = store if isinstance(store, ArtifactStore) else get_store(store, index)
    cls = pick_materializer(data, materializer)
    with WriteBatch(target, index=index) as batch:
        payload, = batch.begin([(name, version)])  # a version taken already is refused here
        new, extracted = write_value(batch, payload, data, cls, kept_as, extract_metadata=extract_metadata,
                                     include_visualizations=include_visualizations)
        new.tags = tags
        new.artifact_type = kind or new.artifact_type
        new.metadata = {**extracted, **metadata}
        return commit_version(batch, link=_link_to_step("output", name))


class SaveTypeError(ArtifactfsError, ValueError):
    """``save_artifact`` was asked for a kind of version only the runner or ``register_artifact`` makes."""


def _manual_save_type(value: ArtifactSaveType | str) -> SaveType:
    try:
        given = ArtifactSaveType(value)
    except ValueError:
        given = None
    if given is ArtifactSaveType.MANUAL:
        return SaveType.MANUAL
    if given is ArtifactSaveType.EXTERNAL:
        return SaveType.EXTERNAL
    raise SaveTypeError(
        f"save_artifact(save_type={value!r}): a saved value is 'manual' or 'external'",
        "step outputs are saved by the runner and existing files by register_artifact",
    )


def _artifact_type(value: ArtifactType | str | None) -> str | None:
    if value is None:
        return None
    try:
        return ArtifactType(value).value
    except ValueError:
        raise ArtifactfsError(
            f"artifact_type {value!r} is not an artifact type",
            f"use one of {', '.join(t.name for t in ArtifactType)} (artifactfs.enums.ArtifactType)",
        ) from None


def _link_to_step(direction: str, name: str) -> Callable | None:
    """Inside a step run, a manual save is one of its outputs and a manual
    load one of its inputs (recorded in the same transaction)."""
    context = current_step_run()
    if context is None:
        return None
    # The version was inserted by this very transaction: it needs no lock.
    return lambda session, row: pipeline_rows.link_all(
        session, context.step_run_id, [pipeline_rows.Link(row.id, direction, name)], fresh=[row.id])


def commit_version(batch: WriteBatch, link: Callable | None = None) -> ArtifactVersion:
    """Steps 3-4 for the one version ``batch`` holds: checked, inserted, and
    ``link(session, row)`` run in its transaction (a step's output link, the
    in-place ownership check). See ``api.writing.WriteBatch``."""
    links = (lambda session, rows: link(session, rows[0])) if link is not None else None
    row, = batch.commit_versions(links)
    return ArtifactVersion.from_row(row, batch.store.name)


def _version_string(version: str | int | None) -> str | None:
    if version is None:
        return None
    if isinstance(version, bool) or not isinstance(version, (str, int)):
        raise artifact_rows.InvalidNameError(f"version must be a string or an integer, got {type(version).__name__}")
    if isinstance(version, int) and version < 0:
        raise artifact_rows.InvalidNameError(f"version {version} is negative", "use a positive number or a string")
    return artifact_rows.check_name(str(version), "version")


# -- load -----------------------------------------------------------------------------------


def get_artifact_version(name_or_id: str | uuid.UUID, version: str | int | None = None) -> ArtifactVersion:
    """Find a version (by name, id, ``uuid.UUID`` or id prefix); inside a
    step run this records it as an input."""
    name_or_id = str(name_or_id) if isinstance(name_or_id, uuid.UUID) else name_or_id
    version = _version_string(version)
    if pipeline_tracing():  # inside a @pipeline function: resolved when the step runs
        return lazy_version(name_or_id, version)
    context = current_step_run()
    with get_index().read() as session:
        found = ArtifactVersion.from_row(artifact_rows.find_version(session, name_or_id, version))
    if context is None:
        return found
    # The pruner may condemn the version right here; the link re-reads it
    # under its row lock and refuses (VersionNotLiveError) if it did.
    fault_point("before_input_link")
    # under the artifact's name, as ZenML keys a manual load (a step that reads several versions lists each)
    get_index().run_write(pipeline_rows.link, context.step_run_id, found._pk, "input", found.name)
    update_journals([found._pk])  # its manifest file names this step run as a consumer
    return found


def load_artifact(
    name_or_id: str | uuid.UUID, version: str | int | None = None, verify: bool = False, *, zero_copy: bool = False
) -> Any:
    """The value of a version: the newest of ``name`` unless ``version`` is given;
    ids and unique id prefixes work too.

    ``verify=True`` checks every payload file against its manifest (and what
    is loaded is the bytes checked). A file or folder (``pathlib.Path``)
    comes back as a private copy in a fresh temporary folder (removed when
    the step that loads it ends, or else when the process exits): writing
    to it never changes the artifact. For a
    checkpoint too large to copy, ``zero_copy=True`` returns a read-only
    :class:`~artifactfs.api.views.PayloadView` of the stored files instead.
    """
    return _load(get_artifact_version(name_or_id, version), verify, zero_copy)


def _load(version: ArtifactVersion, verify: bool, zero_copy: bool = False) -> Any:
    store = version.open_store()
    if zero_copy:
        return _view(version, store, verify)
    if version.materializer is None:
        return _load_registered(version, VerifiedReads(store, version) if verify else store)
    what = f"artifact {version.name}:{version.version}"
    materializer = import_by_name(version.materializer, what)
    data_type = _data_type(version.data_type, what, needed=materializer is not registry.default,
                           fallback=next(iter(getattr(materializer, "ASSOCIATED_TYPES", ())), None))
    pickles = getattr(materializer, "VERIFY_ON_LOAD", False)
    # Every file read once and checked; one that may be unpickled is checked before use.
    reader = VerifiedReads(store, version, stream=not pickles)
    checked = verify or pickles  # never unpickle bytes that changed
    value = materializer(version.uri, reader if checked else store, metadata_loader=lambda: version.metadata).load(
        data_type)
    if verify:
        reader.verify_rest()
    return value


def _view(version: ArtifactVersion, store: ArtifactStore, verify: bool) -> PayloadView:
    if version.materializer not in (None, qualified_name(PathMaterializer)):
        raise ArtifactfsError(
            f"zero_copy=True gives a read-only view of files and folders; {version} holds a {version.data_type}",
            "load it without zero_copy",
        )
    if verify:
        verify_payload(version, store)
    return PayloadView(version, store)


def _data_type(path: str | None, what: str, needed: bool, fallback: type | None = None) -> type:
    """The recorded type; a pickle carries its own class, so for it a type
    that cannot be imported (a class local to a function) is no obstacle.
    A class local to a function can never be imported again: the
    materializer's own type (``fallback``) stands for it, as the nearest
    thing that materializer reads (a local ``float`` subclass loads as a
    ``float``)."""
    if not path:
        return object
    try:
        return import_by_name(path, what)
    except ArtifactfsError:
        if needed and not ("<locals>" in path and fallback is not None):
            raise
        return fallback if needed and fallback is not None else object


def _load_registered(version: ArtifactVersion, store: ArtifactStore | VerifiedReads) -> Path:
    """A registered file or folder as a private copy of the files its
    manifest lists, each with its recorded mode (see :func:`load_artifact`)."""
    target = private_folder()
    for entry in version.files:
        local = target / entry.path
        local.parent.mkdir(parents=True, exist_ok=True)
        try:
            store.get(version.file_uri(entry.path), str(local))
        except FileNotFoundError:  # an adopted file its owner deleted since (keep-top-k)
            raise missing(version, entry) from None
        os.chmod(local, entry.mode & 0o777)
    return target / version.files[0].path if version.payload_kind == PayloadKind.FILE.value else target


# -- register -------------------------------------------------------------------------------


class NotInStoreError(ArtifactfsError, FileNotFoundError):
    """A path to adopt in place lies in no registered store (ZenML raises
    FileNotFoundError for a path outside its artifact store)."""


def register_artifact(
    folder_or_file_uri: str | os.PathLike,
    name: str,
    version: str | int | None = None,
    artifact_type: ArtifactType | str | None = None,
    tags: Iterable[str] | None = None,
    has_custom_name: bool = True,
    artifact_metadata: dict[str, Any] | None = None,
    *,
    metadata: dict[str, Any] | None = None,
    copy: bool = False,
    store: str | None = None,
    progress: Callable[[int, int], Callable[[int], None]] | None = None,
) -> ArtifactVersion:
    """Adopt a file or folder that already lies in a store, in place; or,
    with ``copy=True``, copy it into the active store (or ``store``).

    ZenML's signature and order; ``metadata=`` is an alias of
    ``artifact_metadata`` and ``copy``/``store``/``progress`` are
    artifactfs's own. ``has_custom_name`` is accepted and has no effect.
    ``progress(total_bytes)`` may return a callback fed with copied byte counts.
    """
    artifact_rows.check_name(name)
    version = _version_string(version)
    kind = _artifact_type(artifact_type) or ArtifactType.DATA.value
    tags = artifact_rows.check_tags(_as_list(tags or ()))  # names and metadata: checked before any byte is written
    metadata = {**artifact_rows.check_metadata(artifact_metadata), **artifact_rows.check_metadata(metadata)}
    uri = _absolute(folder_or_file_uri)
    source = store_for_uri(uri)
    _check_exists(uri, source)
    with get_index().read() as session:
        if version is not None and artifact_rows.version_exists(session, name, version):
            raise artifact_rows.duplicate_version_error(name, version)
    if copy:
        return _register_copy(uri, source, name, version, tags, metadata, store, progress, kind)
    if source is None:
        raise NotInStoreError(
            f"{uri} is not inside any registered store, so it cannot be adopted in place",
            "pass copy=True (CLI: --copy) to copy it into the active store, or register a store whose root holds it",
        )
    native = source.resolve(uri)
    if native == source.root:
        raise ArtifactfsError(f"{uri} is the root of store {source.name!r}", "register a folder inside it")
    _refuse_owned(source.flavor.to_uri(native))  # early, before hashing; again under the lock below
    payload_kind, files = manifest_in_place(source, native)
    new = artifact_rows.NewVersion(
        uuid=str(uuid.uuid4()), name=name, version=version, store_id=0, uri=source.flavor.to_uri(native),
        payload_kind=payload_kind, materializer=None, data_type="pathlib.Path", content_hash=content_hash(files),
        save_type=SaveType.REGISTERED.value, files=files, tags=tags, metadata=_registered_meta(files, metadata),
        artifact_type=kind,
    )
    with WriteBatch(source) as batch:
        batch.adopt(new)
        return commit_version(batch, link=_registered_link(name))


def _check_exists(uri: str, source: ArtifactStore | None) -> None:
    """Name a missing path as missing, before any store or copy is involved
    (and suggest the closest name beside it, for a typo)."""
    reader = source or (local_filesystem() if is_local_uri(uri) else None)
    if reader is None or reader.exists(uri):
        return
    parent, base = posixpath.split(uri.rstrip("/"))
    try:
        beside = reader.listdir(parent) if reader.contains(parent) else []
    except (OSError, ArtifactfsError):
        beside = []
    raise PathNotFoundError(f"{uri} does not exist", "check the path (a relative path starts in the current folder)",
                            name=base, known=beside)


def _register_copy(uri, source, name, version, tags, metadata, store_name, progress, kind) -> ArtifactVersion:
    if source is None:
        if not is_local_uri(uri):
            raise ArtifactfsError(f"no registered store holds {uri}", "register a store for it first")
        source = local_filesystem()
    target = get_store(store_name)
    plan = copy_plan(source, source.resolve(uri))
    callback = progress(source.size(uri)) if progress else None
    with WriteBatch(target) as batch:
        payload, = batch.begin([(name, version)])
        files = copy_into(source, plan, batch, payload, callback)
        new = artifact_rows.NewVersion(
            uuid=payload.uuid, name=name, version=payload.version, store_id=0, uri=payload.uri,
            payload_kind=PayloadKind.FOLDER.value, materializer=None, data_type="pathlib.Path",
            content_hash=content_hash(files), save_type=SaveType.REGISTERED.value, files=files, tags=tags,
            metadata=_registered_meta(files, metadata, source=uri), artifact_type=kind, artifact_id=payload.artifact_id,
        )
        batch.written(payload, files, new)
        return commit_version(batch, link=_registered_link(name))


def _registered_link(name: str) -> Callable:
    """Refuse a URI another version owns (checked again under the write lock)
    and, inside a step, link the registered version as an output."""
    step_link = _link_to_step("output", name)

    def link(session, row) -> None:
        _refuse_owned(row.uri, session, row.id)
        if step_link is not None:
            step_link(session, row)

    return link


def _registered_meta(files: list[ManifestEntry], metadata: dict | None, source: str | None = None) -> dict:
    extra = {"storage_size": sum(f.size for f in files), "file_count": len(files)}
    if source:
        extra["copied_from"] = source
    return {**extra, **(metadata or {})}


def _refuse_owned(uri: str, session=None, exclude_id: int | None = None) -> None:
    """A path is adopted once; and never inside (or around) a payload folder
    artifactfs made. Nesting adopted paths is allowed, as ZenML allows it (a
    folder, then a file in it): the pruner and ``migrate`` keep any payload
    that a live version overlaps."""
    if session is None:
        with get_index().read() as session:
            return _refuse_owned(uri, session)
    for owner in artifact_rows.uri_owners(session, uri, exclude_id):
        if owner.uri.rstrip("/") == uri.rstrip("/") or not registered_in_place(owner.uri, owner.uuid, owner.payload_kind):
            raise AlreadyExistsError(
                f"{uri} is already owned by version {owner.artifact.name}:{owner.version} ({owner.uri})",
                "a payload belongs to one version; register another path, or use copy=True",
            )


def _absolute(uri: str | os.PathLike) -> str:
    text = os.fspath(uri)
    return os.path.abspath(os.path.expanduser(text)) if "://" not in text else text


__all__ = [
    "ArtifactFile",
    "ArtifactVersion",
    "IntegrityError",
    "NotInStoreError",
    "PayloadView",
    "get_artifact_version",
    "load_artifact",
    "register_artifact",
    "save_artifact",
]
