"""The write side of "never lose" (DESIGN.md, write protocol), on SQLite and
PostgreSQL and, where a store is involved, on every store flavor:

- a check made under a lock reads the row fresh, so a step never links a
  version the pruner condemned (the race is forced with a fault point);
- a save records its write intent before its first payload byte, makes the
  payload durable, and commits only if the payload is still there;
- names and metadata are refused before anything is written;
- a failed save leaves no folder and no intent behind.
"""

import datetime as dt

import pytest
from sqlalchemy import select, update

pytest_plugins = ["index_fixtures"]

from artifactfs import load_artifact, pipeline, save_artifact, step  # noqa: E402
from artifactfs.faults import at_fault_point  # noqa: E402
from artifactfs.gc import PrunePolicy, run_pass  # noqa: E402
from artifactfs.index import get_index  # noqa: E402
from artifactfs.index import gc as gc_rows  # noqa: E402
from artifactfs.index import migrate_store  # noqa: E402
from artifactfs.index.models import ArtifactVersion as VersionRow  # noqa: E402
from artifactfs.index.models import GcLease, StepIO, utcnow  # noqa: E402
from artifactfs.index.pipelines import VersionNotLiveError, lock_live_version  # noqa: E402

HOUR = dt.timedelta(hours=1)


def state_of(version) -> str:
    with get_index().read() as session:
        return session.scalar(select(VersionRow.state).where(VersionRow.id == version._pk))


def links_to(version) -> int:
    with get_index().read() as session:
        return len(session.scalars(select(StepIO.id).where(StepIO.version_id == version._pk)).all())


def condemn_behind_the_session(session, version_id: int) -> None:
    """What a pruner's committed condemn looks like to a transaction that read
    the row before it: the table changed, the session's copy did not."""
    session.connection().execute(
        update(VersionRow.__table__).where(VersionRow.__table__.c.id == version_id).values(state="condemned")
    )


# -- item 1: a check under a lock reads the row fresh ---------------------------------------


def test_lock_live_version_reads_the_row_not_the_sessions_cached_copy(afs_home):
    version = save_artifact({"i": 1}, "data")
    with get_index().write() as session:
        cached = session.get(VersionRow, version._pk)  # held, so the identity map keeps it
        assert cached.state == "live"
        condemn_behind_the_session(session, version._pk)
        with pytest.raises(VersionNotLiveError, match="removed by the pruner"):
            lock_live_version(session, version._pk)


def test_repoint_reads_the_row_fresh_under_its_lock(afs_home):
    version = save_artifact({"i": 1}, "data")
    with get_index().write() as session:
        row = session.get(VersionRow, version._pk)
        change = migrate_store.Repoint(version._pk, row.store_id, row.uri, row.store_id, row.uri + "-moved",
                                       row.payload_kind, [])
        condemn_behind_the_session(session, version._pk)
        assert migrate_store.repoint(session, change) is False


def test_the_lease_is_read_fresh_under_its_lock(afs_home):
    now = utcnow()
    with get_index().write() as session:
        assert gc_rows.take_lease(session, "me", now, HOUR, lambda state: False)[0]
    with get_index().write() as session:
        cached = session.get(GcLease, gc_rows.PRUNER_LEASE)
        assert cached.holder == "me"
        session.connection().execute(update(GcLease.__table__).values(holder="other", expires_at=now + HOUR))
        taken, found = gc_rows.take_lease(session, "me", now, HOUR, lambda state: False)
        assert (taken, found.holder) == (False, "other")


@step
def read_data() -> int:
    return load_artifact("data")["i"]


@pipeline
def reader():
    read_data()


def prune_now() -> None:
    """A real pruner pass that condemns every unreferenced version at once
    (payloads stay an hour: the test looks at rows)."""
    policy = PrunePolicy(grace=dt.timedelta(0), keep_latest=0, keep_tags=frozenset(), sweep_delay=HOUR,
                         orphan_grace=HOUR)
    _, result = run_pass(get_index(), policy)
    assert result.condemned, "the pruner condemned nothing: the race was not forced"


def test_a_step_never_links_a_version_the_pruner_condemns_after_reading_it(afs_home):
    version = save_artifact({"i": 7}, "data")
    with at_fault_point("before_input_link", prune_now), pytest.raises(VersionNotLiveError, match="data:1"):
        reader()
    assert state_of(version) == "condemned"
    assert links_to(version) == 0
    save_artifact({"i": 8}, "data")
    assert reader().steps["read_data"].output.load() == 8
