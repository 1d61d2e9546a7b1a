"""Writers on one PostgreSQL index, forced to overlap with pause points: a
transaction the database aborts for a deadlock runs again (and, without
the retry, fails as one line); no writer waits for another's generation
bump; the change clock never misses a commit; a process keeps one
connection."""

from __future__ import annotations

import os
import threading
import time

import psycopg
import pytest

pytest_plugins = ["index_fixtures"]


@pytest.fixture
def index_backend():
    return "postgres"  # row locks, deadlocks and sequences are PostgreSQL's


@pytest.fixture
def pg_home(afs_home) -> str:
    """A fresh PostgreSQL index (``index_fixtures.afs_home``); its URL."""
    return os.environ["ARTIFACTFS_INDEX_URL"]


@pytest.fixture
def pause(tmp_path, monkeypatch):
    """``pause(point)``: the first thread of this process to reach ``point``
    stops there; returns ``(wait_reached, release)``."""
    folder = tmp_path / "pause"
    folder.mkdir()

    def arm(point: str):
        monkeypatch.setenv("ARTIFACTFS_PAUSE", point)
        monkeypatch.setenv("ARTIFACTFS_PAUSE_DIR", str(folder))

        def wait_reached(timeout: float = 60) -> None:
            deadline = time.monotonic() + timeout
            while not list(folder.glob(f"{point}.*.reached")):
                assert time.monotonic() < deadline, f"nothing reached {point}"
                time.sleep(0.01)

        return wait_reached, lambda: (folder / f"{point}.go").touch()

    return arm


class Worker(threading.Thread):
    """Runs ``fn`` and keeps its result or exception."""

    def __init__(self, fn) -> None:
        super().__init__(daemon=True)
        self.fn, self.result, self.error = fn, None, None
        self.start()

    def run(self) -> None:
        try:
            self.result = self.fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            self.error = exc

    def outcome(self, timeout: float = 60):
        self.join(timeout)
        assert not self.is_alive(), "the worker is still blocked"
        if self.error is not None:
            raise self.error
        return self.result


def _raw(postgres_server, url: str) -> psycopg.Connection:
    return psycopg.connect(host="127.0.0.1", port=postgres_server.port, user=postgres_server.user,
                           dbname=url.rsplit("/", 1)[1])


def _waiting_on_lock(postgres_server, url: str, pid: int | None = None) -> int:
    with psycopg.connect(host="127.0.0.1", port=postgres_server.port, user=postgres_server.user,
                         dbname="postgres", autocommit=True) as conn:
        query = "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'"
        args: tuple = (url.rsplit("/", 1)[1],)
        if pid is not None:
            query, args = query + " AND pid = %s", args + (pid,)
        return conn.execute(query, args).fetchone()[0]


