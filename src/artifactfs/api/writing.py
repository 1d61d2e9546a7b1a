"""The write protocol of DESIGN.md, shared by ``save_artifact``,
``register_artifact``, the pipeline runner, ``migrate`` and checkpoints:

1. a write intent is recorded in the index, in a transaction of its own,
   before a byte of the payload is written (:func:`begin_payload`);
2. the payload goes to a fresh folder ``<root>/<artifact name>/<uuid>/``;
3. manifest, size and hash are computed while writing, and a local payload
   is fsynced with the folders naming it (``RecordingStore(durable=True)``);
4. one transaction checks the payload is still there (:func:`check_payload`),
   inserts the version and clears the intent (``index.artifacts.insert_version``).

A save that fails removes its folder and its intent at once (:func:`abandon`);
a crash leaves both to the pruner, which never touches a folder whose
intent is younger than its floor.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import posixpath
import stat
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from artifactfs.errors import ArtifactfsError
from artifactfs.faults import fault_point
from artifactfs.index import find_store_row, get_index
from artifactfs.index.artifacts import NewVersion, check_name, check_metadata, version_at
from artifactfs.index.intents import clear_intent, record_intent
from artifactfs.index.models import ArtifactType, PayloadKind, SaveType
from artifactfs.index.sweep import remove_quietly, rmtree_quietly
from artifactfs.materializers import (
    BaseMaterializer,
    BuiltInMaterializer,
    ContainerMaterializer,
    MaterializerError,
    import_by_name,
    materializer_for_value,
    qualified_name,
)
from artifactfs.materializers.builtin import is_jsonable
from artifactfs.stores.base import COPY_CHUNK, ArtifactStore
from artifactfs.stores.beneath import LinkFound, within
from artifactfs.stores.localfiles import open_beneath, resolve_named
from artifactfs.stores.manifest import (
    DEFAULT_FILE_MODE,
    ManifestEntry,
    RecordingStore,
    content_hash,
    manifest_entry,
    manifest_file,
    write_manifest_file,
)

VISUALIZATION_SUFFIX = ".viz"


class PayloadMissingError(ArtifactfsError):
    """A payload vanished between being written and being committed."""


def payload_folder(name: str, version_uuid: str) -> str:
    return f"{name}/{version_uuid}"


# -- steps 1 and 4: the intent, the check, the cleanup ------------------------------------


@dataclass(frozen=True)
class FreshPayload:
    """A payload folder being written, with its write intent."""

    uuid: str
    folder: str  # relative to the store root
    native: str  # resolved, in the store's filesystem
    uri: str
    intent_id: str


def store_row_id(session, store: ArtifactStore) -> int:
    """The index id of a store (opened stores know it already)."""
    return getattr(store, "index_id", None) or find_store_row(session, store.name).id


def begin_payload(store: ArtifactStore, name: str, version_uuid: str | None = None) -> FreshPayload:
    """Step 1: record the intent to write ``<name>/<uuid>`` (committed before
    returning, so the pruner sees it before the folder exists). On SQLite the
    commit is not fsynced: a power cut that loses it also stops the writer,
    and the orphan grace covers the folder it leaves."""
    version_uuid = version_uuid or str(uuid.uuid4())
    folder = payload_folder(name, version_uuid)
    native = store.resolve(folder)
    with get_index().write(durable=False) as session:
        intent_id = record_intent(session, store_row_id(session, store), folder)
    fault_point("after_write_intent")
    return FreshPayload(version_uuid, folder, native, store.flavor.to_uri(native), intent_id)


def check_payload(store: ArtifactStore, new: NewVersion) -> None:
    """Last in the commit's transaction: wait until the payload is durable
    (its fsyncs ran while the transaction was prepared), then refuse to
    commit a payload that is no longer there (deleted while the save ran)."""
    if new.wait_durable is not None:
        new.wait_durable()
    require_payload(store, repr(new.name), new.uri, new.payload_kind, [f.path for f in new.files])


def require_payload(store: ArtifactStore, label: str, uri: str, payload_kind: str, relatives: list[str]) -> None:
    missing = first_missing(store, uri, payload_kind, relatives)
    if missing is not None:
        raise PayloadMissingError(
            f"the payload of {label} vanished before it was committed ({missing} is gone); nothing was saved",
            "something deleted it while the save ran (a pruner with a grace shorter than the save?); save it again",
        )


def first_missing(store: ArtifactStore, uri: str, payload_kind: str, relatives: list[str]) -> str | None:
    """The first payload path that does not exist, or None. A local payload
    is stat'ed file by file; a remote one costs one fresh ``info`` call."""
    native = uri if store.is_local else store.resolve(uri)  # a local URI is the path it was resolved to
    if payload_kind == PayloadKind.FILE.value:
        paths = [native]
    elif store.is_local:
        paths = [native] + [posixpath.join(native, relative) for relative in relatives]
    else:
        paths = [posixpath.join(native, min(relatives))] if relatives else []
    for path in paths:
        try:
            if store.is_local:  # beneath the root: a payload swapped for a link raises LinkFound
                if store.beneath.kind(store.local_relative(path)) is None:
                    raise FileNotFoundError(path)
            else:
                store.fs.invalidate_cache(path)  # a listing cached before the delete would still show it
                store.fs.info(path)
        except FileNotFoundError:
            return store.flavor.to_uri(path)
    return None


