"""The payload layout of a store: where a save puts a version and what lies
beside it. The one owner of these names; every layer below the CLI asks here.

A saved (or copied, or migrated) version is a fresh folder
``<root>/<artifact name>/<uuid>/`` holding its payload files, named by the
version's uuid4. Beside it, never inside it, lie its visualizations
(``<uuid>.viz/``) and its manifest file (``<uuid>.manifest.json``). The
three together are ONE payload: they are written by one save, deleted
together and counted once.

A version registered in place is a user's own file or folder anywhere in a
store; it is not in the layout (it has no ``.viz`` nor manifest file beside
it, and only the files its manifest lists are ever deleted).

Paths here are strings, relative to the store root or full URIs alike: this
module only names things; opening them is the stores' job.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable

#: A payload folder's name: the version's uuid4.
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
#: ``<uuid>.viz/``: the visualizations beside a payload folder.
VIZ_SUFFIX = ".viz"
#: ``<uuid>.manifest.json``: the manifest file beside a payload folder.
MANIFEST_SUFFIX = ".manifest.json"

#: Payload kinds (the index's ``PayloadKind`` values): a folder of files, or
#: one file registered in place.
FOLDER, FILE = "folder", "file"

#: What a layout entry is, beside the payload folder itself.
PAYLOAD, VIZ, MANIFEST = "payload", "viz", "manifest"
_SUFFIXES = ((VIZ_SUFFIX, VIZ), (MANIFEST_SUFFIX, MANIFEST))


def payload_folder(name: str, version_uuid: str) -> str:
    """``<name>/<uuid>``: a fresh version's folder, relative to the store root."""
    return f"{name}/{version_uuid}"


def viz_folder(folder: str) -> str:
    """Where the visualizations of payload folder ``folder`` go: beside it."""
    return folder.rstrip("/") + VIZ_SUFFIX


def manifest_file(folder: str) -> str:
    """Where the manifest file of payload folder ``folder`` lies: beside it, never inside."""
    return folder.rstrip("/") + MANIFEST_SUFFIX


def payload_entries(folder: str) -> tuple[tuple[str, str], ...]:
    """``(path, what)`` of everything one payload is made of: the folder,
    its ``.viz`` folder (``VIZ``) and its manifest file (``MANIFEST``)."""
    return ((folder.rstrip("/"), PAYLOAD), (viz_folder(folder), VIZ), (manifest_file(folder), MANIFEST))


def classify(entry: str) -> tuple[str, str] | None:
    """``(uuid, what)`` when ``entry`` (a name inside ``<root>/<name>/``)
    belongs to the layout: ``PAYLOAD``, ``VIZ`` or ``MANIFEST``; else None."""
    what = PAYLOAD
    for suffix, kind in _SUFFIXES:
        if entry.endswith(suffix):
            entry, what = entry[: -len(suffix)], kind
            break
    return (entry, what) if UUID4.match(entry) else None


def payload_of(path: str) -> str:
    """The payload folder a layout entry (folder, ``.viz`` or manifest file) belongs to."""
    path = path.rstrip("/")
    for suffix, _ in _SUFFIXES:
        if path.endswith(suffix):
            return path[: -len(suffix)]
    return path


def payload_uuid(uri: str) -> str | None:
    """The uuid a layout payload folder is named by, or None when the last
    component of ``uri`` is not one (a path registered in place)."""
    name = posixpath.basename(uri.rstrip("/"))
    return name if UUID4.match(name) else None


def count_payloads(paths: Iterable[str]) -> int:
    """How many payloads these layout entries make up: a folder, its ``.viz``
    folder and its manifest file count once."""
    return len({payload_of(path) for path in paths})


def in_layout(uri: str, version_uuid: str, payload_kind: str) -> bool:
    """Whether a version's payload is a ``<root>/<name>/<uuid>`` folder that
    artifactfs made (saved, copied or migrated), by its row's values."""
    return payload_kind == FOLDER and posixpath.basename(uri.rstrip("/")) == version_uuid


def registered_in_place(uri: str, version_uuid: str, payload_kind: str) -> bool:
    """Whether a version's payload is a user's own file or folder, adopted
    where it lay (the opposite of :func:`in_layout`)."""
    return not in_layout(uri, version_uuid, payload_kind)


__all__ = [
    "FILE",
    "FOLDER",
    "MANIFEST",
    "MANIFEST_SUFFIX",
    "PAYLOAD",
    "UUID4",
    "VIZ",
    "VIZ_SUFFIX",
    "classify",
    "count_payloads",
    "in_layout",
    "manifest_file",
    "payload_entries",
    "payload_folder",
    "payload_of",
    "payload_uuid",
    "registered_in_place",
    "viz_folder",
]
