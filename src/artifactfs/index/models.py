"""The tables of the lineage index, as SQLAlchemy 2 typed models.

Every schema change here comes with a migration in ``migrations/versions``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map = {
        dt.datetime: DateTime(timezone=True),
        dict[str, Any]: JSON,
        str: String(1024),
        # SQLite only autoincrements an "INTEGER PRIMARY KEY".
        int: BigInteger().with_variant(Integer(), "sqlite"),
    }


class Store(Base):
    """A named store: flavor, root URI and the options that are not secret."""

    __tablename__ = "store"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    flavor: Mapped[str] = mapped_column(String(64))
    root_uri: Mapped[str]
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class IndexState(Base):
    """One row: the generation counter that every commit bumps, so readers
    (the mount) can poll one integer to learn that something changed."""

    __tablename__ = "index_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    generation: Mapped[int] = mapped_column(default=0)
