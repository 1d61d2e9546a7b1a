"""Moving versions' payloads from one store to another: ``migrate``.

For each live version not yet in the target store, oldest first:

1. copy every manifest file to ``<target root>/<artifact name>/<version uuid>/``
   (visualizations to the ``.viz`` folder beside it), hashing the source
   bytes on the way and reading the copy back: sizes and digests must match
   the manifest, or the version is not moved;
2. re-point the row (store, URI, payload kind, visualization URIs) in one
   transaction that bumps the index generation, if the version is still live
   and still where it was copied from;
3. only then, and only with ``delete_source``, delete the old payload.

The target folder is a function of the version's uuid, so a run killed at any
point is resumed by running it again: files already copied intact are kept,
a partial file is copied again, a version already re-pointed is not in the
plan any more, and with ``delete_source`` sources that a killed run left
behind after its re-point are deleted too. A version's bytes never change,
so readers (the mount) may serve from the old or the new place meanwhile.

A single-file version registered in place (payload kind ``file``) becomes a
``folder`` version whose folder holds that one file under the same name, as
``register_artifact(copy=True)`` makes it: the manifest, and so the mount's
tree, stay the same; ``load()`` then returns the folder.
"""

from __future__ import annotations

import dataclasses
import functools
import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field

from artifactfs.api.artifacts import IntegrityError
from artifactfs.api.stores import get_store, store_for_uri
from artifactfs.api.writing import PayloadMissingError, WriteBatch
from artifactfs.errors import ArtifactfsError
from artifactfs.faults import fault_point
from artifactfs.index import find_store_row, get_index
from artifactfs.index import migrate_store as moves
from artifactfs.index.artifacts import uri_owner, version_files
from artifactfs.index.gc import VersionRef
from artifactfs.index.journal import gather
from artifactfs.index.models import VersionRow
from artifactfs.index.models import PayloadKind
from artifactfs.index.stores import OpenStores, shared_stores
from artifactfs.index.sweep import delete_payload
from artifactfs.stores.base import COPY_CHUNK, ArtifactStore
from artifactfs.stores.hashing import new_hasher
from artifactfs.stores.layout import payload_folder, viz_folder
from artifactfs.stores.manifest import ManifestEntry, hash_store_file

#: ``progress(total_bytes)`` returns a callback fed with copied byte counts.
Progress = Callable[[int], Callable[[int], None]]


@dataclass(frozen=True)
class ManifestFile:
    path: str
    size: int
    digest: str | None


@dataclass(frozen=True)
class Move:
    """One version to move, as the index described it when planning."""

    version_pk: int
    uuid: str
    name: str
    version: str
    store_id: int
    store: str
    uri: str
    payload_kind: str
    hash_algorithm: str
    size: int
    files: tuple[ManifestFile, ...]
    visualizations: tuple[dict, ...]

    @property
    def label(self) -> str:
        """``name:version``, as messages name the version."""
        return f"{self.name}:{self.version}"

    def file_uri(self, relative: str) -> str:
        """The URI of one payload file of the version being moved."""
        return self.uri if self.payload_kind == PayloadKind.FILE.value else posixpath.join(self.uri, relative)


@dataclass
class MigrationReport:
    target: str
    moved: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (version, why): not moved
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (version, why): changed meanwhile
    deleted: list[str] = field(default_factory=list)  # source URIs deleted
    bytes_copied: int = 0
    bytes_reused: int = 0  # already copied intact by an earlier, interrupted run


def plan_migration(to: str, artifact: str | None = None, from_store: str | None = None) -> list[Move]:
    """The versions :func:`migrate` would move (reads only)."""
    with get_index().read() as session:
        target_id = find_store_row(session, to).id
        from_id = find_store_row(session, from_store).id if from_store else None
        if from_id == target_id:
            raise ArtifactfsError(f"--from and --to both name store {to!r}", "pick two different stores")
        plan = []
        for row in moves.versions_to_move(session, target_id, artifact, from_id):
            files = tuple(ManifestFile(f.path, f.size, f.digest) for f in version_files(session, row.id))
            plan.append(Move(
                version_pk=row.id, uuid=row.uuid, name=row.artifact.name, version=row.version,
                store_id=row.store_id, store=row.store.name, uri=row.uri, payload_kind=row.payload_kind,
                hash_algorithm=row.hash_algorithm, size=sum(f.size for f in files), files=files,
                visualizations=tuple(dict(v) for v in row.visualizations or ()),
            ))
        return plan


