"""Issue 24 items 1, 7 and 10: no age, expiry or grace comes from a clock
that can jump (SQLite and PostgreSQL). The pruner runs as a real
``artifactfs`` process under libfaketime (Debian's ``faketime``), two days
ahead or behind, against an index written seconds earlier by this process;
PostgreSQL's own clock is not affected. On PostgreSQL every age is the
server's; on SQLite a pass whose clock disagrees with the index's prunes
nothing and says so. A save still writing and a live pruner's lease
survive whatever the clock says, and a ``gc daemon`` rides out a
PostgreSQL restart."""

import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

pytest_plugins = ["index_fixtures"]

import servers  # noqa: E402
from artifactfs import save_artifact  # noqa: E402
from artifactfs.gc import current_lease, fsck  # noqa: E402
from artifactfs.index import get_index, reset_index_cache  # noqa: E402
from artifactfs.index.clock import database_now  # noqa: E402
from artifactfs.index.models import VersionRow  # noqa: E402
from artifactfs.index.models import PipelineRun, WriteIntent  # noqa: E402
from gc_helpers import backdate_tree, chain, parked_save, root, states  # noqa: E402

JUMPS = ["+2d", "-2d"]
CLI = [sys.executable, "-c", "from artifactfs.cli.main import main; main()"]
REFUSED = "refusing to prune"


@pytest.fixture(autouse=True)
def _faketime():
    if shutil.which("faketime") is None:
        if os.environ.get("CI"):
            pytest.fail("faketime is not installed (scripts/install-test-deps.sh installs it)")
        pytest.skip("faketime is not installed (apt-get install faketime)")


def under(jump: str | None, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """``artifactfs ARGS`` in a process whose clock is ``jump`` off (None: the real clock)."""
    prefix = ["faketime", "-f", jump] if jump else []
    return subprocess.run(prefix + CLI + list(args), capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})


def backdate(uuids, hours: float = 48) -> None:
    with get_index().write() as session:
        session.execute(update(VersionRow).where(VersionRow.uuid.in_(uuids))
                        .values(created_at=database_now(session) - dt.timedelta(hours=hours)))


def rows(uuids) -> dict[str, tuple[str, object]]:
    with get_index().read() as session:
        found = session.execute(select(VersionRow.uuid, VersionRow.state, VersionRow.swept_at)
                                .where(VersionRow.uuid.in_(list(uuids))))
        return {i: (state, swept) for i, state, swept in found}


def run_count() -> int:
    with get_index().read() as session:
        return session.scalar(select(func.count()).select_from(PipelineRun))


@pytest.mark.parametrize("jump", JUMPS)
def test_a_jumped_clock_deletes_nothing_fresh_and_stamps_nothing_old(afs_home, index_backend, jump):
    fresh = {v.id for i in range(5) for v in (save_artifact({"n": n}, f"fresh{i}") for n in range(3))}
    for n in range(3):
        chain(n=n)
    old = [save_artifact({"old": n}, "old") for n in range(3)]
    old_ids = [v.id for v in old[:2]]  # two days old, not the newest: the pass may condemn these
    backdate(old_ids)
    fresh_ids = set(states()) - set(old_ids)  # with the runs' outputs and the newest "old"
    assert len(fresh) == 15 and fresh <= fresh_ids

    result = under(jump, "gc", "-y", "--runs-older-than", "1d", "--sweep-delay", "1h")
    output = result.stdout + result.stderr
    assert all(state == "live" for state, _ in rows(fresh_ids).values()), output
    assert len(rows(fresh_ids)) == len(fresh_ids) and run_count() == 3, output
    if index_backend == "sqlite":  # only host clocks: the pass refuses, saying why
        assert result.returncode == 1, output
        assert REFUSED in output and ("ahead" if jump.startswith("+") else "behind") in output, output
        assert all(state == "live" for state, _ in rows(old_ids).values())
        return
    assert result.returncode == 0, output  # PostgreSQL's clock: the old ones wait out the sweep delay
    assert {state for state, _ in rows(old_ids).values()} == {"condemned"}, output
    # An honest pass right after: condemned a moment ago by the server's clock, so still waiting.
    result = under(None, "gc", "-y", "--sweep-delay", "1h")
    assert result.returncode == 0, result.stdout + result.stderr
    assert all(swept is None for _, swept in rows(old_ids).values()), result.stdout
    assert not fsck(get_index()).problems


# Takes the lease for one second, without heartbeats (a pruner stuck in a
# long step), and keeps running until its stdin closes.
HOLDER = textwrap.dedent(
    """
    import datetime as dt, sys
    from artifactfs.gc import Lease
    from artifactfs.index import get_index
    lease = Lease(get_index(), ttl=dt.timedelta(seconds=1), heartbeat=False).acquire()
    print(lease.holder, flush=True)
    sys.stdin.read()
    """
)


