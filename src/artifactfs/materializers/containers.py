"""Containers whose elements are not all JSON-able (a list of arrays, a dict
of DataFrames): one sub-folder per element, each written by the element's
own materializer, plus a small ``container.json`` naming them.

This module also owns :func:`materializer_for_value`, the one place that
decides which materializer stores a given *value*: the registry knows only
types, but whether a dict is plain JSON or needs sub-folders depends on what
it holds.

Layout of a container version folder::

    container.json          {"format": 1, "kind": "dict", "type": "builtins.dict",
                             "elements": [{"key": ..., "folder": "a",
                                           "materializer": "...", "data_type": "..."}]}
    0/ 1/ ...               elements of a list, tuple, set or frozenset
    <escaped key>/          elements of a dict with a string key
    @<index>/               elements of a dict whose key is not a usable name

Folder names of string keys keep ``[A-Za-z0-9_.-]`` and percent-escape every
other byte (and a leading dot), so they are safe on every store and never
start with ``@``; the real key is in ``container.json`` (JSON-encoded as in
``builtin.py``, so ``1`` and ``(1, 2)`` stay an int and a tuple).
"""

from __future__ import annotations

import collections
import json
from typing import Any

from artifactfs.materializers.base import BaseMaterializer, MaterializerError, import_by_name, qualified_name, registry
from artifactfs.materializers.builtin import (
    CONTAINER_TYPES,
    BuiltInMaterializer,
    decode,
    encode,
    is_jsonable,
    rebuild,
)
from artifactfs.materializers.structured import DataclassMaterializer, is_json_dataclass

CONTAINER_FILE = "container.json"
FORMAT = 1
_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.")
_MAX_NAME = 120
_KINDS = {dict: "dict", list: "list", tuple: "tuple", set: "set", frozenset: "frozenset"}
_BUILDERS = {"list": list, "tuple": tuple, "set": set, "frozenset": frozenset}


def materializer_for_value(value: Any) -> type[BaseMaterializer]:
    """The materializer that should store ``value``.

    - A ``defaultdict`` carries code (its factory) that JSON would drop:
      the pickle fallback stores it.
    - A materializer registered for the value's type (along its MRO) wins,
      except that for dict/list/tuple/set/frozenset the built-in JSON one is
      taken only when the value is JSON-able; otherwise
      :class:`ContainerMaterializer` (elements in sub-folders) when every key
      can be recorded, else the registry's default (cloudpickle).
    - A dataclass instance with JSON-able fields gets
      :class:`DataclassMaterializer`.
    - Anything else: ``registry.lookup(type(value))``, i.e. the default.
    """
    data_type = type(value)
    if isinstance(value, collections.defaultdict):
        return _default(data_type)
    if registry.is_registered(data_type):
        chosen = registry.lookup(data_type)
        if chosen is BuiltInMaterializer and isinstance(value, CONTAINER_TYPES):
            if is_jsonable(value):
                return BuiltInMaterializer
            return ContainerMaterializer if _fits_container(value) else _default(data_type)
        return chosen
    if is_json_dataclass(value):
        return DataclassMaterializer
    return registry.lookup(data_type)


def _default(data_type: type) -> type[BaseMaterializer]:
    if registry.default is None:
        raise MaterializerError(f"no materializer can store this {qualified_name(data_type)}")
    return registry.default


def _kind(value: Any) -> str | None:
    for base, name in _KINDS.items():
        if isinstance(value, base):
            return name
    return None


def _fits_container(value: Any) -> bool:
    """Keys recordable in container.json, and no container inside itself."""
    if isinstance(value, dict) and not all(is_jsonable(k, top=False) for k in value):
        return False
    return not _has_cycle(value, set())


def _has_cycle(value: Any, ancestors: set[int]) -> bool:
    if not isinstance(value, CONTAINER_TYPES):
        return False
    if id(value) in ancestors:
        return True
    ancestors.add(id(value))
    try:
        children = value.values() if isinstance(value, dict) else value
        return any(_has_cycle(child, ancestors) for child in children)
    finally:
        ancestors.discard(id(value))


