"""Step logs: what a step writes to stdout, stderr and logging (its threads
too) is stored with its step run, bounded with the cut marked, shown by
`artifactfs run show --logs` (which also says why a failed step failed)
and by the web view's JSON API; the console still shows it."""

import logging
import os
import subprocess
import sys
import textwrap
import threading
import uuid

import pytest

pytest_plugins = ["index_fixtures"]

CLI = [sys.executable, "-c", "from artifactfs.cli.main import main; main()"]


def cli(*args: str) -> str:
    done = subprocess.run([*CLI, *args], capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"},
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def logs_of(run_name: str) -> dict:
    from artifactfs import Client
    from artifactfs.index import get_index, steplogs

    steps = Client().get_pipeline_run(run_name).steps
    with get_index().read() as session:
        found = steplogs.logs_of(session, [s._pk for s in steps.values()])
    return {name: found.get(s._pk) for name, s in steps.items()}


def test_stdout_stderr_logging_and_threads_are_kept(afs_home, capsys):
    from artifactfs import pipeline, step

    @step
    def chatty() -> int:
        print("to stdout <b>")
        print("to stderr", file=sys.stderr)
        logging.getLogger("user.code").warning("a warning from logging")
        worker = threading.Thread(target=lambda: print("from a thread"))
        worker.start()
        worker.join()
        flushers["chatty"] = step_log_threads()
        return 1

    flushers: dict[str, list[str]] = {}

    def step_log_threads() -> list[str]:
        return [t.name for t in threading.enumerate() if t.name.startswith("artifactfs-step-log-")]

    @step
    def quiet(x: int) -> int:
        flushers["quiet"] = step_log_threads()  # wrote nothing: no thread waits to store its log
        return x

    @pipeline
    def talk():
        quiet(chatty())

    name = f"talk-{uuid.uuid4().hex[:6]}"
    talk.with_options(run_name=name)()
    found = logs_of(name)
    text = found["chatty"].text
    for line in ["to stdout <b>\n", "to stderr\n", "WARNING user.code: a warning from logging\n", "from a thread\n"]:
        assert line in text
    assert found["chatty"].cut == 0 and found["chatty"].total == len(text)
    assert found["quiet"] is None  # wrote nothing: no row
    assert len(flushers["chatty"]) == 1 and flushers["quiet"] == []
    seen = capsys.readouterr()
    assert "to stdout <b>" in seen.out and "to stderr" in seen.err  # still shown where it went

    shown = cli("run", "show", name, "--logs")
    assert "logs of step chatty" in shown and "to stdout <b>" in shown and "a warning from logging" in shown
    assert "logs of step quiet (no output)" in shown


def test_a_failed_step_keeps_its_log_and_run_show_says_why(sqlite_home):
    from artifactfs import pipeline, step

    @step
    def broken() -> int:
        print("about to fail")
        raise ValueError("the disk is on fire")

    @pipeline
    def fragile():
        broken()

    name = f"fragile-{uuid.uuid4().hex[:6]}"
    with pytest.raises(ValueError):
        fragile.with_options(run_name=name)()
    assert logs_of(name)["broken"].text == "about to fail\n"
    shown = cli("run", "show", name)
    assert "step broken failed: ValueError: the disk is on fire" in shown
    assert "about to fail" not in shown  # logs only with --logs


def test_a_huge_log_is_cut_in_the_middle_and_says_so(sqlite_home):
    from artifactfs import pipeline, step
    from artifactfs.index.steplogs import STEP_LOG_HEAD, STEP_LOG_LIMIT

    lines = 3 * STEP_LOG_LIMIT // 20

    @step
    def flood() -> int:
        for i in range(lines):
            sys.stdout.write(f"line {i:014d}\n")  # 20 characters a line
        return 1

    @pipeline
    def noisy():
        flood()

    name = f"noisy-{uuid.uuid4().hex[:6]}"
    noisy.with_options(run_name=name, quiet=True)()
    log = logs_of(name)["flood"]
    assert log.total == 20 * lines and log.cut == log.total - STEP_LOG_LIMIT
    head, marker, tail = log.text.partition("\n[artifactfs: ")
    assert len(head) == STEP_LOG_HEAD and head.startswith("line 00000000000000\n")
    assert f"{log.cut:,} characters cut here" in marker + tail
    assert tail.endswith(f"line {lines - 1:014d}\n")
    assert len(tail.split("]\n", 1)[1]) == STEP_LOG_LIMIT - STEP_LOG_HEAD
    shown = cli("run", "show", name, "--logs")
    assert f"{log.cut:,} cut from the middle" in shown


def test_an_unconfigured_warning_still_reaches_the_console(tmp_path):
    """Python prints a warning when no logging handler is configured (its
    last resort); the capture's handler must not silence it, nor double it."""
    script = textwrap.dedent("""
        import logging
        from artifactfs import pipeline, step

        @step
        def warn() -> int:
            logging.getLogger("x").warning("careful now")
            return 1

        @pipeline(quiet=True)
        def p():
            warn()

        p()
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "ARTIFACTFS_HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("careful now") == 1


def test_the_web_api_serves_a_steps_log(afs_home):
    from artifactfs import Client, pipeline, step
    from artifactfs.web import WebConfig, create_app
    from web_helpers import client, serving

    @step
    def says() -> int:
        print("<script>alert(1)</script>")
        return 1

    @pipeline
    def speak():
        says()

    name = f"speak-{uuid.uuid4().hex[:6]}"
    speak.with_options(run_name=name, quiet=True)()
    step_id = Client().get_pipeline_run(name).steps["says"].id
    with serving(create_app(WebConfig())) as base, client(base) as http:
        body = http.get(f"/api/v1/steps/{step_id}/logs").json()
        assert body == {"step": step_id, "text": "<script>alert(1)</script>\n", "total": 26, "cut": 0}
        page = http.get(f"/steps/{step_id}").text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert(1)" not in page
        assert http.get("/api/v1/steps/nope/logs").status_code == 404


def test_run_show_logs_drops_terminal_controls(sqlite_home):
    """A log cannot drive the terminal of whoever reads it: escape sequences
    (window title, clear screen) are dropped; colours stay on a terminal."""
    from artifactfs import pipeline, step

    @step
    def sly() -> int:
        print("a\x1b]0;pwned\x07b\x1b[2Jc\x1b[31mred\x1b[0m")
        return 1

    @pipeline(quiet=True)
    def tricks():
        sly()

    name = f"tricks-{uuid.uuid4().hex[:6]}"
    tricks.with_options(run_name=name)()
    done = subprocess.run([*CLI, "run", "show", name, "--logs"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "200", "FORCE_COLOR": "1", "TERM": "xterm-256color"})
    assert done.returncode == 0, done.stderr
    assert "\x1b]" not in done.stdout and "\x1b[2J" not in done.stdout and "\x07" not in done.stdout
    assert "\x1b[31mred" in done.stdout
