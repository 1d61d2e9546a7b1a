"""The web view against the attackers docs/web.md names, through
`artifactfs ui` started as a user starts it (a subprocess, its own memory
and reads measured from /proc): another user of the machine, a token that
must not show in `ps`, and requests that would make the server read or
hold gigabytes."""

import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest

import web_helpers
from artifactfs import register_artifact, save_artifact
from artifactfs.index import reset_index_cache
from web_helpers import home_env, split_url, start_ui, stop

BIG = 256 << 20  # sparse: costs no disk, and reading it costs what reading real bytes does
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A seeded home (its folder is the owner's only, as pytest makes it),
    with a 256 MiB visualization and a 256 MiB registered file."""
    folder = tmp_path_factory.mktemp("web-security-home")
    with pytest.MonkeyPatch.context() as mp:
        env = home_env(folder)
        mp.setenv("ARTIFACTFS_HOME", str(folder))
        for name in ("ARTIFACTFS_INDEX_URL", "ARTIFACTFS_STORE", "ARTIFACTFS_UI_TOKEN"):
            mp.delenv(name, raising=False)
        reset_index_cache()
        web_helpers.seed(tmp_path_factory.mktemp("files"))
        report = save_artifact(web_helpers.Report("big"), "big_report")
        html = next(v["uri"] for v in report.visualizations if v["kind"] == "html")
        os.truncate(html, BIG)
        root = Path(report.uri).parent.parent
        (root / "big_file").mkdir()
        big = root / "big_file" / "weights.bin"
        with open(big, "wb") as handle:
            handle.truncate(BIG)
        registered = register_artifact(str(big), "big_file")
        reset_index_cache()
    yield {"env": env, "report": report, "file": registered, "folder": folder}


def _status(*command: str) -> str:
    return subprocess.run(command, capture_output=True, text=True, timeout=60).stdout.strip()


def test_another_user_gets_nothing_without_the_token(home):
    """Another local user (nobody) cannot read the owner's files directly,
    and by default cannot read them through the server either."""
    if os.geteuid() != 0:
        pytest.skip("acting as another user (setpriv) needs root")
    version = home["file"]
    payload = version.uri
    assert subprocess.run([*NOBODY, "cat", payload], capture_output=True).returncode != 0  # the premise
    proc, url = start_ui(home["env"])
    try:
        base, token = split_url(url)
        assert token
        for path in ["/api/v1/stores", f"/versions/{version.id}/files/weights.bin", "/", "/static/app.js"]:
            got = _status(*NOBODY, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", base + path)
            assert got == "401", (path, got)
        with_token = _status(*NOBODY, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H",
                             f"Authorization: Bearer {token}", base + "/api/v1/stores")
        assert with_token == "200"  # what was refused was the missing token, nothing else
    finally:
        stop(proc)
    proc, url = start_ui(home["env"], "--no-token")  # the choice docs/web.md warns about
    try:
        got = _status(*NOBODY, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", url.rstrip("/") + "/api/v1/stores")
        assert got == "200"
    finally:
        stop(proc)


TOKEN = "file-token-0123456789abcdef"


def test_token_from_a_file_or_the_environment_stays_out_of_ps(home, tmp_path):
    secret = tmp_path / "token"
    secret.write_text(TOKEN + "\n")
    secret.chmod(0o644)
    refused = subprocess.run([*web_helpers.CLI, "ui", "--port", "0", "--token-file", str(secret)], env=home["env"],
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and f"chmod 600 {secret}" in refused.stdout + refused.stderr
    secret.chmod(0o600)
    for args, env in [(["--token-file", str(secret)], home["env"]), ([], {**home["env"], "ARTIFACTFS_UI_TOKEN": TOKEN})]:
        proc, url = start_ui(env, *args)
        try:
            base, shown = split_url(url)
            assert shown is None  # a token the user gave is not printed
            assert TOKEN not in Path(f"/proc/{proc.pid}/cmdline").read_text()
            assert httpx.get(base + "/api/v1/runs", timeout=30).status_code == 401
            assert httpx.get(base + "/api/v1/runs", headers={"Authorization": f"Bearer {TOKEN}"},
                             timeout=30).status_code == 200
        finally:
            stop(proc)


def _proc(pid: int, file: str, key: str) -> int:
    for line in Path(f"/proc/{pid}/{file}").read_text().splitlines():
        name, _, value = line.partition(":")
        if name == key:
            return int(value.split()[0])
    raise KeyError(key)


def _settled_reads(pid: int) -> int:
    """The process's bytes read once they stop growing: a server may go on
    reading after the client has its answer (a HEAD's body thrown away)."""
    last, still = _proc(pid, "io", "rchar"), 0
    while still < 5:
        time.sleep(0.1)
        now = _proc(pid, "io", "rchar")
        still = still + 1 if now == last else 0
        last = now
    return last


@pytest.fixture(scope="module")
def server(home):
    proc, url = start_ui(home["env"])
    base, token = split_url(url)
    http = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60)
    try:
        report = home["report"]
        assert http.get(f"/versions/{report.id}").status_code == 200  # warm up: imports, templates, stores
        assert http.get(f"/versions/{report.id}/visualizations/1").status_code == 200
        yield proc, http
    finally:
        http.close()
        stop(proc)


def test_visualization_is_streamed_not_held(home, server):
    """A 256 MiB visualization passes through the server; its peak memory
    grows by far less than that."""
    proc, http = server
    report = home["report"]
    number = next(i for i, v in enumerate(report.visualizations) if v["kind"] == "html")
    before = _proc(proc.pid, "status", "VmHWM") << 10
    received = 0
    with http.stream("GET", f"/versions/{report.id}/visualizations/{number}") as answer:
        assert answer.status_code == 200 and "sandbox" in answer.headers["content-security-policy"]
        for chunk in answer.iter_bytes():
            received += len(chunk)
    grown = (_proc(proc.pid, "status", "VmHWM") << 10) - before
    assert received == BIG
    assert grown < 64 << 20, f"peak memory grew by {grown >> 20} MiB for a {BIG >> 20} MiB visualization"


def test_head_reads_no_payload(home, server):
    """HEAD on a download, an archive or a visualization reads (next to)
    nothing of the payload; GET of the same file reads all of it, which
    shows the measure sees the reads."""
    proc, http = server
    version, report = home["file"], home["report"]
    number = next(i for i, v in enumerate(report.visualizations) if v["kind"] == "html")
    for path in [f"/versions/{report.id}/visualizations/{number}", f"/versions/{version.id}/files/weights.bin",
                 f"/versions/{version.id}/archive"]:
        before = _proc(proc.pid, "io", "rchar")
        answer = http.head(path)
        read = _proc(proc.pid, "io", "rchar") - before
        assert answer.status_code == 200 and answer.content == b"", path
        assert read < 4 << 20, f"HEAD {path} read {read >> 20} MiB"
    assert http.head(f"/versions/{version.id}/files/weights.bin").headers["content-length"] == str(BIG)
    before = _proc(proc.pid, "io", "rchar")
    start = time.monotonic()
    with http.stream("GET", f"/versions/{version.id}/files/weights.bin") as answer:
        received = sum(len(chunk) for chunk in answer.iter_bytes())
    assert received == BIG and _proc(proc.pid, "io", "rchar") - before >= BIG, time.monotonic() - start


def test_open_puts_no_token_on_a_command_line(home, tmp_path):
    """`--open` hands the browser a file only the owner can read, which
    leads on to the address with the token: the browser's command line
    (visible in `ps`) holds none. A token the user gave is used too."""
    record = tmp_path / "argv"
    browser = tmp_path / "browser"
    browser.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > {record}\n")
    browser.chmod(0o755)
    env = {**home["env"], "BROWSER": str(browser), "ARTIFACTFS_UI_TOKEN": TOKEN}
    proc, url = start_ui(env, "--open")
    try:
        deadline = time.monotonic() + 30
        while not record.exists() or not record.read_text():
            assert time.monotonic() < deadline, "the browser was not started"
            time.sleep(0.05)
        argv = record.read_text().strip()
        assert TOKEN not in argv and argv.startswith("file://")
        page = Path(argv.removeprefix("file://"))
        assert (page.stat().st_mode & 0o777) == 0o600 and f"{split_url(url)[0]}/?token={TOKEN}" in page.read_text()
    finally:
        stop(proc)
    assert not page.exists()  # removed when the server stops