def _escape(key: str) -> str:
    out = []
    for i, ch in enumerate(key):
        if ch in _SAFE and not (i == 0 and ch == "."):
            out.append(ch)
        else:
            out.append("".join(f"%{b:02X}" for b in ch.encode("utf-8")))
    return "".join(out)


def folder_name(key: Any, index: int, used: set[str]) -> str:
    """The sub-folder of a dict element: the escaped key when it is a usable,
    unique (case-insensitively) name, ``@<index>`` otherwise."""
    name = _escape(key) if isinstance(key, str) and key else None
    if name is None or len(name) > _MAX_NAME or name == CONTAINER_FILE or name.lower() in used:
        name = f"@{index}"
    used.add(name.lower())
    return name


class ContainerMaterializer(BaseMaterializer):
    """dict/list/tuple/set/frozenset of non-JSON values -> one sub-folder per
    element plus ``container.json``.

    Not registered by type (the JSON materializer holds those types in the
    registry); ``materializer_for_value`` picks it.
    """
    VERIFY_ON_LOAD = True  # holds (or may hold) pickles

    ASSOCIATED_TYPES = (dict, list, tuple, set, frozenset)
    SKIP_REGISTRATION = True

    def save(self, data: Any) -> None:
        kind = _kind(data)
        if kind is None:
            raise MaterializerError(f"{qualified_name(type(data))} is not a dict, list, tuple, set or frozenset")
        if not _fits_container(data):
            raise MaterializerError(
                f"this {kind} contains itself, or has dict keys that are not JSON-able",
                "store it with the cloudpickle materializer",
            )
        is_dict = kind == "dict"
        pairs = list(data.items()) if is_dict else list(enumerate(data))
        elements: list = []
        used: set = set()
        for index, (key, value) in enumerate(pairs):
            folder = folder_name(key, index, used) if is_dict else str(index)
            materializer = materializer_for_value(value)
            materializer(self.path(folder), self.artifact_store).save(value)
            element = {"folder": folder, "materializer": qualified_name(materializer),
                       "data_type": qualified_name(type(value))}
            if is_dict:
                element = {"key": encode(key), **element}
            elements.append(element)
        manifest = {"format": FORMAT, "kind": kind, "type": qualified_name(type(data)), "elements": elements}
        with self.artifact_store.open(self.path(CONTAINER_FILE), "w", encoding="utf-8") as f:
            json.dump(manifest, f, ensure_ascii=False, allow_nan=False, indent=1)

    def load(self, data_type: type) -> Any:
        with self.artifact_store.open(self.path(CONTAINER_FILE), "r", encoding="utf-8") as f:
            manifest = json.load(f)
        if manifest.get("format") != FORMAT:
            raise MaterializerError(
                f"{self.path(CONTAINER_FILE)} has format {manifest.get('format')!r}, this artifactfs reads {FORMAT}",
                "upgrade artifactfs",
            )
        kind = manifest["kind"]
        values = [self._load_element(element) for element in manifest["elements"]]
        if kind == "dict":
            result: Any = {decode(e["key"]): v for e, v in zip(manifest["elements"], values)}
        else:
            result = _BUILDERS[kind](values)
        return rebuild(result, data_type)

    def _load_element(self, element: dict[str, Any]) -> Any:
        what = f"element {element['folder']!r} of {self.uri}"
        materializer = import_by_name(element["materializer"], what)
        if not (isinstance(materializer, type) and issubclass(materializer, BaseMaterializer)):
            raise MaterializerError(f"{element['materializer']!r} named by {what} is not a materializer")
        try:
            data_type = import_by_name(element["data_type"], what)
        except MaterializerError:
            if materializer is not registry.default:  # the pickle fallback needs no type
                raise
            data_type = object
        return materializer(self.path(element["folder"]), self.artifact_store).load(data_type)

    def extract_metadata(self, data: Any) -> dict[str, Any]:
        return {"length": len(data)}  # ZenML's key; the kind is in container.json
