"""Built-in Python values as plain files: JSON-able values in ``data.json``,
bytes in ``data.bin``.

This module owns the JSON encoding every JSON-writing materializer shares
(:func:`encode` / :func:`decode`) and the test of whether a value fits it
(:func:`is_jsonable`). Containers of non-JSON values are left to
``containers.py``; choosing between the two is ``materializer_for_value``'s
job.

Encoding: lists, str-keyed dicts and scalars are plain JSON, so any tool
reads ``data.json`` as it is. What plain JSON cannot say is written as a
tagged object ``{"__artifactfs__": <kind>, ...}``:

- ``{"__artifactfs__": "tuple" | "set" | "frozenset", "items": [...]}``
  (set items sorted by their JSON text, so equal sets give equal bytes);
- ``{"__artifactfs__": "float", "value": "nan" | "inf" | "-inf"}``;
- ``{"__artifactfs__": "dict", "items": {...}}`` for the rare dict that has
  a key ``"__artifactfs__"`` itself.

The file is strict JSON (no ``NaN`` literals).
"""

from __future__ import annotations

import json
import math
import uuid
from typing import Any

from artifactfs.enums import ArtifactType
from artifactfs.materializers.base import BaseMaterializer, MaterializerError, qualified_name

TAG = "__artifactfs__"
JSON_FILE = "data.json"
BYTES_FILE = "data.bin"
UUID_FILE = "uuid.txt"

SCALAR_TYPES = (bool, int, float, str, type(None))
CONTAINER_TYPES = (dict, list, tuple, set, frozenset)
_TAGGED_SEQUENCES = {"tuple": tuple, "set": set, "frozenset": frozenset}
_MAX_DEPTH = 500  # deeper nesting is refused rather than overflowing the stack


def is_jsonable(value: Any, *, top: bool = True) -> bool:
    """Whether :func:`encode` can write ``value`` and :func:`decode` give it
    back with the same types.

    Nested values must be exactly the built-in types (an ``IntEnum`` inside a
    list would come back as ``int``); the top-level value may be a subclass,
    since its type is recorded by the caller and restored on load.
    """
    return _jsonable(value, top, set(), 0)


def _jsonable(value: Any, top: bool, seen: set[int], depth: int) -> bool:
    kind = type(value)
    if kind in SCALAR_TYPES or (top and isinstance(value, SCALAR_TYPES)):
        return True
    if not (kind in CONTAINER_TYPES or (top and isinstance(value, CONTAINER_TYPES))):
        return False
    if id(value) in seen or depth > _MAX_DEPTH:
        return False  # cyclic or absurdly deep
    seen.add(id(value))
    try:
        if isinstance(value, dict):
            return all(type(k) is str and _jsonable(v, False, seen, depth + 1) for k, v in value.items())
        return all(_jsonable(v, False, seen, depth + 1) for v in value)
    finally:
        seen.discard(id(value))


