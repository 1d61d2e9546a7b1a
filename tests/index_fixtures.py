"""Fixtures that run a test against each index backend: SQLite in a fresh
ARTIFACTFS_HOME, and a fresh database on the real PostgreSQL server."""

import uuid

import pytest

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(params=BACKENDS)
def index_backend(request):
    return request.param


@pytest.fixture(scope="session")
def postgres_schema(postgres_server, tmp_path_factory):
    """The name of a database on the session's PostgreSQL that holds the whole
    schema, migrated once by artifactfs and never used: a test's fresh index
    is a copy of it (CREATE DATABASE ... TEMPLATE), which takes a fraction of
    the time that running every migration again does."""
    from artifactfs.index.db import Index
    from artifactfs.index.migrate import upgrade_if_needed

    name = f"schema_{uuid.uuid4().hex[:12]}"
    index = Index(postgres_server.create_database(name))
    postgres_server.created.remove(name)  # the session's, as the server's own database is
    try:
        upgrade_if_needed(index, tmp_path_factory.mktemp("schema-cache"))
    finally:
        index.dispose()  # a template must have no connections
    return name


@pytest.fixture
def afs_home(request, index_backend, artifactfs_home, monkeypatch):
    """A fresh home whose index is SQLite or a new PostgreSQL database (a
    copy of the migrated schema; an empty one under
    ``@pytest.mark.unmigrated_index``, for tests of the migrations)."""
    from artifactfs.index import reset_index_cache

    if index_backend == "postgres":
        server = request.getfixturevalue("postgres_server")
        empty = request.node.get_closest_marker("unmigrated_index") is not None
        template = None if empty else request.getfixturevalue("postgres_schema")
        url = server.create_database(f"t_{uuid.uuid4().hex[:16]}", template=template)
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
