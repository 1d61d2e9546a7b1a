"""Shared pieces of the web tests: a real uvicorn server in a thread for an
app, and the index seeded with what every page shows (runs with cached and
failed steps, tags, metadata, visualizations, registered files, hostile
names)."""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
import re
import subprocess
import sys
import threading
import time
from typing import Annotated

import httpx

from artifactfs import pipeline, register_artifact, save_artifact, step
from artifactfs.materializers import BaseMaterializer

XSS_NAME = "<img src=x onerror=alert(1)>"
XSS_NOTE = "<script>alert(1)</script>"
PNG_1PX = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
                        "0000000d4944415478da63f8cfc0f01f0005000201a1f7c6a90000000049454e44ae426082")


@contextlib.contextmanager
def serving(app):
    """``app`` on a free loopback port in a thread; yields its base URL."""
    import uvicorn

    from artifactfs.web.server import listen

    sock = listen("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


CLI = [sys.executable, "-c", "from artifactfs.cli.main import main; main()"]
URL_LINE = re.compile(r"(http://\S+)")


def start_ui(env: dict, *args: str) -> tuple[subprocess.Popen, str]:
    """`artifactfs ui ARGS --port 0` in a subprocess, as a user starts it,
    and the address it prints (with its token, when one was generated)."""
    proc = subprocess.Popen([*CLI, "ui", "--port", "0", *args], env={**env, "COLUMNS": "500"},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        if match := URL_LINE.search(line):
            return proc, match[1]
    proc.kill()
    raise AssertionError(f"artifactfs ui did not start:\n{proc.stdout.read()}")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def split_url(url: str) -> tuple[str, str | None]:
    """``(base address, token)`` of the address `artifactfs ui` printed."""
    base, _, query = url.partition("?token=")
    return base.rstrip("/"), query or None


def home_env(home) -> dict:
    """The environment of a process using the index under ``home`` (and nothing the caller set)."""
    env = {**os.environ, "ARTIFACTFS_HOME": str(home)}
    for name in ("ARTIFACTFS_INDEX_URL", "ARTIFACTFS_STORE", "ARTIFACTFS_UI_TOKEN"):
        env.pop(name, None)
    return env


class Report:
    """A value with every kind of visualization."""

    def __init__(self, title: str) -> None:
        self.title = title


class ReportMaterializer(BaseMaterializer):
    ASSOCIATED_TYPES = (Report,)

    def save(self, data: Report) -> None:
        with self.artifact_store.open(self.path("report.json"), "w") as f:
            json.dump({"title": data.title}, f)

    def load(self, data_type: type) -> Report:
        with self.artifact_store.open(self.path("report.json")) as f:
            return Report(json.load(f)["title"])

    def save_visualizations(self, data: Report) -> dict[str, str]:
        shown = {
            "page.html": ("html", f"<h1>{data.title}</h1><script>parent.document.title='owned'</script>"),
            "notes.md": ("markdown", f"# {data.title}\n\n*fine* <b>raw html</b> [x](javascript:alert(1))"),
            "table.csv": ("csv", "a,b\n1,<i>2</i>\n"),
            "facts.json": ("json", json.dumps({"title": data.title, "n": [1, 2]})),
        }
        produced = {}
        for name, (kind, text) in shown.items():
            uri = posixpath.join(self.visualization_uri, name)
            with self.artifact_store.open(uri, "w", encoding="utf-8") as f:
                f.write(text)
            produced[uri] = kind
        uri = posixpath.join(self.visualization_uri, "dot.png")
        with self.artifact_store.open(uri, "wb") as f:
            f.write(PNG_1PX)
        produced[uri] = "image"
        return produced


@step
def make_numbers(n: int = 5) -> Annotated[list, "numbers"]:
    return list(range(n))


@step
def double(numbers: list) -> Annotated[list, "doubled"]:
    return [2 * x for x in numbers]


@step
def summarize(doubled: list) -> Annotated[dict, "summary"]:
    return {"total": sum(doubled), "count": len(doubled)}


@pipeline
def web_pipe(n: int = 5) -> None:
    summarize(double(make_numbers(n=n)))


@step
def explode(numbers: list) -> Annotated[dict, "never"]:
    raise ValueError("boom <b>bold</b>")


@pipeline
def failing_pipe() -> None:
    explode(make_numbers(n=3))


def seed(tmp_folder) -> dict:
    """Fill the current index; returns what the tests look for."""
    first = web_pipe(n=5)
    second = web_pipe(n=5)  # every step cached
    try:
        failing_pipe()
    except ValueError:
        pass
    notes = [save_artifact({"i": i}, "notes", tags=["prod"] if i % 2 else ["dev"],
                           metadata={"accuracy": 0.5 + i / 100, "epochs": i, "owner": f"user{i}", "ok": i % 2 == 1})
             for i in range(7)]
    xss = save_artifact([1], XSS_NAME, metadata={"note": XSS_NOTE})
    escaped = save_artifact("x", "rate%41")
    report = save_artifact(Report("Quarterly <results>"), "report")
    folder = tmp_folder / "checkpoint"
    (folder / "sub" / "dir").mkdir(parents=True)
    (folder / "a b.txt").write_bytes(b"spaces in a name\n")
    (folder / "sub" / "dir" / "b.bin").write_bytes(bytes(range(256)) * 40)
    registered = register_artifact(folder, "checkpoint", copy=True, metadata={"epoch": 3})
    return {"first": first, "second": second, "notes": notes, "xss": xss, "escaped": escaped, "report": report,
            "registered": registered}


def client(base: str, **kwargs) -> httpx.Client:
    return httpx.Client(base_url=base, timeout=30, **kwargs)
