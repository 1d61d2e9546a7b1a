"""Schema migrations (Alembic), run automatically and safely on first use.

The check costs one query; the upgrade itself runs inside a write
transaction that holds the database's lock (SQLite: BEGIN IMMEDIATE,
PostgreSQL: an advisory lock), so two processes starting at once never
migrate twice.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from artifactfs.errors import ConfigError

if TYPE_CHECKING:
    from artifactfs.index.db import Index

# Any constant: the key of PostgreSQL's advisory lock for migrations.
_PG_MIGRATION_LOCK = 0x4152_5446


@lru_cache(maxsize=1)
def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", "artifactfs.index:migrations")
    return config


@lru_cache(maxsize=1)
def head_revision() -> str:
    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def current_revision(connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def upgrade_if_needed(index: Index) -> None:
    try:
        with index.engine.connect() as conn:
            if current_revision(conn) == head_revision():
                return
        with index.write_connection() as conn:
            if not index.is_sqlite:
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
            if current_revision(conn) == head_revision():
                return  # another process migrated while we waited
            config = _alembic_config()
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
    except OperationalError as exc:
        raise ConfigError(
            f"cannot open the index at {index!r}: {exc.orig}",
            "check ARTIFACTFS_INDEX_URL and that the database server is running",
        ) from exc
