"""Name lookup in the mount's tree: the child called ``name`` of a folder,
decoded from its shown (escaped) name and found through the records. A
miss is cached like a hit (until the index generation moves), so a name
that does not exist costs one query, not one per ask.
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
from artifactfs.mount.records import MISSING, Records

_ROOT_CHILDREN = {b"pipelines": inodes.PIPELINES, b"artifacts": inodes.ARTIFACTS}


class Lookup:
    def __init__(self, records: Records, documents: Documents, started_ns: int) -> None:
        self.records, self.documents, self.started_ns = records, documents, started_ns

    def lookup(self, parent: int, name: bytes) -> Node:
        """The child ``name`` of folder ``parent``; :class:`NotFound` if none."""
        kind, payload = split(parent)
        if kind == Kind.SPECIAL:
            return self._special(payload, name)
        if kind == Kind.PIPELINE:
            self.records.named(Kind.PIPELINE, payload)
            run = self._find(Kind.RUN, ("run", payload, name), name, lambda s, n: q.find_run(s, payload, n),
                             lambda s, _prefix: q.list_runs(s, payload))
            return named_node(Kind.RUN, run)
        if kind == Kind.RUN:
            self.records.named(Kind.RUN, payload)
            step = self._find(Kind.STEP, ("step", payload, name), name, lambda s, n: q.find_step(s, payload, n),
                              lambda s, _prefix: q.list_steps(s, payload))
            return named_node(Kind.STEP, step)
        if kind == Kind.STEP:
            return self._output(payload, name)
        if kind == Kind.ARTIFACT:
            return self._version(payload, name)
        if kind in (Kind.VERSION, Kind.OUTPUT, Kind.VERSION_DIR, Kind.OUTPUT_DIR):
            return self._in_version(kind, payload, parent, name)
        raise NotADir(f"inode {parent}")

    def _special(self, which: int, name: bytes) -> Node:
        if which == inodes.ROOT:
            child = _ROOT_CHILDREN.get(name)
            if child is None:
                raise NotFound(name.decode(errors="replace"), stable=True)
            return dir_node(child, self.started_ns, True)
        if which == inodes.PIPELINES:
            pipeline = self._find(Kind.PIPELINE, ("pipeline", name), name, q.find_pipeline,
                                  lambda s, _prefix: q.list_pipelines(s))
            return named_node(Kind.PIPELINE, pipeline)
        if which == inodes.ARTIFACTS:
            artifact = self._find(Kind.ARTIFACT, ("artifact", name), name, q.find_artifact, q.find_artifacts_like)
            return named_node(Kind.ARTIFACT, artifact)
        raise NotADir(f"inode {which}")

    def _in_version(self, kind: Kind, payload: int, parent: int, name: bytes) -> Node:
        """A file or sub-folder of a version: from its manifest, which never changes."""
        view, number = self.records.view(kind, payload)
        manifest = self.records.manifest(view.version)
        child = manifest.child(number, parent, name)
        if child is None:
            raise NotFound(name.decode(errors="replace"), stable=True)
        is_folder, ref = child
        if is_folder:
            return folder_node(view, ref, manifest.subfolders(ref, parent))
        self.records.shown_files(view.version.id, [ref])
        return file_node(view.version, manifest.file(ref))

    def _find(self, kind: Kind, key, shown: bytes, find: Callable, find_like: Callable):
        """A record by its shown name, through the moving cache (misses too),
        kept under its id as well. ``find_like(session, prefix)`` gives the
        candidates for a shortened name."""
        records = self.records
        cached, epoch = records.cached(records.moving, key)
        if cached is None:
            raise NotFound(shown.decode(errors="replace"))
        if cached is not MISSING:
            return cached
        decoded = names.unescape(shown)
        if decoded is None:
            raise NotFound(shown.decode(errors="replace"))
        if decoded.hashed is None:
            record = records.query(find, decoded.name)
        else:
            record = next((r for r in records.query(find_like, decoded.name) if decoded.matches(r.name)), None)
        records.remember(records.moving, key, record, epoch)
        if record is None:
            raise NotFound(shown.decode(errors="replace"))
        records.remember(records.moving, (kind, record.id), record, epoch)
        return record

    def _output(self, step_id: int, name: bytes) -> Node:
        self.records.named(Kind.STEP, step_id)
        for output in self.records.outputs(step_id):
            if names.escape(output.name, reserved=True).encode() == name:
                return folder_node(View(Kind.OUTPUT_DIR, output.id, output.version), 0)
            if names.doc_name(output.name).encode() == name:
                return doc_node(inodes.make(Kind.OUTPUT_DOC, output.id), output.version,
                                self.documents.size(output.version))
        raise NotFound(name.decode(errors="replace"))

    def _version(self, artifact_id: int, name: bytes) -> Node:
        artifact = self.records.named(Kind.ARTIFACT, artifact_id)
        if name == names.LATEST.encode():
            return latest_node(artifact, self.records.latest_target(artifact.id))
        doc = names.undoc(name)
        decoded = doc if doc is not None else names.unescape(name, reserved=True)
        if decoded is None:
            raise NotFound(name.decode(errors="replace"))
        version = self._find_version(artifact_id, decoded)
        if doc is not None:
            return doc_node(inodes.make(Kind.VERSION_DOC, version.id), version, self.documents.size(version))
        return folder_node(View(Kind.VERSION_DIR, version.id, version), 0)

    def _find_version(self, artifact_id: int, decoded: names.Decoded) -> q.VersionRecord:
        records = self.records
        listed, _ = records.cached(records.moving, ("version-names", artifact_id))
        if listed is not MISSING and decoded.hashed is None:  # the folder was listed: no miss needs a query
            version_id = listed.get(decoded.name)
            if version_id is None:
                raise NotFound(decoded.shown)
            return records.version(version_id)
        key = ("version-name", artifact_id, decoded.name, decoded.hashed)
        version_id, epoch = records.cached(records.moving, key)
        if version_id is MISSING:
            if decoded.hashed is None:
                record, files = records.query(q.find_version_with_files, artifact_id, decoded.name,
                                              records.manifest_with_record)
            else:
                candidates = records.query(q.find_versions_like, artifact_id, decoded.name)
                record, files = next((r for r in candidates if decoded.matches(r.version)), None), None
            version_id = record.id if record else None
            records.remember(records.moving, key, version_id, epoch)
            if record is not None:
                records.learn(record, files, epoch)
        if version_id is None:
            raise NotFound(decoded.shown)
        return records.version(version_id)
