"""Schema migrations (Alembic), run automatically and safely on first use.

The check costs one query: the index's stamped revision against the newest
one, which is remembered in the cache folder under a fingerprint of the
migration files, so a command that finds the index up to date (nearly
every one) never imports Alembic. The upgrade itself runs inside a write
transaction that holds the database's lock (SQLite: BEGIN IMMEDIATE,
PostgreSQL: an advisory lock), so two processes starting at once never
migrate twice.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError

from artifactfs.errors import ConfigError
from artifactfs.index.health import explain, too_new_error

if TYPE_CHECKING:
    from alembic.config import Config

    from artifactfs.index.db import Index

VERSIONS = Path(__file__).with_name("migrations") / "versions"
#: How the line that announces a new index begins (stderr, once per new index).
NEW_INDEX = "artifactfs: created a new index at "
# Any constant: the key of PostgreSQL's advisory lock for migrations.
_PG_MIGRATION_LOCK = 0x4152_5446


@lru_cache(maxsize=1)
def _alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "artifactfs.index:migrations")
    return config


@lru_cache(maxsize=1)
def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None, "the migrations have one head"
    return head


def _say_created(index: Index) -> None:
    """One line on stderr (through logging: a program's own configuration
    decides; without one, Python's last-resort handler prints warnings)."""
    from artifactfs.stores.secrets import mask_url

    logging.getLogger("artifactfs.index").warning(
        NEW_INDEX + "%s (`artifactfs info` shows the index, home and stores in use; "
        "ARTIFACTFS_HOME or ARTIFACTFS_INDEX_URL choose another)", mask_url(index.url))


def current_revision(connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def known_head(cache_dir: Path) -> str:
    """:func:`head_revision`, remembered in ``cache_dir`` for as long as the
    migration files stay the same (names, sizes, modification times)."""
    key = sorted([p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in VERSIONS.glob("*.py"))
    path = cache_dir / "schema-head.json"
    try:
        cached = json.loads(path.read_text())
        if cached["files"] == key:
            return cached["head"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    head = head_revision()
    try:  # a cache: a folder we cannot write costs Alembic's import next time, nothing else
        cache_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=".schema-head.")
        with os.fdopen(fd, "w") as f:
            json.dump({"head": head, "files": key}, f)
        os.replace(tmp, path)
    except OSError:
        pass
    return head


def _stamped_revision(connection) -> str | None:
    """The revision Alembic stamped in its documented ``alembic_version``
    table, read with one query (None when there is none, or several)."""
    try:
        rows = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except DBAPIError:
        connection.rollback()  # PostgreSQL: the failed statement aborted the transaction
        return None
    return rows[0] if len(rows) == 1 else None


def _known_revision(revision: str) -> bool:
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    try:
        return ScriptDirectory.from_config(_alembic_config()).get_revision(revision) is not None
    except CommandError:
        return False


def upgrade_if_needed(index: Index, cache_dir: Path) -> None:
    """Bring the index's schema up to date (a no-op, one query, when it is);
    an empty database gets the whole schema, and the user is told where (a
    mistyped ``ARTIFACTFS_HOME`` must not pass for an index whose artifacts
    are gone).

    Raises:
        IndexUnusableError: the index's device is full, its file is damaged or
            not a database, or its schema is newer than this artifactfs knows
            (``index.health`` words each).
        ConfigError: the index cannot be reached at all.
    """
    try:
        with index.engine.connect() as conn:
            if _stamped_revision(conn) == known_head(cache_dir):
                return
        from alembic import command

        with index.write_connection() as conn:
            if not index.is_sqlite:
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
            revision = current_revision(conn)
            if revision == head_revision():
                return  # another process migrated while we waited
            if revision is not None and not _known_revision(revision):
                raise too_new_error(index.url, revision)
            created = revision is None
            config = _alembic_config()
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
        if created:
            _say_created(index)
    except DBAPIError as exc:
        explained = explain(exc, index.url)
        if explained is not None:
            raise explained from exc
        if not isinstance(exc, OperationalError):
            raise
        raise ConfigError(
            f"cannot open the index at {index!r}: {exc.orig}",
            "check ARTIFACTFS_INDEX_URL and that the database server is running",
        ) from exc
