"""The pruner's lease across machines (issue 10 item 8, issue 15 item 6), on
SQLite and PostgreSQL: holders are a stable machine id plus a random
per-process token; expiry runs on the database's clock; a holder on another
machine is presumed alive until its lease expires, a dead process on this
machine frees it at once. Machines are played by processes with their own
``ARTIFACTFS_MACHINE_ID`` on this one host (so they share its hostname, as
cloned VMs do)."""

import datetime as dt
import os
import subprocess
import sys
import textwrap

import pytest
from sqlalchemy import update

pytest_plugins = ["index_fixtures"]

from artifactfs.api import init  # noqa: E402
from artifactfs.gc import Lease, LeaseHeldError, current_lease  # noqa: E402
from artifactfs.index import get_index  # noqa: E402
from artifactfs.index.holders import parse_holder  # noqa: E402
from artifactfs.index.clock import database_now  # noqa: E402
from artifactfs.index.models import GcLease  # noqa: E402

# Takes the lease and dies without releasing it (as a killed pruner would);
# with "hold" it keeps it until its stdin closes.
HOLDER = textwrap.dedent(
    """
    import datetime as dt, os, sys
    from artifactfs.gc import Lease, LeaseHeldError
    from artifactfs.index import get_index
    try:
        lease = Lease(get_index(), ttl=dt.timedelta(hours=1), heartbeat=False).acquire()
    except LeaseHeldError:
        print("held", flush=True)
        sys.exit(3)
    print("took", lease.holder, flush=True)
    if sys.argv[1] == "hold":
        sys.stdin.read()
        lease.release()
    else:
        os._exit(0)
    """
)


def as_machine(machine: str, mode: str = "die") -> subprocess.Popen:
    env = {**os.environ, "ARTIFACTFS_MACHINE_ID": machine}
    return subprocess.Popen([sys.executable, "-c", HOLDER, mode], env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run_as_machine(machine: str) -> tuple[int, str]:
    proc = as_machine(machine)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode in (0, 3), err
    return proc.returncode, out


def test_a_dead_holder_on_another_machine_is_presumed_alive_until_expiry(afs_home, monkeypatch):
    init()
    code, out = run_as_machine("machine-a")  # takes the lease, dies without releasing
    assert code == 0, out
    holder = parse_holder(current_lease(get_index()).holder)
    assert holder.machine == "machine-a" and holder.token and holder.pid > 0
    # Same hostname, the pid is gone from this host, but machine-b cannot know machine-a's processes.
    monkeypatch.setenv("ARTIFACTFS_MACHINE_ID", "machine-b")
    with pytest.raises(LeaseHeldError, match="machine=machine-a"):
        Lease(get_index()).acquire()
    assert run_as_machine("machine-b")[0] == 3
    # machine-a itself knows its process is gone: takes the lease over at once.
    code, out = run_as_machine("machine-a")
    assert code == 0 and "machine=machine-a" in out


def test_two_live_holders_with_one_hostname_never_both_hold_it(afs_home):
    init()
    first = as_machine("clone-1", "hold")
    try:
        assert first.stdout.readline().startswith("took")
        assert run_as_machine("clone-2")[0] == 3
        assert run_as_machine("clone-1")[0] == 3  # same machine, but that process is alive
    finally:
        first.stdin.close()
        first.wait(timeout=60)
    assert run_as_machine("clone-2")[0] == 0


def test_expiry_runs_on_the_database_clock(afs_home, monkeypatch):
    init()
    index = get_index()
    with index.write() as session:  # another machine's lease, valid for 10 more minutes by the database
        row = session.get(GcLease, "pruner") or GcLease(name="pruner")
        session.add(row)
        now = database_now(session)
        row.holder = "host=far pid=1 machine=far-away token=abc"
        row.acquired_at, row.heartbeat_at, row.expires_at = now, now, now + dt.timedelta(minutes=10)
    # A pruner whose host clock runs an hour ahead (faketime: every clock of that process, whatever
    # it calls): by it the lease has expired, by the database's it has not. On SQLite the database's
    # clock is the host's, so only PostgreSQL can show the difference.
    if not index.is_sqlite:
        code = ("from artifactfs.gc import Lease, LeaseHeldError\nfrom artifactfs.index import get_index\n"
                "try:\n    Lease(get_index()).acquire()\nexcept LeaseHeldError:\n    raise SystemExit(3)\n")
        ahead = subprocess.run(["faketime", "-f", "+1h", sys.executable, "-c", code], capture_output=True, text=True,
                               timeout=120)
        assert ahead.returncode == 3, f"a host clock an hour ahead took a valid lease: {ahead.stderr[-2000:]}"
    with pytest.raises(LeaseHeldError):
        Lease(index).acquire()
    with index.write() as session:
        session.execute(update(GcLease).values(expires_at=database_now(session) - dt.timedelta(seconds=1)))
    with Lease(index) as lease:
        assert lease.held
        state = current_lease(index)
        with index.read() as session:
            db_now = database_now(session)
        # Renewed by the database's clock, not this host's.
        assert abs(state.expires_at - (db_now + lease.ttl)) < dt.timedelta(minutes=1)