@pytest.mark.parametrize("jump", JUMPS + [None])
def test_the_lease_of_a_live_pruner_on_this_machine_is_never_taken(afs_home, jump):
    save_artifact(1, "x")
    holder = subprocess.Popen([sys.executable, "-c", HOLDER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        name = holder.stdout.readline().strip()
        assert name, holder.stderr.read()
        time.sleep(1.5)  # expired by every clock; its process still runs
        result = under(jump, "gc", "-y", "--grace", "0")
        output = result.stdout + result.stderr
        assert result.returncode == 1 and "another pruner is working" in output, output
        assert "still runs on this machine" in output, output
        assert current_lease(get_index()).holder == name
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)


# -- item 7: the writer of a save in flight is recognised, whatever its intent's age ----------

@pytest.mark.parametrize("jump", JUMPS + [None])
def test_a_save_parked_before_its_commit_survives_gc_whatever_the_clock_says(afs_home, tmp_path, jump):
    save_artifact({"old": 1}, "inflight")
    with parked_save(tmp_path):
        # A long save: its intent and its files four days old by every clock; only its
        # writer, still running on this machine, says it is in flight.
        with get_index().write() as session:
            folder = session.scalar(select(WriteIntent.folder))
            session.execute(update(WriteIntent).values(started_at=database_now(session) - dt.timedelta(days=4)))
        backdate_tree(root() / folder, hours=96)
        result = under(jump, "gc", "-y", "--grace", "0", "--orphan-grace", "0", "--keep-latest", "0")
        assert result.returncode in (0, 1), result.stdout + result.stderr
        assert (root() / folder).exists(), result.stdout + result.stderr
    assert not fsck(get_index()).problems


# -- item 10: a gc daemon across a PostgreSQL restart ------------------------------------------


def test_a_gc_daemon_prunes_again_right_after_a_postgres_restart(artifactfs_home, tmp_path, monkeypatch):
    try:
        server = servers.start_postgres()
    except servers.MissingPrerequisite as exc:
        pytest.skip(str(exc))
    with server:
        monkeypatch.setenv("ARTIFACTFS_INDEX_URL", server.create_database("daemon"))
        reset_index_cache()
        save_artifact(1, "dm")
        save_artifact(2, "dm")
        log = tmp_path / "daemon.log"
        with open(log, "w") as sink:
            daemon = subprocess.Popen(CLI + ["gc", "daemon", "--every", "1s", "--grace", "0", "--sweep-delay", "0",
                                             "--lease-ttl", "1h"],
                                      stdout=sink, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            wait_for(lambda: log.read_text().count("gc pass:") >= 2, log)
            server.kill()
            wait_for(lambda: "cannot be reached" in log.read_text(), log)
            time.sleep(3)  # several passes during the outage
            server.restart()
            reset_index_cache()
            version = save_artifact(3, "dm")
            save_artifact(4, "dm")
            # Pruned at once: the lease the interrupted pass left (valid for an hour) is its own.
            wait_for(lambda: states().get(version.id) is None, log, timeout=30)
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=60)
            reset_index_cache()
    text = log.read_text()
    assert "answers again" in text, text
    assert text.count("cannot be reached") == 1, text  # one line per outage
    for raw in ("OperationalError", "psycopg", "Traceback"):
        assert raw not in text, text


def wait_for(condition, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)


# -- SQLite: the index's mark -------------------------------------------------------------------

WRITE = "from artifactfs import save_artifact; print(save_artifact({'n': 2}, 'behind').id)"


def test_sqlite_times_never_fall_behind_the_mark_and_a_checked_clock_is_trusted(sqlite_home):
    first = save_artifact({"n": 1}, "behind")
    # A writer whose clock is two days behind: its version is written at the mark, not two days ago.
    late = subprocess.run(["faketime", "-f", "-2d"] + [sys.executable, "-c", WRITE], capture_output=True,
                          text=True, timeout=120)
    assert late.returncode == 0, late.stderr
    save_artifact({"n": 3}, "behind")
    result = under(None, "gc", "-y", "--grace", "1h", "--keep-latest", "0")
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(states()) == 3 and set(states().values()) == {"live"}, result.stdout
    assert {first.id, late.stdout.strip()} <= set(states())
    # fsck and run prune refuse a clock that jumped, as gc does.
    for args in (["fsck"], ["run", "prune", "--older-than", "1h", "-y"]):
        result = under("+2d", *args)
        assert result.returncode == 1 and REFUSED in result.stderr + result.stdout, (args, result.stderr)
    # A user who checked the clock: --trust-clock takes it (and records it as the index's).
    assert under("+2d", "gc", "-y").returncode == 1
    result = under("+2d", "gc", "-y", "--trust-clock", "--keep-latest", "0")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "live" not in states().values(), result.stdout  # two days old by the clock it trusted
    assert REFUSED in under(None, "gc", "-y").stderr  # now the real clock is the one behind
