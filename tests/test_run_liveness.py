"""A run whose process died is shown as crashed, everywhere: the Client,
`artifactfs run list` / `run show`, the web view's list, page and progress
(which stops the page's polling). A real pipeline process is SIGKILLed
midway, on SQLite and PostgreSQL; a run of another machine is crashed once
its heartbeat is older than the limit on the index's clock."""

import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid

from sqlalchemy import update

from web_helpers import client, serving

pytest_plugins = ["index_fixtures"]

CLI = [sys.executable, "-c", "from artifactfs.cli.main import main; main()"]

DOOMED = textwrap.dedent("""
    import sys, time
    from artifactfs import pipeline, step

    @step
    def first() -> int:
        print("first step says hello")
        return 1

    @step
    def hang(x: int) -> int:
        print("hanging now", flush=True)
        time.sleep(2)  # the log's first store comes at once
        open(sys.argv[1], "w").close()  # the parent kills us now
        time.sleep(600)
        return x

    @pipeline
    def doomed():
        hang(first())

    doomed.with_options(run_name=sys.argv[2])()
""")


def killed_run(tmp_path) -> str:
    """Run the pipeline above in a process, SIGKILL it inside its second step; the run's name."""
    ready, name = tmp_path / "ready", f"doomed-{uuid.uuid4().hex[:8]}"
    proc = subprocess.Popen([sys.executable, "-c", DOOMED, str(ready), name], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while not ready.exists():
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "the pipeline never reached its second step"
            time.sleep(0.05)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    return name


def cli(*args: str) -> str:
    done = subprocess.run([*CLI, *args], capture_output=True, text=True, env={**os.environ, "COLUMNS": "300"},
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_killed_run_is_crashed_everywhere(afs_home, tmp_path):
    from artifactfs import Client
    from artifactfs.web import WebConfig, create_app

    name = killed_run(tmp_path)
    run = Client().get_pipeline_run(name)
    assert run.status == "crashed"
    assert run.steps["first"].status == "completed" and run.steps["hang"].status == "crashed"
    assert [r.status for r in Client().list_pipeline_runs(pipeline="doomed")] == ["crashed"]
    from artifactfs.index import get_index, steplogs

    with get_index().read() as session:
        logs = steplogs.logs_of(session, [run.steps["first"]._pk, run.steps["hang"]._pk])
    assert logs[run.steps["first"]._pk].text == "first step says hello\n"
    assert logs[run.steps["hang"]._pk].text == "hanging now\n"  # stored while it ran: the kill lost nothing

    listed = cli("run", "list")
    assert name in listed and "crashed" in listed and "running" not in listed
    shown = cli("run", "show", name)
    assert "crashed" in shown and "running" not in shown

    with serving(create_app(WebConfig())) as base, client(base) as http:
        progress = http.get(f"/api/v1/runs/{run.id}/progress").json()
        assert progress["status"] == "crashed" and progress["steps"] == [["first", "completed"], ["hang", "crashed"]]
        page = http.get(f"/runs/{run.id}").text
        assert "data-live" not in page and "status-crashed" in page  # the page does not poll
        items = http.get("/api/v1/runs").json()["items"]
        assert [i["status"] for i in items if i["name"] == name] == ["crashed"]
        assert [i["name"] for i in http.get("/api/v1/runs", params={"status": "crashed"}).json()["items"]] == [name]
        assert http.get("/api/v1/runs", params={"status": "running"}).json()["items"] == []
        assert http.get("/api/v1/pipelines").json()["items"][0]["last_status"] == "crashed"


def test_a_running_run_of_this_process_is_running(afs_home):
    from artifactfs import Client
    from artifactfs.index import get_index
    from artifactfs.index import pipelines as rows

    with get_index().write() as session:
        run = rows.create_run(session, "alive", f"alive-{uuid.uuid4().hex[:6]}", {})
        rows.create_step_run(session, run.id, "s", "c", None, {})
        name = run.name
    assert Client().get_pipeline_run(name).status == "running"
    assert Client().get_pipeline_run(name).steps["s"].status == "running"


def test_listing_running_steps_asks_liveness_once(afs_home):
    """Listing step runs reads whether their runs crashed in one query, not one per step."""
    from sqlalchemy import event

    from artifactfs import Client
    from artifactfs.index import get_index
    from artifactfs.index import pipelines as rows

    with get_index().write() as session:
        runs = [rows.create_run(session, "busy", f"busy-{uuid.uuid4().hex[:6]}", {}) for _ in range(3)]
        for run in runs:
            for step in ("a", "b"):
                rows.create_step_run(session, run.id, step, "c", None, {})
    liveness_queries = []

    def count(conn, cursor, statement, *args):
        if statement.startswith("SELECT pipeline_run.id, pipeline_run.holder, pipeline_run.heartbeat_at"):
            liveness_queries.append(statement)

    engine = get_index().engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        steps = Client().list_run_steps(name="a", size=100)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert sorted(s.status for s in steps) == ["running"] * 3
    assert len(liveness_queries) == 1


def test_another_machines_run_crashes_when_its_heartbeat_stops(afs_home):
    """Another machine's process cannot be checked: its run is crashed once
    its heartbeat is older than HEARTBEAT_STALE by the index's clock."""
    from artifactfs import Client
    from artifactfs.index import get_index
    from artifactfs.index import pipelines as rows
    from artifactfs.index.clock import database_now
    from artifactfs.index.holders import Holder
    from artifactfs.index.liveness import HEARTBEAT_STALE
    from artifactfs.index.models import PipelineRun

    elsewhere = str(Holder("other-host", 4242, "f" * 32, "t0k3n", 12345))
    with get_index().write() as session:
        run = rows.create_run(session, "remote", f"remote-{uuid.uuid4().hex[:6]}", {})
        run_id, name = run.id, run.name
        now = database_now(session)

    def beat_at(when):
        with get_index().write() as session:
            session.execute(update(PipelineRun).where(PipelineRun.id == run_id).values(holder=elsewhere,
                                                                                     heartbeat_at=when))

    beat_at(now - HEARTBEAT_STALE + dt.timedelta(seconds=30))
    assert Client().get_pipeline_run(name).status == "running"
    beat_at(now - HEARTBEAT_STALE - dt.timedelta(seconds=30))
    assert Client().get_pipeline_run(name).status == "crashed"


def test_heartbeat_moves_while_a_run_runs(sqlite_home):
    from sqlalchemy import select

    from artifactfs.index import get_index
    from artifactfs.index import pipelines as rows
    from artifactfs.index.models import PipelineRun
    from artifactfs.pipelines.heartbeat import keep_alive

    with get_index().write() as session:
        run_id = rows.create_run(session, "beating", f"beat-{uuid.uuid4().hex[:6]}", {}).id

    def last_beat():
        with get_index().read() as session:
            return session.scalar(select(PipelineRun.heartbeat_at).where(PipelineRun.id == run_id))

    first = last_beat()
    assert first is not None
    with keep_alive(run_id, every=0.05):
        deadline = time.monotonic() + 10
        while last_beat() == first:
            assert time.monotonic() < deadline, "no heartbeat was written"
            time.sleep(0.05)


def test_run_prune_deletes_a_crashed_run_but_never_a_running_one(afs_home, tmp_path):
    """A crashed run stays marked running in the index; `run prune` (and the
    pruner's run retention, through the same `runs_to_prune`) must still be
    able to delete it, and must never delete a run whose process is alive."""
    from artifactfs import Client
    from artifactfs.errors import NotFoundError
    from artifactfs.index import get_index
    from artifactfs.index import pipelines as rows
    from artifactfs.index.gc import runs_to_prune
    from artifactfs.index.models import utcnow

    crashed = killed_run(tmp_path)
    with get_index().write() as session:
        alive = rows.create_run(session, "alive", f"alive-{uuid.uuid4().hex[:6]}", {}).name
    with get_index().read() as session:
        listed = {r.name: r.status for r in runs_to_prune(session, utcnow() + dt.timedelta(days=1))}
    assert listed == {crashed: "crashed"}  # shown as crashed; the live run is not a candidate
    out = cli("run", "prune", "--older-than", "0", "--yes")
    assert "crashed" in out and "Deleted 1 run(s)" in out
    try:
        Client().get_pipeline_run(crashed)
        raise AssertionError("the crashed run is still there")
    except NotFoundError:
        pass
    assert Client().get_pipeline_run(alive).status == "running"
