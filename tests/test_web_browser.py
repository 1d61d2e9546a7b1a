"""The web view in a real browser: Debian's headless Chromium driven by
Playwright (never a downloaded browser), against `artifactfs ui` started as
a user starts it, on the index the example pipeline leaves in a fresh
ARTIFACTFS_HOME. Clicks through pipeline -> run -> step -> output ->
lineage -> upstream artifact checking each page against the index,
downloads a file, keeps hostile names inert, refuses `../`, requires the
token off loopback, follows a running run live, and writes the README's
screenshots (docs/screenshots/)."""

import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from web_helpers import XSS_NAME, XSS_NOTE

REPO = Path(__file__).resolve().parent.parent
SHOTS = REPO / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
CLI = [sys.executable, "-c", "from artifactfs.cli.main import main; main()"]
URL_LINE = re.compile(r"(http://\S+)")


def _missing(reason: str):
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so a missing prerequisite fails)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A fresh home holding two runs of the example pipeline (the second
    cached) and a version with a hostile name and metadata."""
    folder = tmp_path_factory.mktemp("web-browser-home")
    env = {**os.environ, "ARTIFACTFS_HOME": str(folder)}
    for name in ("ARTIFACTFS_INDEX_URL", "ARTIFACTFS_STORE", "ARTIFACTFS_UI_TOKEN"):
        env.pop(name, None)
    for _ in range(2):
        subprocess.run([sys.executable, str(REPO / "examples" / "training_pipeline.py")], env=env, check=True,
                       capture_output=True, timeout=300)
    hostile = f"from artifactfs import save_artifact; save_artifact([1], {XSS_NAME!r}, metadata={{'note': {XSS_NOTE!r}}})"
    subprocess.run([sys.executable, "-c", hostile], env=env, check=True, capture_output=True, timeout=120)
    with pytest.MonkeyPatch.context() as mp:  # this process reads the same index to check the pages
        for name, value in env.items():
            if name.startswith("ARTIFACTFS"):
                mp.setenv(name, value)
        for name in ("ARTIFACTFS_INDEX_URL", "ARTIFACTFS_STORE"):
            mp.delenv(name, raising=False)
        from artifactfs.index import reset_index_cache

        reset_index_cache()
        yield env
        reset_index_cache()


def start_ui(env: dict, *args: str) -> tuple[subprocess.Popen, str]:
    """`artifactfs ui ARGS --port 0` in a subprocess, and the address it prints."""
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


@pytest.fixture(scope="module")
def ui(home):
    proc, url = start_ui(home)
    try:
        yield url.rstrip("/")
    finally:
        stop(proc)


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the session, with a fresh profile."""
    if not Path(CHROMIUM).exists():
        _missing(f"{CHROMIUM} is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed (pip install 'artifactfs[test]')")
    profile = Path(os.environ.get("TMPDIR", "/tmp")) / f"artifactfs-chromium-{uuid.uuid4().hex[:8]}"
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 860}, accept_downloads=True)
        try:
            yield context
        finally:
            context.close()
            shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def page(browser):
    """A tab that records every dialog (alert, confirm, ...) it is shown."""
    tab = browser.new_page()
    tab.dialogs = []

    def on_dialog(dialog):
        tab.dialogs.append(dialog.message)
        dialog.dismiss()

    tab.on("dialog", on_dialog)
    tab.set_default_timeout(15_000)
    yield tab
    tab.close()


def index_runs():
    from artifactfs import Client

    return list(reversed(Client().list_pipeline_runs("training_pipeline")))  # oldest first


def test_click_through_pipeline_run_step_output_lineage(ui, page):
    first, second = index_runs()
    page.goto(ui + "/")
    page.click("header nav >> text=Pipelines")
    page.click("table.pipelines >> text=training_pipeline")
    assert page.locator("table.runs tbody tr").count() == 2
    assert page.locator("table.runs tbody tr").first.locator("td").first.inner_text() == second.name  # newest first
    page.click(f"table.runs >> text={first.name}")

    assert first.name in page.locator("h1").inner_text() and "completed" in page.locator("h1").inner_text()
    shown = page.locator("tr.step-row").evaluate_all("rows => rows.map(r => r.dataset.step)")
    assert shown == list(first.steps)  # load_data, split, train, evaluate
    assert page.locator("svg.graph a.node").count() == len(first.steps) + 5  # steps + their 5 versions
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "run.png"), full_page=True)

    page.click("table.steps a:text-is('train')")
    train = first.steps["train"]
    assert page.url.endswith(f"/steps/{train.id}")
    outputs = page.locator("section:has(h2:text-is('Outputs')) li").all_inner_texts()
    assert outputs == [f"{name} {v.name}:{v.version}" for name, v in train.outputs.items()]
    weights = train.outputs["model_weights"]
    page.click(f"section:has(h2:text-is('Outputs')) a[href='/versions/{weights.id}']")

    assert page.locator("h1 .title-name").inner_text() == "model_weights:1"
    table = page.locator("table.kv").first.inner_text()
    for key, value in weights.metadata.items():
        assert key in table and str(value[0] if isinstance(value, (list, tuple)) else value) in table
    assert page.locator("#mount-path").inner_text() == "<mountpoint>/artifacts/model_weights/1/"
    page.click("text=Lineage graph")

    assert page.url.endswith(f"/versions/{weights.id}/lineage")
    from artifactfs.api.lineage import lineage_graph

    expected = lineage_graph(weights, depth=2)
    assert page.locator("svg.graph a.node").count() == len(expected.nodes)
    assert page.locator("svg.graph a.node.root").get_attribute("data-node") == f"v:{weights.id}"
    page.screenshot(path=str(SHOTS / "lineage.png"), full_page=True)
    upstream = train.inputs["train_data"]
    page.click(f"svg.graph a.node[data-node='v:{upstream.id}']")

    page.wait_for_url(f"**/versions/{upstream.id}")
    assert "train_data" in page.locator("h1").inner_text()
    assert not page.dialogs


