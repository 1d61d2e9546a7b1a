"""Fixtures that run a test against each index backend: SQLite in a fresh
ARTIFACTFS_HOME, and a fresh database on the real PostgreSQL server."""

import uuid

import pytest

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(params=BACKENDS)
def index_backend(request):
    return request.param


@pytest.fixture
def afs_home(request, index_backend, artifactfs_home, monkeypatch):
    """A fresh home whose index is SQLite or a new PostgreSQL database."""
    from artifactfs.index import reset_index_cache

    if index_backend == "postgres":
        server = request.getfixturevalue("postgres_server")
        url = server.create_database(f"t_{uuid.uuid4().hex[:16]}")
        monkeypatch.setenv("ARTIFACTFS_INDEX_URL", url)
    reset_index_cache()
    yield artifactfs_home
    reset_index_cache()


@pytest.fixture
def sqlite_home(artifactfs_home):
    """A fresh home with the default SQLite index only."""
    from artifactfs.index import reset_index_cache

    reset_index_cache()
    yield artifactfs_home
    reset_index_cache()


def migrate_raw(url: str, revision: str, downgrade: bool = False) -> None:
    """Take the index at ``url`` to ``revision`` with Alembic, past the
    process's index cache (a migration test's "index written before")."""
    from alembic import command

    from artifactfs.index.db import Index
    from artifactfs.index.migrate import _alembic_config

    raw = Index(url)
    config = _alembic_config()
    with raw.write_connection() as conn:
        config.attributes["connection"] = conn
        (command.downgrade if downgrade else command.upgrade)(config, revision)
    raw.dispose()
