"""Bytes from stores for the web view: a manifest file as a download, a
visualization raw (for a sandboxed frame or an image) or made into
something a page can show (a CSV table, Markdown, pretty JSON).

Nothing from a request reaches a store: a download names a manifest path,
which must equal a ``version_file`` row of that live version, and a
visualization is named by its position in the version's list; the URIs
read are the index's own, and the store confines them to its root again.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import posixpath
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from artifactfs.index import browse, names
from artifactfs.index.db import Index
from artifactfs.index.models import PayloadKind
from artifactfs.index.stores import OpenStores
from artifactfs.stores.base import ArtifactStore
from artifactfs.stores.beneath import LinkFound

log = logging.getLogger(__name__)

CHUNK = 1 << 20
SNIFF_BYTES = 64  # what media_type looks at
SHOWN_BYTES = 1 << 20  # at most this much of a visualization is read to show inline
CSV_ROWS = 100

_IMAGE_TYPES = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF8", "image/gif"),
                (b"<svg", "image/svg+xml"), (b"<?xml", "image/svg+xml"))
_TEXT_TYPES = {"html": "text/html; charset=utf-8", "csv": "text/csv; charset=utf-8",
               "markdown": "text/plain; charset=utf-8", "json": "application/json"}


class NotInManifest(LookupError):
    """The version is not live, or has no such file or visualization."""


class Stores(OpenStores):
    """The stores a server reads: ``index.stores.OpenStores``, checked for a
    changed row (``store update``, ``store login``) on every request."""

    def __init__(self, index: Index) -> None:
        super().__init__(index, recheck=0)


@dataclass(frozen=True)
class Download:
    """A manifest file found in the index; nothing of it read yet."""

    name: str
    size: int
    store_id: int
    uri: str

    def open(self, stores: Stores):
        """Its file, opened now (a missing one raises here, before any answer is sent)."""
        return open_payload(stores.get(self.store_id), self.uri)

    def chunks(self, stores: Stores, handle=None) -> Iterator[bytes]:
        """Its bytes in chunks of ``CHUNK``, from ``handle`` or opened when the first is asked for."""
        return _chunks(lambda: handle if handle is not None else self.open(stores))


def find_file(stores: Stores, version: str, path: str) -> Download:
    """A manifest file of a live version (only the index is read)."""
    with stores.index.read() as session:
        payload = browse.version_payload(session, version)
        entry = browse.find_file(session, payload[0], path) if payload else None
    if entry is None:
        raise NotInManifest(path)
    return Download(posixpath.basename(entry.path), entry.size, payload[3], file_uri(payload, entry.path))


def file_uri(payload: tuple, path: str) -> str:
    """The URI of manifest path ``path`` in a version's payload (``browse.version_payload``)."""
    _, uri, kind, _, _ = payload
    return uri if kind == PayloadKind.FILE.value else posixpath.join(uri, path)


def open_payload(store: ArtifactStore, uri: str):
    """A stored file opened for reading: on a local store beneath its root
    without following links, then streamed from that descriptor. A link
    there is logged and answered as a missing file (FileNotFoundError):
    what it points to is never served."""
    try:
        return store.open(uri, "rb")
    except LinkFound as exc:
        log.warning("not serving %s: %s", uri, exc)
        raise FileNotFoundError(f"{uri} is not served (a symbolic link)") from None


def _chunks(opener: Callable[[], Any]) -> Iterator[bytes]:
    with opener() as handle:
        while chunk := handle.read(CHUNK):
            yield chunk


def read_visualization(stores: Stores, version: str, number: int, limit: int | None = None) -> tuple[str, bytes]:
    """``(kind, bytes)`` of a version's visualization, at most ``limit`` bytes."""
    kind, store, uri = _visualization(stores, version, number)
    with open_payload(store, uri) as f:
        return kind, f.read(limit) if limit else f.read()


def open_visualization(stores: Stores, version: str, number: int, body: bool = True
                       ) -> tuple[str, str, Iterator[bytes]]:
    """``(kind, media type, chunks)`` of a version's visualization, streamed
    (never read whole: one may be gigabytes); ``body`` False reads only the
    few bytes its media type is told by."""
    kind, store, uri = _visualization(stores, version, number)
    handle = open_payload(store, uri)
    try:
        head = handle.read(SNIFF_BYTES)
    except BaseException:
        handle.close()
        raise
    if not body:
        handle.close()
        return kind, media_type(kind, head), iter(())

    def chunks() -> Iterator[bytes]:
        with handle:
            if head:
                yield head
            while chunk := handle.read(CHUNK):
                yield chunk

    return kind, media_type(kind, head), chunks()