def _until(condition, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _force_deadlock(postgres_server, url, pause, save):
    """``save`` (in a thread) holds the lock of artifact ``dl_x`` and is
    paused; another transaction locks the store row, then waits for ``dl_x``;
    released, ``save`` needs the store row (its new version references it):
    a cycle. The other transaction waits 60 s before looking for deadlocks,
    so PostgreSQL aborts ``save``'s transaction after its own 1 s."""
    from artifactfs import save_artifact

    save_artifact(0, "dl_x")
    wait_reached, release = pause("artifacts_locked")
    worker = Worker(save)
    wait_reached()
    other = _raw(postgres_server, url)
    other.execute("SET LOCAL deadlock_timeout = '60s'")
    other.execute("SELECT id FROM store WHERE name = 'default' FOR UPDATE")
    blocked = Worker(lambda: other.execute("SELECT id FROM artifact WHERE name = 'dl_x' FOR UPDATE").fetchone())
    _until(lambda: _waiting_on_lock(postgres_server, url, other.info.backend_pid) == 1, "the other transaction to wait")
    release()
    return worker, blocked, other


def test_a_deadlocked_write_runs_again(pg_home, postgres_server, pause):
    from artifactfs import save_artifact
    from artifactfs.index import get_index

    worker, blocked, other = _force_deadlock(postgres_server, pg_home, pause, lambda: save_artifact(1, "dl_x"))
    blocked.outcome()  # the aborted save let go of dl_x: the other transaction has it
    _until(lambda: get_index().statistics()["retried"] >= 1, "the save to run again")
    other.commit()
    other.close()
    assert worker.outcome().version == "2"


def test_a_deadlock_without_retry_is_one_line(pg_home, postgres_server, pause):
    from artifactfs.index import IndexConflictError, get_index
    from artifactfs.index.artifacts import lock_artifact

    def locked_insert():
        with get_index().write() as session:  # no retry: a with-block cannot run again
            lock_artifact(session, "dl_x")
            session.execute(__import__("sqlalchemy").text(
                "UPDATE store SET options = options WHERE name = 'default'"))

    worker, blocked, other = _force_deadlock(postgres_server, pg_home, pause, locked_insert)
    with pytest.raises(IndexConflictError) as caught:
        worker.outcome()
    other.rollback()
    other.close()
    assert "deadlock" in caught.value.message and "\n" not in str(caught.value)
    assert caught.value.hint


def test_a_save_that_waited_for_the_artifact_lock_numbers_after_the_one_that_held_it(pg_home, postgres_server, pause):
    """Versions are numbered with the write intent: a save that waited for
    another's artifact lock must see the number that one's intent took
    (its number is read in a statement after the lock, with a fresh
    snapshot), or both would hold one number and one commit would fail."""
    from artifactfs import save_artifact

    save_artifact(0, "numbered")
    wait_reached, release = pause("artifacts_locked")
    first = Worker(lambda: save_artifact({"first": 1}, "numbered"))
    wait_reached()  # holds the artifact's row lock, has not numbered yet
    second = Worker(lambda: save_artifact({"second": 1}, "numbered"))
    _until(lambda: _waiting_on_lock(postgres_server, pg_home) == 1, "the second save to wait for the lock")
    release()
    assert sorted([first.outcome().version, second.outcome().version]) == ["2", "3"]


def test_a_writer_never_waits_for_another_ones_generation_bump(pg_home, pause):
    """The first save stops after its change-clock bump, before COMMIT; a
    second save commits meanwhile (main's index_state row made it wait)."""
    from artifactfs import save_artifact

    save_artifact(0, "warm")
    wait_reached, release = pause("generation_bumped")
    first = Worker(lambda: save_artifact(1, "first"))
    wait_reached()
    try:
        second = Worker(lambda: save_artifact(2, "second"))
        assert second.outcome(timeout=30).version == "1"
    finally:
        release()
    assert first.outcome().version == "1"


def test_the_change_clock_never_misses_a_commit(pg_home, pause):
    """A reading taken while a writer has bumped but not committed, followed
    by reading the data (without the change), must report a move once the
    writer commits, though the counter did not move again."""
    from artifactfs import save_artifact
    from artifactfs.index import get_generation, get_index
    from artifactfs.index.artifacts import version_exists

    save_artifact(0, "warm")
    index = get_index()
    with index.engine.connect() as conn:
        before = get_generation(conn)
    wait_reached, release = pause("generation_bumped")
    writer = Worker(lambda: save_artifact(1, "late"))
    wait_reached()
    with index.read() as session:
        during = get_generation(session)
        assert not version_exists(session, "late", "1")  # not committed: the reader's data lacks it
    assert during.moved_since(before)
    release()
    writer.outcome()
    with index.engine.connect() as conn:
        after = get_generation(conn)
    assert int(after) == int(during)  # the sequence did not move again...
    assert after.moved_since(during)  # ...yet the commit is seen
    with index.engine.connect() as conn:
        assert not get_generation(conn).moved_since(after)  # and nothing else moved


def test_a_process_holds_one_connection(pg_home, tmp_path):
    """A pipeline, saves, loads, a gc pass and fsck never hold two
    connections at once, and leave one open."""
    from sqlalchemy import event

    from artifactfs import load_artifact, pipeline, save_artifact, step
    from artifactfs.gc import Lease, execute, fsck, plan_prune
    from artifactfs.gc.policy import PrunePolicy
    from artifactfs.index import get_index

    index = get_index()
    held, most = [0], [0]

    @event.listens_for(index.engine, "checkout")
    def _out(*_):
        held[0] += 1
        most[0] = max(most[0], held[0])

    @event.listens_for(index.engine, "checkin")
    def _in(*_):
        held[0] -= 1

    @step
    def double(x: int) -> int:
        return 2 * x

    @pipeline
    def twice(x: int = 1):
        double(double(x))

    twice(x=3)
    save_artifact([1], "list")
    assert load_artifact("list") == [1]
    with Lease(index) as lease:
        execute(index, plan_prune(index, PrunePolicy()), lease)
    fsck(index)
    assert most[0] == 1
    assert index.statistics()["connections"] == 1


def _terminate_idle_writer(postgres_server, url: str) -> None:
    """End the backend of the write transaction that sits paused."""
    with psycopg.connect(host="127.0.0.1", port=postgres_server.port, user=postgres_server.user,
                         dbname="postgres", autocommit=True) as conn:
        killed = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
            "AND state = 'idle in transaction'", (url.rsplit("/", 1)[1],)).fetchall()
    assert killed == [(True,)], killed


def test_a_write_whose_connection_is_lost_before_commit_runs_again(pg_home, postgres_server, pause):
    from artifactfs import load_artifact, save_artifact
    from artifactfs.index import get_index

    save_artifact(0, "x")
    wait_reached, release = pause("artifacts_locked")
    writer = Worker(lambda: save_artifact(1, "x"))
    wait_reached()
    _terminate_idle_writer(postgres_server, pg_home)
    release()
    assert writer.outcome().version == "2"
    assert get_index().statistics()["retried"] == 1
    assert load_artifact("x") == 1


def test_a_connection_lost_while_committing_is_one_honest_line(pg_home, postgres_server, pause):
    from artifactfs import save_artifact
    from artifactfs.index import IndexConnectionError, get_index

    save_artifact(0, "x")
    wait_reached, release = pause("generation_bumped")  # inside COMMIT's preparation
    writer = Worker(lambda: save_artifact(1, "x"))
    wait_reached()
    _terminate_idle_writer(postgres_server, pg_home)
    release()
    with pytest.raises(IndexConnectionError) as caught:
        writer.outcome()
    assert "may or may not" in caught.value.message and get_index().statistics()["retried"] == 0