def abandon(store: ArtifactStore, uri: str, intent_id: str | None, committing: bool = False) -> None:
    """Remove a fresh payload that will never be committed (and its ``.viz``
    sibling and manifest file), then its intent. After a failed commit
    (``committing``) the folder goes only once the index says no row names it: a commit can fail
    after it happened. Whatever cannot be done here is left to the pruner."""
    if intent_id is None:
        return  # a path registered in place: never ours to delete
    try:
        if committing:
            with get_index().read() as session:
                named = version_at(session, uri) is not None
        if not (committing and named):
            _remove_leftovers(store, uri)
        with get_index().write(durable=False) as session:
            clear_intent(session, intent_id)
    except Exception:  # noqa: BLE001 - cleanup must not hide the real error
        pass


def pick_materializer(data: Any, materializer: type[BaseMaterializer] | str | None) -> type[BaseMaterializer]:
    """The registered choice for ``data``, or the one asked for (a class or
    its import path, as ZenML accepts), checked to handle ``data``'s type."""
    if materializer is None:
        return materializer_for_value(data)
    if isinstance(materializer, str):
        materializer = import_by_name(materializer, "materializer=")
    if not (isinstance(materializer, type) and issubclass(materializer, BaseMaterializer)):
        raise MaterializerError(f"materializer must be a BaseMaterializer subclass, got {materializer!r}")
    if materializer.ASSOCIATED_TYPES and not materializer.can_save_type(type(data)):
        raise MaterializerError(
            f"{materializer.__name__} cannot save a {qualified_name(type(data))}; it saves "
            f"{', '.join(qualified_name(t) for t in materializer.ASSOCIATED_TYPES)}",
            "pick a materializer for this type, or leave materializer= out",
        )
    if materializer is BuiltInMaterializer and not is_jsonable(data):
        return ContainerMaterializer  # what it would write; recorded so, the load verifies its pickles
    return materializer


def write_value(
    data: Any,
    name: str,
    store: ArtifactStore,
    materializer: type[BaseMaterializer] | str | None = None,
    save_type: SaveType = SaveType.MANUAL,
    extract_metadata: bool = True,
    include_visualizations: bool = True,
) -> tuple[NewVersion, dict[str, Any]]:
    """Steps 1-3: materialize ``data`` into a fresh, durable payload folder
    under a write intent. Returns the version to insert (holding the intent)
    and the metadata the materializer extracted (ZenML's
    ``extract_metadata``/``include_visualizations`` switches turn the two
    extras off). On failure nothing is left."""
    check_name(name)
    cls = pick_materializer(data, materializer)
    payload = begin_payload(store, name)
    try:
        return _materialize(data, name, store, cls, payload, save_type, extract_metadata, include_visualizations)
    except BaseException:
        abandon(store, payload.uri, payload.intent_id)
        raise


def _materialize(data: Any, name: str, store: ArtifactStore, cls: type[BaseMaterializer], payload: FreshPayload,
                 save_type: SaveType, extract_metadata: bool,
                 include_visualizations: bool) -> tuple[NewVersion, dict[str, Any]]:
    recorder = RecordingStore(store, payload.folder, durable=True, native=payload.native)
    instance = cls(payload.uri, recorder, payload.uri + VISUALIZATION_SUFFIX)
    try:
        instance.save(data)
    except ArtifactfsError:
        raise
    except (TypeError, ValueError) as exc:
        raise MaterializerError(
            f"{cls.__name__} could not save {name!r} ({type(data).__name__}): {exc}",
            "pass materializer=... or convert the value to a supported type",
        ) from exc
    files = recorder.finish(wait=False)  # durable by the commit: check_payload waits
    metadata = {"storage_size": sum(f.size for f in files)}
    if extract_metadata:
        metadata.update(_safe(instance.extract_metadata, data, name))
    new = NewVersion(
        uuid=payload.uuid,
        name=name,
        version=None,
        store_id=0,  # filled by the caller, who knows the store row
        uri=payload.uri,
        payload_kind=PayloadKind.FOLDER.value,
        materializer=qualified_name(cls),
        data_type=qualified_name(type(data)),
        content_hash=instance.compute_content_hash(data) or content_hash(files),
        save_type=save_type.value,
        files=files,
        visualizations=_visualizations(instance, data, name) if include_visualizations else [],
        artifact_type=ArtifactType(cls.ASSOCIATED_ARTIFACT_TYPE).value,
        intent_id=payload.intent_id,
        wait_durable=recorder.wait_durable,
    )
    return new, metadata