def test_graph_pans_and_zooms(ui, page):
    weights = index_runs()[0].steps["train"].outputs["model_weights"]
    page.goto(f"{ui}/versions/{weights.id}/lineage")
    svg = page.locator("svg.graph")
    before = svg.get_attribute("viewBox")
    box = svg.bounding_box()
    page.mouse.move(box["x"] + 40, box["y"] + box["height"] - 20)
    page.mouse.down()
    page.mouse.move(box["x"] + 240, box["y"] + box["height"] - 60, steps=5)
    page.mouse.up()
    panned = [float(n) for n in svg.get_attribute("viewBox").split()]
    start = [float(n) for n in before.split()]
    assert panned[:2] != start[:2] and panned[2:] == start[2:]  # moved, same size
    page.click("button[data-zoom='in']")
    assert float(svg.get_attribute("viewBox").split()[2]) < float(before.split()[2])
    assert page.url.endswith("/lineage")  # a drag is not a click on a node


def test_download_gives_the_stored_bytes(ui, page):
    data = index_runs()[0].steps["load_data"].outputs["raw_data"]
    page.goto(f"{ui}/versions/{data.id}")
    with page.expect_download() as info:
        page.click("a.download")
    got = Path(info.value.path()).read_bytes()
    entry = data.files[0]
    assert info.value.suggested_filename == entry.path
    assert got == data.open_store().read_bytes(data.file_uri(entry.path)) and len(got) == entry.size


def test_hostile_names_render_as_text(ui, page):
    page.evaluate("alert('probe')")  # the listener does see dialogs
    assert page.dialogs == ["probe"]
    page.dialogs.clear()
    page.goto(f"{ui}/artifacts")
    assert XSS_NAME in page.locator("table.artifacts").inner_text()
    page.click(f"table.artifacts a:text-is('{XSS_NAME}')")
    page.click("table.versions a >> nth=0")
    assert XSS_NAME in page.locator("h1").inner_text()
    assert XSS_NOTE in page.locator("table.kv").first.inner_text()
    page.goto(f"{ui}/search?q=onerror")
    assert XSS_NAME in page.locator("main").inner_text()
    page.wait_for_timeout(300)  # an onerror would have fired by now
    assert page.dialogs == [] and page.locator("main img").count() == 0


def test_dot_dot_in_a_file_path_is_404(ui, page):
    data = index_runs()[0].steps["load_data"].outputs["raw_data"]
    host, port = ui.removeprefix("http://").split(":")
    for path in [f"/versions/{data.id}/files/../../../../etc/passwd", f"/versions/{data.id}/files/../{data.files[0].path}"]:
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        connection.request("GET", path)  # sent as written: browsers would normalize the dots away
        assert connection.getresponse().status == 404, path
        connection.close()
    answer = page.goto(f"{ui}/versions/{data.id}/files/%2e%2e/%2e%2e/etc/passwd")
    assert answer.status == 404 and "404" in page.locator("h1").inner_text()


def test_token_required_off_loopback(home, page):
    proc, url = start_ui(home, "--host", "0.0.0.0")
    try:
        token = url.split("?token=")[1]
        base = url.split("?")[0].rstrip("/")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(base + "/api/v1/runs", timeout=30)
        assert refused.value.code == 401
        request = urllib.request.Request(base + "/api/v1/runs", headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert answer.status == 200 and len(json.load(answer)["items"]) == 2
        assert page.goto(url).status == 200 and page.url == base + "/"  # the cookie is set, the token gone
        assert page.goto(base + "/runs").status == 200
    finally:
        stop(proc)


def test_running_run_refreshes_live(ui, page):
    from artifactfs.index import get_index
    from artifactfs.index import pipelines as rows
    from artifactfs.index.models import PipelineRun, RunStatus, StepRun

    with get_index().write() as session:
        run = rows.create_run(session, "live_pipeline", f"live-{uuid.uuid4().hex[:8]}", {})
        first = rows.create_step_run(session, run.id, "first", "code", None, {})
        run_id, run_uuid, first_id = run.id, run.uuid, first.id
    page.goto(f"{ui}/runs/{run_uuid}")
    assert page.locator("tr.step-row").count() == 1 and "running" in page.locator("h1").inner_text()
    with get_index().write() as session:
        rows.finish(session, session.get(StepRun, first_id), RunStatus.COMPLETED)
        rows.create_step_run(session, run_id, "second", "code", None, {})
    page.wait_for_selector("tr.step-row[data-step='second']", timeout=10_000)
    assert "completed" in page.locator("tr.step-row[data-step='first']").inner_text()
    with get_index().write() as session:
        second = session.query(StepRun).filter_by(run_id=run_id, name="second").one()
        rows.finish(session, second, RunStatus.COMPLETED)
        rows.finish(session, session.get(PipelineRun, run_id), RunStatus.COMPLETED)
    page.wait_for_selector("h1 .badge.status-completed", timeout=10_000)
    assert page.locator("svg.graph a.node").count() == 2
