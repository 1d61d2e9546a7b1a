"""File names in the mount: how index names that cannot be file names are
escaped, reversibly, and how a name read back from the kernel is decoded.

Pure functions of index names, kept beside the index so that every layer
that shows where a version lies in the mount (the mount itself, the web
view) spells it one way.

Names in the index (pipelines, runs, steps, outputs, artifacts, versions) are
arbitrary strings; a file name is at most 255 bytes, not empty, not ``.`` or
``..``, and holds no ``/`` and no NUL. The rules, applied to each name:

1. A clean name is shown as it is. Most names never change.
2. ``/``, NUL, control characters (below 0x20, and 0x7f) become ``%XX``
   (upper-case hex of the UTF-8 byte); ``.`` becomes ``%2E`` and ``..``
   ``%2E%2E``.
3. A ``%`` stays a ``%`` unless it is followed by two hex digits or by ``~``;
   then it is written ``%25``. So every ``%XX`` and every ``%~`` in a shown
   name is an escape, and ``unescape`` (decode each ``%XX``) is exact.
4. Where the mount itself uses a name, a clashing index name is escaped
   too: in ``/artifacts/<name>/`` and in a step's folder, ``latest`` is shown
   as ``%6Catest`` and a name ending in ``.json`` as ``....%2Ejson`` (the
   ``.json`` names there are the metadata documents).
5. A name whose escaped form is longer than 255 bytes (or that is empty) is
   shortened: the escaped form cut at a character boundary (never inside an
   escape) to at most 237 bytes, then ``%~`` and the first 16 hex digits of
   the SHA-256 of the full UTF-8 name. Decoding such a name gives a prefix and
   a hash; the mount finds the one index name with that prefix and hash.
6. The JSON document beside a folder is named ``<shown name>.json``, where
   the shown name follows rules 1-5 with 250 bytes instead of 255.

Every shown name is canonical: a lookup of any other spelling of the same
index name (``%41`` for ``A``) is ENOENT, so each object has one name.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

NAME_MAX = 255
HASH_DIGITS = 16
_HASH_MARK = "%~"
_HEX = frozenset("0123456789abcdefABCDEF")
_ESCAPE_SEQ = re.compile(r"%([0-9A-Fa-f]{2})")
_HASHED = re.compile(r"^(?P<prefix>.*)%~(?P<hash>[0-9a-f]{" + str(HASH_DIGITS) + r"})$", re.S)

#: Names the mount uses itself inside an artifact's folder and a step's folder.
LATEST = "latest"
DOC_SUFFIX = ".json"


def _needs_escape(char: str) -> bool:
    return char == "/" or ord(char) < 0x20 or ord(char) == 0x7F


def _percent(char: str) -> str:
    return "".join(f"%{b:02X}" for b in char.encode("utf-8", "surrogatepass"))


def _escape_chars(name: str) -> str:
    out = []
    for i, char in enumerate(name):
        if _needs_escape(char):
            out.append(_percent(char))
        elif char == "%":
            following = name[i + 1 : i + 3]
            ambiguous = following[:1] == "~" or (len(following) == 2 and set(following) <= _HEX)
            out.append("%25" if ambiguous else "%")
        else:
            out.append(char)
    return "".join(out)


def name_hash(name: str) -> str:
    return hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:HASH_DIGITS]


def escape(name: str, reserved: bool = False, limit: int = NAME_MAX) -> str:
    """The file name shown for index name ``name``. ``reserved``: the name
    lives in a folder where ``latest`` and ``*.json`` belong to the mount.
    ``limit``: bytes available (less than 255 when a suffix follows)."""
    if name in (".", ".."):
        return "%2E" * len(name)
    shown = _escape_chars(name)
    if reserved:
        if shown == LATEST:
            shown = "%6C" + shown[1:]
        elif shown.endswith(DOC_SUFFIX):
            shown = shown[: -len(DOC_SUFFIX)] + "%2E" + DOC_SUFFIX[1:]
    if not shown or len(shown.encode("utf-8", "surrogatepass")) > limit:
        shown = _shorten(shown, limit - len(_HASH_MARK) - HASH_DIGITS) + _HASH_MARK + name_hash(name)
    return shown


def version_path(artifact: str, version: str) -> str:
    """Where a version's payload lies inside a mount: ``/artifacts/<name>/<version>/``."""
    return f"/artifacts/{escape(artifact)}/{escape(version, reserved=True)}/"


def doc_name(name: str) -> str:
    """The name of the JSON document beside the folder of index name ``name``."""
    return escape(name, reserved=True, limit=NAME_MAX - len(DOC_SUFFIX)) + DOC_SUFFIX


def _shorten(shown: str, budget: int) -> str:
    """The longest prefix of ``shown`` within ``budget`` bytes that does not
    cut an escape sequence in half."""
    size, cut = 0, 0
    i = 0
    while i < len(shown):
        piece = shown[i : i + 3] if _ESCAPE_SEQ.match(shown, i) else shown[i]
        size += len(piece.encode("utf-8", "surrogatepass"))
        if size > budget:
            break
        i += len(piece)
        cut = i
    return shown[:cut]


@dataclass(frozen=True)
class Decoded:
    """A shown name read back: the index name, or for a shortened name the
    start of the index name and the hash of all of it."""

    name: str
    hashed: str | None = None  # the 16 hex digits of a shortened name

    shown: str = ""
    reserved: bool = False
    limit: int = NAME_MAX

    def matches(self, candidate: str) -> bool:
        """Whether index name ``candidate`` is shown under this name."""
        if self.hashed is not None and not candidate.startswith(self.name):
            return False
        return escape(candidate, self.reserved, self.limit) == self.shown


def undoc(shown: bytes | str) -> Decoded | None:
    """Decode the name of a JSON document (``None`` if it is none)."""
    if isinstance(shown, bytes):
        try:
            shown = shown.decode("utf-8")
        except UnicodeDecodeError:
            return None
    if not shown.endswith(DOC_SUFFIX):
        return None
    return unescape(shown[: -len(DOC_SUFFIX)], reserved=True, limit=NAME_MAX - len(DOC_SUFFIX))


def unescape(shown: bytes | str, reserved: bool = False, limit: int = NAME_MAX) -> Decoded | None:
    """Decode a name from the kernel; ``None`` when no index name can be
    shown so (not UTF-8, a stray ``%~``, not the canonical spelling).
    A shortened name decodes to a prefix: check candidates with ``matches``."""
    if isinstance(shown, bytes):
        try:
            shown = shown.decode("utf-8")
        except UnicodeDecodeError:
            return None
    match = _HASHED.match(shown)
    if match is None and _HASH_MARK in shown:
        return None
    body = match["prefix"] if match else shown
    name = _decode(body)
    if name is None:
        return None
    if match:
        return Decoded(name, match["hash"], shown, reserved, limit)
    if escape(name, reserved, limit) != shown:
        return None
    return Decoded(name, None, shown, reserved, limit)


def _decode(body: str) -> str | None:
    data = bytearray()
    i = 0
    while i < len(body):
        if body[i] == "%" and _ESCAPE_SEQ.match(body, i):
            data.append(int(body[i + 1 : i + 3], 16))
            i += 3
        else:
            data += body[i].encode("utf-8", "surrogatepass")
            i += 1
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None
