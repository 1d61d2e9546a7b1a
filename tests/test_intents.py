"""Write intents in the index (SQLite and PostgreSQL): recorded, aged by the
database's clock, cleared."""

import datetime as dt

from sqlalchemy import update

pytest_plugins = ["index_fixtures"]

from artifactfs.api import init  # noqa: E402
from artifactfs.index import get_index  # noqa: E402
from artifactfs.index.clock import database_now  # noqa: E402
from artifactfs.index.intents import (  # noqa: E402
    clear_intent,
    live_intent_folders,
    record_intent,
    stale_intents,
)
from artifactfs.index.models import WriteIntent  # noqa: E402


def test_an_intent_is_live_until_it_ages_past_the_floor_then_stale_until_cleared(afs_home):
    store_id = init().index_id
    with get_index().write() as session:
        fresh = record_intent(session, store_id, "/model/aaa/", "host:1")
        old = record_intent(session, store_id, "model/bbb", "host:2")
    with get_index().write() as session:  # bbb's writer started two days ago
        session.execute(update(WriteIntent).where(WriteIntent.uuid == old)
                        .values(started_at=database_now(session) - dt.timedelta(days=2)))
    with get_index().read() as session:
        assert live_intent_folders(session, store_id, dt.timedelta(hours=1)) == {"model/aaa"}
        assert [i.folder for i in stale_intents(session, store_id, dt.timedelta(hours=1))] == ["model/bbb"]
        assert live_intent_folders(session, store_id + 1, dt.timedelta(hours=1)) == set()
    with get_index().write() as session:
        clear_intent(session, fresh)
        clear_intent(session, old)
    with get_index().read() as session:
        assert live_intent_folders(session, store_id, dt.timedelta(days=30)) == set()


def test_the_database_clock_is_utc_and_close_to_ours(afs_home):
    init()
    with get_index().read() as session:
        now = database_now(session)
    assert now.tzinfo is not None
    assert abs(now - dt.datetime.now(dt.timezone.utc)) < dt.timedelta(seconds=5)


RECORD_UNDER_A_SLOW_CLOCK = """
import sys
from artifactfs.index import get_index
from artifactfs.index.intents import record_intent
with get_index().write() as session:
    record_intent(session, int(sys.argv[1]), "model/slow-clock", "far:1")
"""


def test_an_intent_written_by_a_host_whose_clock_is_behind_is_still_young(afs_home):
    """A writer whose clock runs two days behind (faketime, that process only)
    records its intent; by the database's clock, which ages it, it is young:
    no pruner may take its folder for an old orphan. PostgreSQL only: on
    SQLite the database's clock is the writer's own."""
    import os
    import subprocess
    import sys

    import pytest

    store_id = init().index_id
    if get_index().is_sqlite:
        pytest.skip("SQLite's clock is the writing process's clock")
    subprocess.run(["faketime", "-f", "-2d", sys.executable, "-c", RECORD_UNDER_A_SLOW_CLOCK, str(store_id)],
                   check=True, env=dict(os.environ), timeout=120)
    with get_index().read() as session:
        assert live_intent_folders(session, store_id, dt.timedelta(hours=1)) == {"model/slow-clock"}