def migrate(
    to: str,
    artifact: str | None = None,
    from_store: str | None = None,
    delete_source: bool = False,
    progress: Progress | None = None,
) -> MigrationReport:
    """Move the payloads of live versions (of ``artifact``, from ``from_store``)
    into store ``to``. Safe to run again after a crash; see the module docstring."""
    target = get_store(to)
    plan = plan_migration(to, artifact, from_store)
    report = MigrationReport(target=to)
    advance = progress(sum(m.size for m in plan)) if progress else (lambda n: None)
    sources = shared_stores(get_index())
    for move in plan:
        source = sources.get(move.store_id)
        try:
            with WriteBatch(target, fault="migrate_before_repoint") as batch:  # the write protocol, as a save's
                payload, = batch.begin([(move.name, None)], numbered=False, uuids=[move.uuid])
                payload.label = move.label
                new_uri, visualizations = _copy_version(move, source, target, report, advance)
                files, record = _manifest_of(move, target)  # the manifest file beside the copy
                batch.written(payload, files, record=record)
                batch.commit(functools.partial(_repoint, move, batch, new_uri, visualizations))
        except (IntegrityError, FileNotFoundError, PayloadMissingError) as exc:
            report.failed.append((move.label, getattr(exc, "message", None) or str(exc)))
            continue
        except _Changed:  # the copy is abandoned; kept if another run moved it here
            report.skipped.append((move.label, "it changed while being copied (condemned, or moved by another run)"))
            continue
        report.moved.append(move.label)
        fault_point("migrate_before_delete")
        if delete_source:
            report.deleted.extend(_delete_payload(source, _old_payload(move), [f.path for f in move.files]))
    if delete_source:
        report.deleted.extend(_delete_leftovers(to, artifact, from_store, sources))
    return report


class _Changed(Exception):
    """The version changed while it was copied: nothing is re-pointed."""


def _repoint(move: Move, batch: WriteBatch, new_uri: str, visualizations: list[dict], session) -> None:
    """The commit's change (write protocol step 4, in the batch's transaction,
    which also checks the copy and clears the intent): re-point the row at
    the copy, if it is still live and where it was copied from."""
    change = moves.Repoint(
        version_id=move.version_pk, old_store_id=move.store_id, old_uri=move.uri,
        store_id=batch.store_id(session), uri=new_uri, payload_kind=PayloadKind.FOLDER.value,
        visualizations=visualizations,
    )
    if not moves.repoint(session, change):
        raise _Changed()


# -- copying -----------------------------------------------------------------------------


def _copy_version(move: Move, source: ArtifactStore, target: ArtifactStore, report: MigrationReport,
                  advance: Callable[[int], None]) -> tuple[str, list[dict]]:
    """Copy and verify one version's files and visualizations; returns the new
    URI and visualization list."""
    folder = payload_folder(move.name, move.uuid)
    for entry in move.files:
        src = source.resolve(move.file_uri(entry.path))
        dst = target.resolve(f"{folder}/{entry.path}")
        if _intact(target, dst, entry, move.hash_algorithm):
            report.bytes_reused += entry.size
            advance(entry.size)
            continue
        _copy_file(move, entry, source, src, target, dst, advance)
        report.bytes_copied += entry.size
        fault_point("migrate_mid_copy")
    return target.uri(folder), _copy_visualizations(move, source, target, folder)  # made durable by the batch


def _copy_file(move: Move, entry: ManifestFile, source: ArtifactStore, src: str, target: ArtifactStore, dst: str,
               advance: Callable[[int], None]) -> None:
    digest, size = new_hasher(move.hash_algorithm), 0
    with source.fs.open(src, "rb") as fin, target.fs.open(dst, "wb") as fout:
        while chunk := fin.read(COPY_CHUNK):
            digest.update(chunk)
            fout.write(chunk)
            size += len(chunk)
            advance(len(chunk))
    if size != entry.size or (entry.digest and digest.hexdigest() != entry.digest):
        _remove_file(target, dst)
        raise IntegrityError(
            f"{move.label}: source file {entry.path!r} differs from its manifest "
            f"(size {size} vs {entry.size}); not migrated",
            "run `artifactfs fsck` to list damaged versions",
        )
    if not _intact(target, dst, entry, move.hash_algorithm):
        _remove_file(target, dst)
        raise IntegrityError(
            f"{move.label}: the copy of {entry.path!r} in store {target.name!r} does not read back as written",
            "check the target store, then run the migration again",
        )


def _intact(store: ArtifactStore, native: str, entry: ManifestFile, algorithm: str) -> bool:
    """Whether ``native`` holds exactly the manifest's bytes (size first, then the digest)."""
    try:
        info = store.fs.info(native)
    except FileNotFoundError:
        return False
    if info.get("type") != "file" or int(info.get("size") or 0) != entry.size:
        return False
    if entry.digest is None:
        return True
    return hash_store_file(store, native, algorithm) == (entry.size, entry.digest)


