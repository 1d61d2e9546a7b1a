"""The Core statements every save runs (index.statements), on SQLite and
PostgreSQL: values converted by their column types, errors raised as
SQLAlchemy's (index.db translates and retries those), the table's defaults
filled in; and a save's two SQLite transactions share one connection."""

import datetime as dt
import uuid

import pytest
from sqlalchemy import event, insert, select
from sqlalchemy.exc import IntegrityError

pytest_plugins = ["index_fixtures"]

from artifactfs import save_artifact  # noqa: E402
from artifactfs.api import init  # noqa: E402
from artifactfs.index import get_index  # noqa: E402
from artifactfs.index.models import Artifact, WriteIntent  # noqa: E402
from artifactfs.index.statements import Statement  # noqa: E402

_INTENT = WriteIntent.__table__
_ARTIFACTS = Artifact.__table__
_RECORD = Statement(insert(_INTENT).returning(_INTENT.c.started_at))
_READ = Statement(select(_INTENT.c.folder, _INTENT.c.started_at))


def _intent(store_id: int, intent_id: str) -> dict:
    return {"uuid": intent_id, "store_id": store_id, "folder": "a/b", "holder": "h", "artifact_id": None,
            "version": None, "version_number": None}


def test_returned_values_are_converted_by_their_column_types(afs_home):
    store_id = init().index_id
    with get_index().write() as session:
        (started,), = _RECORD.rows(session, _intent(store_id, str(uuid.uuid4())))
        (folder, read_back), = _READ.rows(session)
    assert isinstance(started, dt.datetime) and isinstance(read_back, dt.datetime)  # SQLite's text, parsed
    assert folder == "a/b"


def test_a_database_error_is_sqlalchemys_and_rolls_the_transaction_back(afs_home):
    store_id = init().index_id
    intent_id = str(uuid.uuid4())
    with pytest.raises(IntegrityError):  # index.db translates and retries SQLAlchemy's errors only
        with get_index().write() as session:
            _RECORD.rows(session, _intent(store_id, intent_id))
            _RECORD.rows(session, _intent(store_id, intent_id))
    with get_index().read() as session:
        assert _READ.rows(session) == []


def test_a_tables_defaults_are_filled_in(afs_home):
    init()
    insert_artifact = Statement(insert(_ARTIFACTS).returning(_ARTIFACTS.c.id, _ARTIFACTS.c.created_at))
    with get_index().write() as session:
        (artifact_id, created), = insert_artifact.rows(session, {"name": f"n-{uuid.uuid4().hex[:6]}"})
    assert artifact_id > 0 and isinstance(created, dt.datetime)  # the table's own default, the index's clock


def test_a_saves_intent_and_commit_share_one_sqlite_connection(sqlite_home):
    """A second connection would read the pages the first one wrote again
    (SQLite drops a connection's page cache when another one commits)."""
    save_artifact({"warm": 1}, "warm")
    seen = []

    def begun(conn):
        seen.append(id(conn.connection.dbapi_connection))

    engine = get_index()._write_engine
    event.listen(engine, "begin", begun)
    try:
        save_artifact({"n": 1}, "shared")
    finally:
        event.remove(engine, "begin", begun)
    assert len(seen) == 2 and seen[0] == seen[1]


def test_a_save_committed_on_a_core_connection_moves_the_change_clock_last(afs_home):
    """A save's commit runs on a Core connection (no ORM session, so no
    session hook): the bump still comes, as the transaction's last statement."""
    from artifactfs.index import get_generation
    from artifactfs.index.generation import _PG_BUMP, _SQLITE_BUMP

    save_artifact({"warm": 1}, "warm")
    index = get_index()
    statements = []

    def executed(conn, clauseelement, *args):
        statements.append(clauseelement)

    with index.read_rows() as connection:
        before = get_generation(connection)
    event.listen(index._write_engine, "before_execute", executed)
    try:
        save_artifact({"n": 1}, "moved")
    finally:
        event.remove(index._write_engine, "before_execute", executed)
    with index.read_rows() as connection:
        assert get_generation(connection).moved_since(before)
    assert statements[-1] in (_SQLITE_BUMP.statement, _PG_BUMP.statement)


def test_a_core_transaction_rolled_back_leaves_no_bump_behind(afs_home):
    """The mark lives on the pooled connection: one rolled back must not
    make the next transaction on that connection bump."""
    from artifactfs.index import get_generation
    from artifactfs.index.generation import bump_generation

    init()
    index = get_index()
    with pytest.raises(RuntimeError), index.write_core() as connection:
        bump_generation(connection)
        raise RuntimeError("rolled back")
    with index.read_rows() as connection:
        before = get_generation(connection)
    with index.write_core() as connection:
        pass
    with index.read_rows() as connection:
        assert not get_generation(connection).moved_since(before)