def _visualization(stores: Stores, version: str, number: int) -> tuple[str, ArtifactStore, str]:
    with stores.index.read() as session:
        payload = browse.version_payload(session, version)
    items = payload[4] if payload else []
    if not 0 <= number < len(items or []):
        raise NotInManifest(f"visualization {number}")
    item = items[number]
    return str(item.get("kind", "")), stores.get(payload[3]), item["uri"]


def media_type(kind: str, data: bytes) -> str:
    if kind == "image":
        head = data[:64].lstrip()
        for magic, media in _IMAGE_TYPES:
            if head.startswith(magic):
                return media
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return "image/webp"
        return "application/octet-stream"
    return _TEXT_TYPES.get(kind, "application/octet-stream")


@dataclass(frozen=True)
class Shown:
    """A visualization made ready for a page: a table, markup, text, or a
    frame/image the browser loads itself."""

    index: int
    kind: str
    rows: list[list[str]] | None = None
    markup: Markup | None = None
    text: str | None = None
    cut: bool = False
    error: str | None = None


def show(stores: Stores, version: str, number: int, kind: str) -> Shown:
    """What the version page shows for one visualization (HTML and images
    are loaded by the browser from the raw route, in a sandbox)."""
    if kind in ("html", "image"):
        return Shown(number, kind)
    try:
        kind, data = read_visualization(stores, version, number, SHOWN_BYTES + 1)
    except Exception as exc:  # noqa: BLE001 - a broken store spoils one box, not the page
        return Shown(number, kind, error=f"could not read it: {type(exc).__name__}")
    cut = len(data) > SHOWN_BYTES
    text = data[:SHOWN_BYTES].decode("utf-8", errors="replace")
    if kind == "csv":
        rows = list(_csv_rows(text))
        return Shown(number, kind, rows=rows[: CSV_ROWS + 1], cut=cut or len(rows) > CSV_ROWS + 1)
    if kind == "markdown":
        return Shown(number, kind, markup=render_markdown(text), cut=cut)
    if kind == "json" and not cut:
        text = _pretty(text)
    return Shown(number, kind, text=text, cut=cut)


def _csv_rows(text: str) -> Iterator[list[str]]:
    try:
        yield from csv.reader(io.StringIO(text))
    except csv.Error:
        return


def _pretty(text: str) -> str:
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


def render_markdown(text: str) -> Markup:
    """Markdown as HTML with raw HTML switched off and unsafe link schemes
    (``javascript:``) refused: markdown-it's safe defaults."""
    from markdown_it import MarkdownIt

    return Markup(MarkdownIt("commonmark", {"html": False}).enable("table").render(text))


def pretty_value(value: Any) -> str:
    """A metadata value as text for a table cell."""
    if isinstance(value, (dict, list)):
        return json.dumps(value, indent=1, ensure_ascii=False)
    return json.dumps(value, ensure_ascii=False) if value is None or isinstance(value, bool) else str(value)


# -- a whole version as one archive ----------------------------------------------------------------

_BLOCK = tarfile.BLOCKSIZE


class ArchiveBroken(RuntimeError):
    """A payload file's size differs from its manifest row: the archive is
    cut off (the client sees an incomplete download), never sent wrong."""


def archive(stores: Stores, version: str) -> tuple[str, Iterator[bytes]]:
    """``(file name, chunks)`` of a tar archive of a live version's manifest
    files under one folder ``<artifact>-<version>/``, streamed: one manifest
    page and one file chunk in memory at a time. Nothing is read until the
    first chunk is asked for."""
    with stores.index.read() as session:
        payload = browse.version_payload(session, version)
        detail = browse.get_version(session, version) if payload else None
    if payload is None or detail is None:
        raise NotInManifest(version)
    item = detail.version
    top = f"{names.escape(item.artifact)}-{names.escape(item.version)}"
    return top + ".tar", _tar(stores, payload, top, item.created_at.timestamp())


def _tar(stores: Stores, payload: tuple, top: str, mtime: float) -> Iterator[bytes]:
    after = None
    while True:
        with stores.index.read() as session:
            page = browse.list_files(session, payload[0], after, browse.MAX_LIMIT)
        for entry in page.items:
            info = tarfile.TarInfo(f"{top}/{entry.path}")
            info.size, info.mode, info.mtime = entry.size, entry.mode & 0o7777, int(mtime)
            yield info.tobuf(tarfile.PAX_FORMAT)
            sent = 0
            for chunk in Download(entry.path, entry.size, payload[3], file_uri(payload, entry.path)).chunks(stores):
                sent += len(chunk)
                if sent > entry.size:
                    break
                yield chunk
            if sent != entry.size:
                raise ArchiveBroken(f"{entry.path}: the manifest says {entry.size} bytes, the store holds "
                                    f"{'more' if sent > entry.size else sent}")
            yield b"\0" * (-entry.size % _BLOCK)
        if page.next_cursor is None:
            break
        after = page.next_cursor
    yield b"\0" * (2 * _BLOCK)