def _copy_visualizations(move: Move, source: ArtifactStore, target: ArtifactStore, folder: str) -> list[dict]:
    """Visualizations are not in the manifest: copied when present, sizes checked."""
    copied = []
    old_prefix = viz_folder(move.uri) + "/"
    for item in move.visualizations:
        uri = item.get("uri", "")
        relative = uri[len(old_prefix):] if uri.startswith(old_prefix) else posixpath.basename(uri)
        new_uri = target.uri(f"{viz_folder(folder)}/{relative}")
        try:
            src = source.resolve(uri)
            size = int(source.fs.info(src)["size"])
            dst = target.resolve(new_uri)
            if not (target.fs.exists(dst) and int(target.fs.info(dst).get("size") or -1) == size):
                with source.fs.open(src, "rb") as fin, target.fs.open(dst, "wb") as fout:
                    while chunk := fin.read(COPY_CHUNK):
                        fout.write(chunk)
        except (FileNotFoundError, ArtifactfsError):
            continue  # a visualization that is gone is dropped, the payload still moves
        copied.append({**item, "uri": new_uri})
    return copied


# -- deleting sources ---------------------------------------------------------------------


def _delete_payload(store: ArtifactStore | None, ref: VersionRef, listed: list[str]) -> list[str]:
    """Delete the old payload of a version moved away (no row names it any
    more; missing is fine) through the pruner's own sweep of one payload
    (``index.sweep``): a folder registered in place loses only the files its
    manifest lists (``listed``), a layout payload goes whole with its
    visualizations and manifest file. Returns what was deleted."""
    if store is None:
        return []
    with get_index().read() as session:
        if uri_owner(session, ref.uri) is not None:  # adopted paths may nest: another version owns part of it
            return []
    native = store.resolve(ref.uri)
    there = store.fs.isfile(native) if ref.payload_kind == PayloadKind.FILE.value else (
        native != store.root and store.isdir(ref.uri))
    if native == store.root:
        return []
    delete_payload(store, ref, listed)
    return [ref.uri] if there else []


def _old_payload(move: Move) -> VersionRef:
    """The payload a move leaves behind, as the sweep describes one."""
    return VersionRef(move.version_pk, move.uuid, move.name, move.version, move.store_id, move.uri,
                      move.payload_kind, move.size, len(move.files), "", "moved", None, None,
                      has_viz=bool(move.visualizations), hash_algorithm=move.hash_algorithm)


def _delete_leftovers(to: str, artifact: str | None, from_store: str | None, sources: OpenStores) -> list[str]:
    """Sources an earlier run re-pointed away from but was killed before deleting."""
    with get_index().read() as session:
        moved = moves.versions_moved_to(session, find_store_row(session, to).id, artifact)
        left = [(row, history[-1], [f.path for f in version_files(session, row.id)]) for row, history in moved]
        free = [(row, uri, listed) for row, uri, listed in left if uri_owner(session, uri) is None]
        refs = [(VersionRef(row.id, row.uuid, row.artifact.name, row.version, row.store_id, uri, PayloadKind.FOLDER.value,
                            row.size, len(listed), "", "moved", None, None, has_viz=True,
                            hash_algorithm=row.hash_algorithm), listed) for row, uri, listed in free]
    deleted = []
    for ref, listed in refs:
        store = store_for_uri(ref.uri)
        if store is None or (from_store and store.name != from_store) or store.name == to:
            continue
        if store.fs.isfile(store.resolve(ref.uri)):  # a single file registered in place
            ref = dataclasses.replace(ref, payload_kind=PayloadKind.FILE.value)
        deleted.extend(_delete_payload(store, ref, listed))
    return deleted


# -- helpers ---------------------------------------------------------------------------------


def _manifest_of(move: Move, target: ArtifactStore) -> tuple[list[ManifestEntry], dict | None]:
    """The files of a version and the record of its manifest file, read from
    its row (None: forgotten meanwhile, and the re-point will refuse it)."""
    with get_index().read() as session:
        row = session.get(VersionRow, move.version_pk)
        if row is None:
            return [ManifestEntry(f.path, f.size, 0, f.digest or "") for f in move.files], None
        gathered = gather(session, [row.id])[row.id]  # the whole journal: tags, metadata, links
        record = gathered.record(target, target.uri(payload_folder(move.name, move.uuid)))
        files = [ManifestEntry(f.path, f.size, f.mode, f.digest or "") for f in gathered.files]
    return files, record


def _remove_file(store: ArtifactStore, native: str) -> None:
    try:
        store.fs.rm_file(native)
    except Exception:  # noqa: BLE001
        pass


__all__ = ["MigrationReport", "Move", "migrate", "plan_migration"]
