"""The schema has one owner, ``index.tables`` (SQLAlchemy Core); the ORM
classes of ``index.models`` are mapped onto its tables, and their
``Mapped[...]`` annotations, which only type the attributes, agree with it."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import types
import typing

import pytest
from sqlalchemy import JSON, Boolean, DateTime, Integer, String

from artifactfs.index import models, tables

MAPPED = sorted(models.Base.registry.mappers, key=lambda m: m.class_.__name__)


def _python_type(column) -> object:
    if isinstance(column.type, JSON):
        return JSON
    if isinstance(column.type, Boolean):
        return bool
    if isinstance(column.type, DateTime):
        return dt.datetime
    if isinstance(column.type, Integer):
        return int
    if isinstance(column.type, String):
        return str
    raise AssertionError(f"{column}: a type this test does not know ({column.type!r})")


def _annotated(annotation) -> tuple[object, bool]:
    """(the Python type, whether None is allowed) of ``Mapped[X]`` / ``Mapped[X | None]``."""
    (inner,) = typing.get_args(annotation)
    args = typing.get_args(inner)
    if isinstance(inner, types.UnionType) or typing.get_origin(inner) is typing.Union:
        rest = [a for a in args if a is not type(None)]
        assert len(rest) == 1, annotation
        inner, optional = rest[0], True
    else:
        optional = False
    origin = typing.get_origin(inner)
    return (JSON if origin in (dict, list) else inner), optional


def test_every_table_is_mapped_once_and_every_model_maps_a_table_of_index_tables():
    mapped = [mapper.local_table for mapper in MAPPED]
    assert sorted(t.name for t in mapped) == sorted(tables.metadata.tables)
    assert all(tables.metadata.tables[t.name] is t for t in mapped)
    assert models.Base.metadata is tables.metadata  # Alembic's target is the one declaration


@pytest.mark.parametrize("mapper", MAPPED, ids=lambda m: m.class_.__name__)
def test_the_annotations_of_a_model_are_the_columns_of_its_table(mapper):
    cls = mapper.class_
    hints = typing.get_type_hints(cls, globalns=vars(models))
    columns = {c.key: c for c in mapper.local_table.columns}
    annotated = {name: hint for name, hint in hints.items()
                 if typing.get_origin(hint) is models.Mapped and name not in mapper.relationships}
    assert set(annotated) == set(columns), f"{cls.__name__}: annotations and columns differ"
    for name, hint in annotated.items():
        python_type, optional = _annotated(hint)
        column = columns[name]
        assert python_type == _python_type(column), f"{cls.__name__}.{name}: {hint} but the column is {column.type!r}"
        assert optional == (column.nullable and not column.primary_key), \
            f"{cls.__name__}.{name}: {hint} but the column is {'' if column.nullable else 'NOT '}NULL"


def test_the_tables_load_no_orm():
    """The read paths that select from ``index.tables`` (``artifactfs artifact list``) leave the ORM unloaded."""
    code = "import sys, artifactfs.index.tables; loaded = sorted(m for m in sys.modules if m.startswith('sqlalchemy.orm'));" \
           " assert not loaded, loaded"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
