"""Folder listings of the mount's tree, in a stable order: the top folders,
pipelines, runs, steps (their outputs and documents), artifacts (their
versions, documents and ``latest``) and the files and sub-folders of a
version from its manifest.

A listing of a folder that can grow is kept until the index generation
moves; listing an artifact also learns its versions' records, manifests
(when small) and document sizes in a few batched queries, so the lookups
and ``getattr`` calls that follow a listing need no query.
"""

from __future__ import annotations

from collections.abc import Callable

from artifactfs.index import names
from artifactfs.index import tree as q
from artifactfs.mount import inodes
from artifactfs.mount.documents import Documents
from artifactfs.mount.inodes import Kind
from artifactfs.mount.nodes import (
    Node,
    NotADir,
    NotFound,
    View,
    dir_node,
    doc_node,
    file_node,
    folder_node,
    latest_node,
    named_node,
    split,
)
from artifactfs.mount.records import Records

Entries = list[tuple[bytes, Node]]


class Listing:
    def __init__(self, records: Records, documents: Documents, started_ns: int) -> None:
        self.records, self.documents, self.started_ns = records, documents, started_ns

    def listdir(self, inode: int) -> Entries:
        """The entries of folder ``inode``, in a stable order."""
        kind, payload = split(inode)
        if kind == Kind.SPECIAL:
            return self._special(payload, inode)
        if kind == Kind.PIPELINE:
            self.records.named(kind, payload)
            return self._named(Kind.RUN, ("runs", payload), lambda s: q.list_runs(s, payload))
        if kind == Kind.RUN:
            self.records.named(kind, payload)
            return self._named(Kind.STEP, ("steps", payload), lambda s: q.list_steps(s, payload))
        if kind == Kind.STEP:
            self.records.named(kind, payload)
            return self._step(payload)
        if kind == Kind.ARTIFACT:
            return self._artifact(self.records.named(kind, payload))
        if kind in (Kind.VERSION, Kind.OUTPUT, Kind.VERSION_DIR, Kind.OUTPUT_DIR):
            return self._version_folder(kind, payload, inode)
        raise NotADir(f"inode {inode}")

    def _special(self, which: int, inode: int) -> Entries:
        if which == inodes.ROOT:
            return [(b"artifacts", dir_node(inodes.ARTIFACTS, self.started_ns, True)),
                    (b"pipelines", dir_node(inodes.PIPELINES, self.started_ns, True))]
        if which == inodes.PIPELINES:
            return self._named(Kind.PIPELINE, ("pipelines",), q.list_pipelines)
        if which == inodes.ARTIFACTS:
            return self._named(Kind.ARTIFACT, ("artifacts",), q.list_artifacts)
        raise NotFound(f"inode {inode}")

    def _named(self, kind: Kind, key, load: Callable) -> Entries:
        records = self.records
        listed = records.moving_memo(key, load)
        with records.lock:
            for record in listed:
                records.moving.put((kind, record.id), record)
        return [(names.escape(r.name).encode(), named_node(kind, r)) for r in listed]

    def _version_folder(self, kind: Kind, payload: int, inode: int) -> Entries:
        view, number = self.records.view(kind, payload)
        manifest = self.records.manifest(view.version)
        entries = []
        files = []
        for name, (is_folder, ref) in manifest.children(number, inode):
            if is_folder:
                entries.append((name, folder_node(view, ref, manifest.subfolders(ref, inode))))
            else:
                entries.append((name, file_node(view.version, manifest.file(ref))))
                files.append(ref)
        self.records.shown_files(view.version.id, files)
        return entries

    def _step(self, step_id: int) -> Entries:
        outputs = self.records.outputs(step_id)
        self.documents.prepare([o.version for o in outputs])
        entries = []
        for output in outputs:
            view = View(Kind.OUTPUT_DIR, output.id, output.version)
            entries.append((names.escape(output.name, reserved=True).encode(), folder_node(view, 0)))
            entries.append((names.doc_name(output.name).encode(),
                            doc_node(inodes.make(Kind.OUTPUT_DOC, output.id), output.version,
                                     self.documents.size(output.version))))
        return entries

    def _artifact(self, artifact: q.Named) -> Entries:
        versions = self._versions(artifact.id)
        self.documents.prepare(versions)
        entries = []
        for version in versions:
            view = View(Kind.VERSION_DIR, version.id, version)
            entries.append((names.escape(version.version, reserved=True).encode(), folder_node(view, 0)))
            entries.append((names.doc_name(version.version).encode(),
                            doc_node(inodes.make(Kind.VERSION_DOC, version.id), version,
                                     self.documents.size(version))))
        if versions:
            entries.append((names.LATEST.encode(), latest_node(artifact, self.records.latest_target(artifact.id))))
        return entries

    def _versions(self, artifact_id: int) -> list[q.VersionRecord]:
        """The live versions of an artifact, learned with their manifests."""
        records = self.records
        key = ("versions", artifact_id)
        with records.lock:
            versions = records.moving.get(key)
            epoch = records.epoch
        if versions is not None:
            return versions
        records.check_query()
        with records.index.engine.connect() as connection:
            versions = q.list_versions(connection, artifact_id)
            records.prefetch_manifests(connection, versions, epoch)
        with records.lock:
            if records.epoch == epoch:
                records.moving.put(key, versions)
                # Later lookups of these names need no query.
                records.moving.put(("version-names", artifact_id), {v.version: v.id for v in versions})
                for version in versions:
                    records.versions.put(version.id, version)
        return versions
