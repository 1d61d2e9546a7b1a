"""Extended attributes of the mount: ``user.artifactfs.*`` on version
folders (and their sub-folders) and on payload files; nothing elsewhere.

Programs ask for names that are never ours on every file they list
(``ls -l`` asks for ``security.selinux`` and the POSIX ACLs of each entry):
those are answered from the name alone, before anything is looked up.
Another ``user.`` name is ENODATA (the namespace is ours, the attribute
does not exist); a name in a namespace the mount does not implement at all
(``security.``, ``system.``, ``trusted.``) is EOPNOTSUPP, as on any file
system without it, which also tells ``ls`` to stop asking for the rest of
the mount. Our values are built once per version (its record and producer)
and kept in a small LRU until the index generation moves; a file adds its
own three (path, digest, size).
"""

from __future__ import annotations

from artifactfs.index import tree as q
from artifactfs.mount.documents import iso
from artifactfs.mount.inodes import Kind
from artifactfs.mount.nodes import NoAttr, Unsupported, split
from artifactfs.mount.records import Lru, Records

PREFIX = "user.artifactfs."
_PREFIX = PREFIX.encode()
_USER = b"user."
_FOLDERS = (Kind.VERSION, Kind.OUTPUT, Kind.VERSION_DIR, Kind.OUTPUT_DIR)
_FILE_NAMES = (PREFIX + "path", PREFIX + "digest", PREFIX + "file_size")


def version_values(version: q.VersionRecord, producer: q.Producer | None) -> dict[str, bytes]:
    """The extended attributes of a version folder: its row's facts and, when a step made it, the producer."""
    values = {
        "id": version.uuid,
        "name": version.artifact,
        "version": version.version,
        "store": version.store,
        "uri": version.uri,
        "data_type": version.data_type or "",
        "materializer": version.materializer or "",
        "content_hash": version.content_hash or "",
        "save_type": version.save_type,
        "size": str(version.size),
        "file_count": str(version.file_count),
        "created": iso(version.created_ns),
    }
    if producer is not None:
        values |= {"producer.pipeline": producer.pipeline, "producer.run": producer.run,
                   "producer.step": producer.step, "producer.output": producer.output}
    return {PREFIX + key: value.encode() for key, value in values.items()}


def file_values(record: q.FileRecord) -> dict[str, bytes]:
    """The extended attributes of a payload file: its path, digest and size."""
    return dict(zip(_FILE_NAMES, (record.path.encode(), (record.digest or "").encode(), str(record.size).encode())))


class Xattrs:
    """The extended attributes of one mount's inodes."""

    def __init__(self, records: Records, capacity: int = 4096) -> None:
        self.records = records
        self._values = Lru(capacity)  # version id -> its values, for the current epoch
        self._epoch = records.epoch

    def get(self, inode: int, name: bytes) -> bytes:
        """One value; NoAttr (ENODATA) for another ``user.`` name, Unsupported
        (EOPNOTSUPP) for a name in any other namespace."""
        if not name.startswith(_PREFIX):
            raise (NoAttr if name.startswith(_USER) else Unsupported)(name.decode(errors="replace"))
        value = self.all(inode).get(name.decode(errors="replace"))
        if value is None:
            raise NoAttr(name.decode(errors="replace"))
        return value

    def all(self, inode: int) -> dict[str, bytes]:
        """Every name and value of ``inode`` ({} where there are none)."""
        kind, payload = split(inode)
        if kind in _FOLDERS:
            return self._version_values(self.records.view(kind, payload)[0].version)
        if kind == Kind.FILE:
            version, record = self.records.file(payload)
            return self._version_values(version) | file_values(record)
        return {}

    def _version_values(self, version: q.VersionRecord) -> dict[str, bytes]:
        records = self.records
        with records.lock:
            if self._epoch != records.epoch:  # records (store, uri) may have been re-pointed
                self._values.clear()
                self._epoch = records.epoch
            values = self._values.get(version.id)
            epoch = records.epoch
        if values is None:
            values = version_values(version, records.producer(version.id))
            with records.lock:
                if epoch == records.epoch == self._epoch:
                    self._values.put(version.id, values)
        return values