def encode(value: Any) -> Any:
    """``value`` as plain JSON types, tagging what JSON cannot say."""
    if isinstance(value, float):
        if math.isfinite(value):
            return float(value)
        return {TAG: "float", "value": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise MaterializerError(
                    f"dict key {key!r} of type {qualified_name(type(key))} is not a string",
                    "JSON keys are strings; materializer_for_value picks ContainerMaterializer for such dicts",
                )
        items = {str(k): encode(v) for k, v in value.items()}
        return {TAG: "dict", "items": items} if TAG in items else items
    if isinstance(value, list):
        return [encode(v) for v in value]
    for name, kind in _TAGGED_SEQUENCES.items():
        if isinstance(value, kind):
            items = [encode(v) for v in value]
            if kind is not tuple:
                items.sort(key=lambda item: json.dumps(item, sort_keys=True))
            return {TAG: name, "items": items}
    raise MaterializerError(
        f"a value of type {qualified_name(type(value))} is not JSON-able",
        "materializer_for_value(value) picks a materializer that can store it",
    )


def decode(obj: Any) -> Any:
    """The inverse of :func:`encode`."""
    if isinstance(obj, list):
        return [decode(v) for v in obj]
    if not isinstance(obj, dict):
        return obj
    tag = obj.get(TAG)
    if tag is None:
        return {k: decode(v) for k, v in obj.items()}
    if tag in _TAGGED_SEQUENCES:
        return _TAGGED_SEQUENCES[tag](decode(v) for v in obj["items"])
    if tag == "float":
        return float(obj["value"])
    if tag == "dict":
        return {k: decode(v) for k, v in obj["items"].items()}
    raise MaterializerError(f"unknown tag {tag!r} in an artifactfs JSON file", "was it written by a newer artifactfs?")


def dumps(value: Any) -> str:
    """Strict JSON text of ``value`` (via :func:`encode`)."""
    return json.dumps(encode(value), ensure_ascii=False, allow_nan=False)


def loads(text: str) -> Any:
    return decode(json.loads(text))


def rebuild(value: Any, data_type: type) -> Any:
    """``value`` (a built-in type) as ``data_type`` when that is a subclass:
    ``OrderedDict``, a named tuple, an ``IntEnum``, ..."""
    if not isinstance(data_type, type) or type(value) is data_type or not issubclass(data_type, type(value)):
        return value
    if hasattr(data_type, "_make"):  # named tuples
        return data_type._make(value)
    try:
        return data_type(value)
    except Exception as exc:
        raise MaterializerError(
            f"cannot turn the loaded {type(value).__name__} into {qualified_name(data_type)}: {exc}",
            "load it as the built-in type, or register a materializer for that class",
        ) from exc


class BuiltInMaterializer(BaseMaterializer):
    """bool, int, float, str, None and JSON-able dict/list/tuple/set -> ``data.json``."""

    ASSOCIATED_TYPES = (bool, int, float, str, type(None), dict, list, tuple, set, frozenset)
    ASSOCIATED_ARTIFACT_TYPE = ArtifactType.DATA

    def save(self, data: Any) -> None:
        if not is_jsonable(data):
            if isinstance(data, CONTAINER_TYPES):  # ZenML's built-in takes any container:
                return self._container().save(data)  # elements in sub-folders
            raise MaterializerError(
                f"this {qualified_name(type(data))} holds values that are not JSON-able "
                "(or dict keys that are not strings)",
                "use materializer_for_value(value), which picks ContainerMaterializer for it",
            )
        with self.artifact_store.open(self.path(JSON_FILE), "w", encoding="utf-8") as f:
            f.write(dumps(data))

    def load(self, data_type: type) -> Any:
        if not self.artifact_store.exists(self.path(JSON_FILE)):
            return self._container().load(data_type)
        with self.artifact_store.open(self.path(JSON_FILE), "r", encoding="utf-8") as f:
            return rebuild(loads(f.read()), data_type)

    def _container(self) -> BaseMaterializer:
        from artifactfs.materializers.containers import ContainerMaterializer  # builds on this module

        return ContainerMaterializer(self.uri, self._artifact_store, self.visualization_uri, self._metadata_loader)

    def extract_metadata(self, data: Any) -> dict[str, Any]:
        """ZenML's keys: ``length`` of a container, ``string_representation``
        of a number or bool; nothing for a string (it may be huge)."""
        if isinstance(data, CONTAINER_TYPES):
            return {"length": len(data)}
        if isinstance(data, (bool, int, float)):
            return {"string_representation": str(data)}
        return {}


class BytesMaterializer(BaseMaterializer):
    """bytes and bytearray -> ``data.bin``, the raw bytes."""

    ASSOCIATED_TYPES = (bytes, bytearray)
    ASSOCIATED_ARTIFACT_TYPE = ArtifactType.DATA

    def save(self, data: bytes) -> None:
        with self.artifact_store.open(self.path(BYTES_FILE), "wb") as f:
            f.write(bytes(data))

    def load(self, data_type: type) -> bytes | bytearray:
        with self.artifact_store.open(self.path(BYTES_FILE), "rb") as f:
            raw = f.read()
        if isinstance(data_type, type) and issubclass(data_type, bytearray):
            return data_type(raw)
        return rebuild(raw, data_type)

    def extract_metadata(self, data: bytes) -> dict[str, Any]:
        return {}  # ZenML records only the storage size of bytes


class UUIDMaterializer(BaseMaterializer):
    """``uuid.UUID`` -> ``uuid.txt``, its canonical text (ZenML's layout)."""

    ASSOCIATED_TYPES = (uuid.UUID,)
    ASSOCIATED_ARTIFACT_TYPE = ArtifactType.DATA

    def save(self, data: uuid.UUID) -> None:
        with self.artifact_store.open(self.path(UUID_FILE), "w", encoding="utf-8") as f:
            f.write(str(data))

    def load(self, data_type: type) -> uuid.UUID:
        with self.artifact_store.open(self.path(UUID_FILE), "r", encoding="utf-8") as f:
            return uuid.UUID(f.read().strip())

    def extract_metadata(self, data: uuid.UUID) -> dict[str, Any]:
        return {"string_representation": str(data)}
