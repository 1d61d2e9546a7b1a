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
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from artifactfs.index import browse
from artifactfs.index.db import Index
from artifactfs.index.models import PayloadKind
from artifactfs.index.stores import OpenStores

CHUNK = 1 << 20
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
    name: str
    size: int
    chunks: Iterator[bytes]


def open_file(stores: Stores, version: str, path: str) -> Download:
    """A manifest file of a live version, opened, streamed in chunks."""
    with stores.index.read() as session:
        payload = browse.version_payload(session, version)
        entry = browse.find_file(session, payload[0], path) if payload else None
    if entry is None:
        raise NotInManifest(path)
    _, uri, kind, store_id, _ = payload
    store = stores.get(store_id)
    handle = store.open(uri if kind == PayloadKind.FILE.value else posixpath.join(uri, entry.path), "rb")
    return Download(posixpath.basename(entry.path), entry.size, _chunks(handle))


def _chunks(handle) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(CHUNK):
            yield chunk


def read_visualization(stores: Stores, version: str, number: int, limit: int | None = None) -> tuple[str, bytes]:
    """``(kind, bytes)`` of a version's visualization, at most ``limit`` bytes."""
    with stores.index.read() as session:
        payload = browse.version_payload(session, version)
    items = payload[4] if payload else []
    if not 0 <= number < len(items or []):
        raise NotInManifest(f"visualization {number}")
    item = items[number]
    store = stores.get(payload[3])
    data = store.read_bytes(item["uri"], 0, limit) if limit else store.read_bytes(item["uri"])
    return str(item.get("kind", "")), data


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
