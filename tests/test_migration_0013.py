"""Migration 0013: a save writes fewer pages. The write intent is one page
to insert and one to delete (SQLite: a table without rowid and without a
secondary index), a version's metadata rows go into no index of run or step
metadata (partial indexes), and the queries on run and step metadata still
use those indexes. An index written before it keeps its intents and
metadata (SQLite and PostgreSQL), and goes back down."""

import datetime as dt
import os
import statistics

from sqlalchemy import inspect, select, text

pytest_plugins = ["index_fixtures"]

from artifactfs import save_artifact  # noqa: E402
from artifactfs.api import init  # noqa: E402
from artifactfs.faults import fault_action  # noqa: E402
from artifactfs.index import get_index, reset_index_cache  # noqa: E402
from artifactfs.index.artifacts import get_metadata  # noqa: E402
from artifactfs.index.db import Index  # noqa: E402
from artifactfs.index.intents import record_intent, stale_intents  # noqa: E402
from artifactfs.index.migrate import current_revision, head_revision  # noqa: E402
from artifactfs.index.models import Metadata, StepRun  # noqa: E402
from artifactfs.settings import get_settings  # noqa: E402
from index_fixtures import migrate_raw  # noqa: E402

#: SQLite's write-ahead log: a 32-byte header, then one frame (a 24-byte header and a page) per page written.
FRAME = 24 + 4096


def _indexes(conn, table: str) -> dict[str, str | None]:
    """Index name -> its WHERE clause (None: a full index)."""
    found = {}
    for entry in inspect(conn).get_indexes(table):
        options = entry.get("dialect_options", {})
        where = options.get("sqlite_where", options.get("postgresql_where"))
        found[entry["name"]] = None if where is None else str(where)
    return found


def test_an_index_from_0012_upgrades_keeping_its_intents_and_metadata_and_goes_back(afs_home):
    url = get_settings().index_url
    store_id = init().index_id
    v = save_artifact({"a": 1}, "old", metadata={"score": 0.5})
    with get_index().write() as session:
        intent = record_intent(session, store_id, "old/crashed")
    assert _back_at_0012(url) == 1

    with get_index().engine.connect() as conn:  # first use upgrades to the head
        assert current_revision(conn) == head_revision()
        assert "ix_write_intent_store" not in _indexes(conn, "write_intent")
        partial = _indexes(conn, "metadata")
        assert "run_id IS NOT NULL" in partial["ix_metadata_run"]
        assert "step_run_id IS NOT NULL" in partial["ix_metadata_step_run"]
        assert partial["ix_metadata_version"] is None
        if conn.dialect.name == "sqlite":
            sql = conn.execute(text("SELECT sql FROM sqlite_master WHERE name = 'write_intent'")).scalar()
            assert "WITHOUT ROWID" in sql
    with get_index().read() as session:
        assert [i.uuid for i in stale_intents(session, store_id, dt.timedelta(0))] == [intent]
        assert get_metadata(session, version_id=v._pk)["score"] == 0.5
    assert save_artifact({"b": 2}, "old").version == "2"  # intents recorded and cleared on the new table
    assert _back_at_0012(url) == 1  # the crashed save's intent, still there


def _back_at_0012(url: str) -> int:
    """Take the index down to 0012 and check its schema is 0012's; its intents, counted."""
    reset_index_cache()
    migrate_raw(url, "0012_zenml2_outputs_tags", downgrade=True)
    raw = Index(url)
    try:
        with raw.engine.connect() as conn:
            assert "ix_write_intent_store" in _indexes(conn, "write_intent")
            full = _indexes(conn, "metadata")
            assert full["ix_metadata_run"] is None and full["ix_metadata_step_run"] is None
            return conn.execute(text("SELECT count(*) FROM write_intent")).scalar()
    finally:
        raw.dispose()


def test_queries_on_run_and_step_metadata_use_their_partial_indexes(sqlite_home):
    init()
    queries = {
        "ix_metadata_run": select(Metadata.key).where(Metadata.run_id == 1),
        "ix_metadata_step_run": select(Metadata.key).where(Metadata.step_run_id.in_([1, 2, 3])),
    }
    # A join that reaches the metadata by its step run (browse.py's failed steps' errors, less the key).
    joined = (select(StepRun.run_id, Metadata.value).join(Metadata, Metadata.step_run_id == StepRun.id)
              .where(StepRun.run_id.in_([1, 2])))
    with get_index().engine.connect() as conn:
        for name, query in queries.items():
            compiled = query.compile(conn, compile_kwargs={"literal_binds": True})
            plan = " ".join(row[3] for row in conn.execute(text(f"EXPLAIN QUERY PLAN {compiled}")))
            assert f"USING INDEX {name}" in plan, plan
        compiled = joined.compile(conn, compile_kwargs={"literal_binds": True})
        plan = " ".join(row[3] for row in conn.execute(text(f"EXPLAIN QUERY PLAN {compiled}")))
        assert "USING INDEX ix_metadata_step_run" in plan, plan


def test_a_save_writes_one_page_for_its_intent_and_few_for_its_commit(sqlite_home):
    """Counted in SQLite's write-ahead log, which grows by one frame per
    page a transaction writes (no checkpoint runs in a handful of saves)."""
    save_artifact({"warm": 1}, "params")
    log = sqlite_home / "data" / "index.db-wal"
    sizes: list[int] = []

    def mark() -> None:
        sizes.append(os.stat(log).st_size)

    intents, commits = [], []
    with fault_action("after_write_intent", mark), fault_action("before_commit", mark):
        for _ in range(7):
            sizes[:] = [os.stat(log).st_size]
            save_artifact({"lr": 0.01, "epochs": 10}, "params")
            mark()
            start, after_intent, before_commit, end = sizes
            intents.append((after_intent - start) // FRAME)
            commits.append((end - before_commit) // FRAME)
    assert intents == [1] * 7  # three before 0013: the table, its uuid key, ix_write_intent_store
    # The version (its row, uuid, uri, (artifact, version) key and three indexes), the
    # id sequence, its file (row and key), its two metadata rows (row, version and key
    # indexes), the intent, the change clock: 15, and a page split now and then
    # (19-20 before 0013).
    assert statistics.median(commits) <= 16, commits