def _safe(method: Callable, data: Any, name: str) -> dict[str, Any]:
    """Metadata is a bonus: a failure, or a value the index cannot record,
    warns and is dropped; it never loses the save."""
    try:
        extracted = dict(method(data) or {})
    except Exception as exc:  # noqa: BLE001 - any materializer bug
        warnings.warn(f"could not extract metadata of {name!r}: {exc}", stacklevel=4)
        return {}
    kept = {}
    for key, value in extracted.items():
        try:
            kept.update(check_metadata({key: value}))
        except ArtifactfsError as exc:
            warnings.warn(f"metadata of {name!r} dropped: {exc}", stacklevel=4)
    return kept


def _visualizations(instance: BaseMaterializer, data: Any, name: str) -> list[dict[str, str]]:
    try:
        produced = instance.save_visualizations(data) or {}
    except Exception as exc:  # noqa: BLE001
        warnings.warn(f"could not save visualizations of {name!r}: {exc}", stacklevel=4)
        return []
    return [{"uri": uri, "kind": str(getattr(kind, "value", kind))} for uri, kind in produced.items()]


# -- adopting and copying existing files -----------------------------------------------


def check_relative(path: str, source: str) -> str:
    """Refuse manifest paths that could escape a folder (tar-slip)."""
    parts = path.split("/")
    if path.startswith("/") or any(p in ("", ".", "..") or "\x00" in p for p in parts):
        raise ArtifactfsError(
            f"{source} contains an entry with an unsafe relative path {path!r}",
            "rename or remove that entry; paths may not contain '..', '.' or empty parts",
        )
    return path


def check_local_links(folder: str) -> None:
    """A local folder's symlinks must stay inside it; special files are refused."""
    real_root = os.path.realpath(folder)
    for current, dirs, files in os.walk(folder):
        for entry in dirs + files:
            path = os.path.join(current, entry)
            if os.path.islink(path):
                target = os.path.realpath(path)
                if not within(target, real_root):
                    raise ArtifactfsError(
                        f"{path} is a symlink to {target}, outside {folder}",
                        "copy the target into the folder or remove the link",
                    )
                if os.path.isdir(path):
                    raise ArtifactfsError(f"{path} is a symlink to a folder", "replace it by the folder itself")
            elif entry in files and not os.path.isfile(path):
                raise ArtifactfsError(f"{path} is not a regular file", "remove it before registering")


def refuse_links(store: ArtifactStore, native: str) -> None:
    """A folder inside a local store holds no link: none is ever followed
    there, so one would be a file the version silently lacks (LinkFound names it)."""
    def refuse(relative: str) -> None:
        raise LinkFound(store.beneath.full(relative), f"{native} cannot be registered")

    for _ in store.beneath.walk(store.local_relative(native), on_link=refuse):
        pass


def manifest_in_place(store: ArtifactStore, native: str) -> tuple[str, list[ManifestEntry]]:
    """``(payload kind, manifest)`` of an existing file or folder inside a
    store, hashing each file once; a local one is read beneath the store's
    root without following any link (a link in it is refused)."""
    if store.fs.isfile(native):
        return PayloadKind.FILE.value, [manifest_entry(store, native, posixpath.basename(native))]
    if not store.fs.isdir(native):
        raise FileNotFoundError(f"nothing to register at {store.flavor.to_uri(native)}")
    if store.is_local:
        refuse_links(store, native)
    entries = []
    for relative in store.find(store.flavor.to_uri(native)):
        check_relative(relative, store.flavor.to_uri(native))
        entries.append(manifest_entry(store, posixpath.join(native, relative), relative))
    return PayloadKind.FOLDER.value, entries


