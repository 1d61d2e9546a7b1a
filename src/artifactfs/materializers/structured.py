"""Dataclasses and pydantic models as their fields in ``data.json``.

The file holds the fields as plain JSON (nested dataclasses as nested
objects, tuples/sets/non-finite floats tagged as in ``builtin.py``); the
class itself is the data type the caller recorded, and nested dataclasses
are rebuilt from the field annotations. Pydantic models are supported when
pydantic (v2) is importable; it is never required.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from typing import Any

from artifactfs.enums import ArtifactType, VisualizationType
from artifactfs.materializers.base import BaseMaterializer, MaterializerError, qualified_name
from artifactfs.materializers.builtin import JSON_FILE, decode, encode, is_jsonable

try:  # pydantic is optional
    import pydantic
except ImportError:  # pragma: no cover - depends on the environment
    pydantic = None  # type: ignore[assignment]  # checked before every use


def is_dataclass_instance(value: Any) -> bool:
    return dataclasses.is_dataclass(value) and not isinstance(value, type)


def dataclass_fields(value: Any) -> dict[str, Any]:
    """The fields of a dataclass instance, nested dataclasses as dicts, other
    values untouched (``dataclasses.asdict`` would deep-copy them)."""
    return {f.name: _unwrap(getattr(value, f.name)) for f in dataclasses.fields(value)}


def _unwrap(value: Any) -> Any:
    if is_dataclass_instance(value):
        return dataclass_fields(value)
    if type(value) in (list, tuple, set, frozenset):
        return type(value)(_unwrap(v) for v in value)
    if type(value) is dict:
        return {k: _unwrap(v) for k, v in value.items()}
    return value


def is_json_dataclass(value: Any) -> bool:
    """Whether ``value`` is a dataclass instance whose fields are JSON-able."""
    return is_dataclass_instance(value) and is_jsonable(dataclass_fields(value))


def build(data_type: Any, value: Any) -> Any:
    """``value`` (decoded JSON) shaped as the annotation ``data_type``:
    dataclasses rebuilt, recursing through list/tuple/set/dict/Optional."""
    if isinstance(data_type, type) and dataclasses.is_dataclass(data_type) and isinstance(value, dict):
        return _build_dataclass(data_type, value)
    origin, args = typing.get_origin(data_type), typing.get_args(data_type)
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            if isinstance(arg, type) and dataclasses.is_dataclass(arg) and isinstance(value, dict):
                if {f.name for f in dataclasses.fields(arg) if f.init} <= set(value):
                    return _build_dataclass(arg, value)
        return value
    if origin in (list, set, frozenset) and args and isinstance(value, (list, set, frozenset)):
        return type(value)(build(args[0], v) for v in value)
    if origin is tuple and args and isinstance(value, tuple):
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(build(args[0], v) for v in value)
        if len(args) == len(value):
            return tuple(build(a, v) for a, v in zip(args, value))
        return value
    if origin is dict and len(args) == 2 and isinstance(value, dict):
        return {k: build(args[1], v) for k, v in value.items()}
    return value


def _build_dataclass(cls: type, fields: dict[str, Any]) -> Any:
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # annotations naming local or missing classes
        hints = {f.name: f.type for f in dataclasses.fields(cls) if not isinstance(f.type, str)}
    init: dict[str, Any] = {}
    late: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        if field.name in fields:
            value = build(hints.get(field.name, Any), fields[field.name])
            (init if field.init else late)[field.name] = value
    try:
        obj = cls(**init)
    except TypeError as exc:
        raise MaterializerError(
            f"cannot rebuild {qualified_name(cls)} from the saved fields: {exc}",
            "were fields added or renamed since the artifact was saved?",
        ) from exc
    for name, value in late.items():
        object.__setattr__(obj, name, value)
    return obj


class DataclassMaterializer(BaseMaterializer):
    """Dataclass instances with JSON-able fields -> ``data.json``.

    Dataclasses share no base class, so the registry cannot find this by
    type: ``materializer_for_value`` picks it for dataclass instances.
    """

    ASSOCIATED_TYPES = ()
    ASSOCIATED_ARTIFACT_TYPE = ArtifactType.DATA

    @classmethod
    def can_save_type(cls, data_type: type) -> bool:
        """A dataclass whose field annotations JSON can hold (ZenML asks
        pydantic for a JSON schema; without pydantic any dataclass passes
        here and ``save`` checks the values)."""
        if not (isinstance(data_type, type) and dataclasses.is_dataclass(data_type)):
            return False
        if pydantic is None:
            return True
        try:
            pydantic.TypeAdapter(data_type).json_schema()
        except Exception:  # noqa: BLE001 - any field pydantic cannot describe
            return False
        return True

    can_load_type = can_save_type

    def save_visualizations(self, data: Any) -> dict[str, VisualizationType]:
        return {self.path(JSON_FILE): VisualizationType.JSON}  # the payload itself, as ZenML shows it

    def save(self, data: Any) -> None:
        if not is_dataclass_instance(data):
            raise MaterializerError(f"{qualified_name(type(data))} is not a dataclass", "use another materializer")
        fields = dataclass_fields(data)
        if not is_jsonable(fields):
            raise MaterializerError(
                f"fields of {qualified_name(type(data))} are not all JSON-able",
                "use the cloudpickle materializer, or make the fields plain values",
            )
        with self.artifact_store.open(self.path(JSON_FILE), "w", encoding="utf-8") as f:
            f.write(json.dumps(encode(fields), ensure_ascii=False, allow_nan=False))

    def load(self, data_type: type) -> Any:
        if not (isinstance(data_type, type) and dataclasses.is_dataclass(data_type)):
            raise MaterializerError(
                f"DataclassMaterializer needs the dataclass to load into, got {data_type!r}",
                "pass the class recorded with the artifact as data_type",
            )
        with self.artifact_store.open(self.path(JSON_FILE), "r", encoding="utf-8") as f:
            fields = decode(json.load(f))
        return _build_dataclass(data_type, fields)

    def extract_metadata(self, data: Any) -> dict[str, Any]:
        if pydantic is None:
            return {"fields": [f.name for f in dataclasses.fields(data)]}
        return {"schema": pydantic.TypeAdapter(type(data)).json_schema()}  # ZenML's key


if pydantic is not None and hasattr(pydantic.BaseModel, "model_dump_json"):

    class PydanticMaterializer(BaseMaterializer):
        """Pydantic (v2) models -> ``data.json`` via ``model_dump_json``."""

        ASSOCIATED_TYPES = (pydantic.BaseModel,)
        ASSOCIATED_ARTIFACT_TYPE = ArtifactType.DATA

        def save_visualizations(self, data: Any) -> dict[str, VisualizationType]:
            return {self.path(JSON_FILE): VisualizationType.JSON}  # the payload itself, as ZenML shows it

        def save(self, data: Any) -> None:
            with self.artifact_store.open(self.path(JSON_FILE), "w", encoding="utf-8") as f:
                f.write(data.model_dump_json())

        def load(self, data_type: type) -> Any:
            if not (isinstance(data_type, type) and issubclass(data_type, pydantic.BaseModel)):
                raise MaterializerError(
                    f"PydanticMaterializer needs the model class to load into, got {data_type!r}",
                    "pass the class recorded with the artifact as data_type",
                )
            with self.artifact_store.open(self.path(JSON_FILE), "r", encoding="utf-8") as f:
                return data_type.model_validate_json(f.read())

        def extract_metadata(self, data: Any) -> dict[str, Any]:
            return {"schema": data.model_json_schema()}  # ZenML's key

else:  # pragma: no cover - depends on the environment
    PydanticMaterializer = None  # type: ignore[assignment,misc]


__all__ = ["DataclassMaterializer", "PydanticMaterializer", "build", "is_dataclass_instance", "is_json_dataclass"]
