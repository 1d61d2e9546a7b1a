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