def copy_into(
    source: ArtifactStore,
    source_native: str,
    target: ArtifactStore,
    name: str,
    progress: Callable[[int], None] | None = None,
) -> tuple[FreshPayload, list[ManifestEntry]]:
    """Copy a file or folder into a fresh, durable payload folder of
    ``target`` under a write intent; returns ``(payload, manifest)``. A
    single file keeps its name inside the folder. On failure nothing is left.

    A local source is read without following a symlink out of it (a single
    file: out of its own folder), and each copy keeps its source's
    permission bits, in the copy and in the manifest."""
    name_in_copy = posixpath.basename(source_native)
    in_store = source.is_local and source.holds_root
    if source.is_local and not in_store:
        source_native = resolve_named(source_native)
    if source.fs.isfile(source_native):
        tree, pairs = posixpath.dirname(source_native), [(posixpath.basename(source_native), name_in_copy)]
    elif source.fs.isdir(source_native):
        if in_store:
            refuse_links(source, source_native)
        elif source.is_local:
            check_local_links(source_native)
        tree = source_native
        pairs = [(rel, check_relative(rel, source.flavor.to_uri(source_native)))
                 for rel in source.find(source.flavor.to_uri(source_native))]
    elif source.is_local and os.path.exists(source_native):
        raise ArtifactfsError(f"{source_native} is not a regular file (a FIFO, socket or device)",
                              "register regular files and folders only")
    else:
        raise FileNotFoundError(f"nothing to register at {source.flavor.to_uri(source_native)}")
    payload = begin_payload(target, name)
    try:
        recorder = RecordingStore(target, payload.folder, durable=True, native=payload.native)
        for src, relative in pairs:
            fault_point("copy_into_open")
            with _open_source(source, tree, src) as (fin, mode), \
                    recorder.open(posixpath.join(payload.folder, relative), "wb", file_mode=mode) as fout:
                while chunk := fin.read(COPY_CHUNK):
                    fout.write(chunk)
                    if progress:
                        progress(len(chunk))
        return payload, recorder.finish()
    except BaseException:
        abandon(target, payload.uri, payload.intent_id)
        raise


@contextlib.contextmanager
def _open_source(source: ArtifactStore, tree: str, relative: str) -> Iterator[tuple[IO[bytes], int]]:
    """A source file and its permission bits (an object store's files have the default)."""
    if not source.is_local:
        with source.fs.open(posixpath.join(tree, relative), "rb") as f:
            yield f, DEFAULT_FILE_MODE
        return
    if source.holds_root:  # a store's own files: beneath its root, no link followed at all
        with source.beneath.open_read(source.local_relative(posixpath.join(tree, relative))) as f:
            yield f, stat.S_IMODE(os.fstat(f.fileno()).st_mode)
        return
    with open_beneath(tree, relative) as f:
        yield f, stat.S_IMODE(os.fstat(f.fileno()).st_mode)


def source_size(store: ArtifactStore, native: str) -> int:
    return store.size(store.flavor.to_uri(native))


def in_layout(new: NewVersion) -> bool:
    """The payload is a fresh ``<root>/<name>/<uuid>`` folder, never a user's path adopted in place."""
    return new.uri.rstrip("/").endswith(new.uuid)


def write_manifest_beside(store: ArtifactStore, new: NewVersion, version: str | None = None,
                          created_at: dt.datetime | None = None) -> bool:
    """Write the version's manifest file beside its payload folder (layout
    payloads only); ``version`` None: to be numbered by the commit."""
    if not in_layout(new):
        return False
    record = manifest_record(new, new.name, version if version is not None else new.version,
                             created_at or dt.datetime.now(dt.timezone.utc), new.visualizations)
    write_manifest_file(store, store.relpath(new.uri), new.files, record)
    return True


def manifest_record(version: Any, name: str, number: str | None, created_at: dt.datetime,
                    visualizations: list | None) -> dict[str, Any]:
    """What the manifest file says of a version (a ``NewVersion`` or a version row)."""
    return {
        "uuid": version.uuid, "name": name, "version": number, "payload_kind": version.payload_kind,
        "materializer": version.materializer, "data_type": version.data_type, "artifact_type": version.artifact_type,
        "hash_algorithm": version.hash_algorithm, "content_hash": version.content_hash,
        "save_type": version.save_type, "visualizations": list(visualizations or []),
        "created_at": created_at.isoformat(),
    }


def number_manifest_beside(store: ArtifactStore, new: NewVersion, version: str, created_at: dt.datetime) -> None:
    """After the commit numbered the version: rewrite its manifest file with
    the number. The version is committed either way, so a failure only warns
    (``fsck --adopt`` would then number it anew)."""
    if new.version is not None or not in_layout(new):
        return
    try:
        write_manifest_beside(store, new, version, created_at)
    except Exception as exc:  # noqa: BLE001 - the save itself succeeded
        warnings.warn(f"could not record version {version} in the manifest file of {new.uri}: {exc}", stacklevel=3)


def _remove_leftovers(store: ArtifactStore, uri: str) -> None:
    """Best effort, each on its own (the pruner's orphan sweep is the safety
    net): the payload folder, its visualizations, its manifest file."""
    for delete, path in ((rmtree_quietly, uri), (rmtree_quietly, uri + VISUALIZATION_SUFFIX),
                         (remove_quietly, manifest_file(uri))):
        try:
            delete(store, path)
        except Exception:  # noqa: BLE001 - cleanup must not hide the real error
            pass
