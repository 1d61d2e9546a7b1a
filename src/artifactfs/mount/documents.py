"""The JSON document beside each version folder (``<version>.json``,
``<output>.json``): the version's record plus its tags, metadata and
lineage (the step outputs that show it, the producer's inputs, the step
runs that consumed it), made from the index.

A document's content can change (tags, consumers), so it is made afresh on
each open; only its size is kept, until the index generation moves, for
listings and ``getattr``. Sizes of a listed folder's documents are made in
one batch of queries. One top-level key per line, each value in compact
JSON: readable, and made by the C encoder (a tenth of ``indent=2``'s cost).
"""

from __future__ import annotations

import datetime as dt
import json

from artifactfs.index import tree as q
from artifactfs.mount.records import Records

_encode = json.JSONEncoder(separators=(", ", ": "), default=str, ensure_ascii=False).encode


def iso(ns: int) -> str:
    """A time in nanoseconds since the epoch as ISO 8601 text in UTC."""
    return dt.datetime.fromtimestamp(ns / 1e9, dt.timezone.utc).isoformat()


def render(version: q.VersionRecord, extra: dict) -> bytes:
    """The JSON document shown beside a version folder: the version, its producer and its outputs."""
    outputs = extra.get("outputs", [])
    producer = extra.get("producer")
    producer = dict(producer, inputs=extra.get("producer_inputs", [])) if producer else None
    fields = (
        ("id", version.uuid),
        ("name", version.artifact),
        ("version", version.version),
        ("store", version.store),
        ("uri", version.uri),
        ("payload_kind", version.payload_kind),
        ("data_type", version.data_type),
        ("materializer", version.materializer),
        ("content_hash", version.content_hash),
        ("size", version.size),
        ("file_count", version.file_count),
        ("save_type", version.save_type),
        ("created", iso(version.created_ns)),
        ("tags", extra.get("tags", [])),
        ("metadata", extra.get("metadata", {})),
        ("producer", producer),
        ("outputs", outputs),
        ("consumers", extra.get("consumers", [])),
    )
    body = ",\n".join(f'  "{key}": {_encode(value)}' for key, value in fields)
    return ("{\n" + body + "\n}\n").encode()


class Documents:
    """Documents of one mount: sizes kept per generation, content made on open."""

    def __init__(self, records: Records) -> None:
        self.records = records
        self._sizes: dict[int, int] = {}  # version id -> size of its document
        self._epoch = records.epoch

    def _known(self, version_id: int) -> int | None:
        with self.records.lock:
            if self._epoch != self.records.epoch:
                self._sizes.clear()
                self._epoch = self.records.epoch
            return self._sizes.get(version_id)

    def _keep(self, sizes: dict[int, int], epoch: int) -> None:
        with self.records.lock:
            if epoch == self.records.epoch == self._epoch:
                self._sizes.update(sizes)

    def prepare(self, versions: list[q.VersionRecord]) -> None:
        """Size the documents of many versions at once (a few queries)."""
        wanted = [v for v in versions if self._known(v.id) is None]
        if not wanted:
            return
        epoch = self.records.epoch
        extras = self.records.query(q.documents, [v.id for v in wanted])
        self._keep({v.id: len(render(v, extras[v.id])) for v in wanted}, epoch)

    def size(self, version: q.VersionRecord) -> int:
        """The size in bytes of a version's JSON document (rendered once when not known yet)."""
        size = self._known(version.id)
        if size is None:
            self.prepare([version])
            size = self._known(version.id)
            if size is None:  # the generation moved meanwhile
                size = len(self.data(version))
        return size

    def data(self, version: q.VersionRecord) -> bytes:
        """The document as it is now."""
        epoch = self.records.epoch
        data = render(version, self.records.query(q.documents, [version.id])[version.id])
        self._keep({version.id: len(data)}, epoch)
        return data
