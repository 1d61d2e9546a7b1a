"""The web view in a real browser: Debian's headless Chromium driven by
Playwright (never a downloaded browser), against `artifactfs ui` started as
a user starts it, on the index the example pipeline leaves in a fresh
ARTIFACTFS_HOME. Clicks through pipeline -> run -> step -> output ->
lineage -> upstream artifact checking each page against the index,
downloads a file, keeps hostile names inert, refuses `../`, requires the
token off loopback, follows a running run live, and writes the README's
screenshots (docs/screenshots/, with ARTIFACTFS_SCREENSHOTS=1)."""

import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from artifactfs.web.security import machine_name

from web_helpers import XSS_NAME, XSS_NOTE, home_env, split_url, start_ui, stop

REPO = Path(__file__).resolve().parent.parent
#: The README's screenshots are refreshed only on request
#: (ARTIFACTFS_SCREENSHOTS=1): a test run must leave the checkout as it found it.
SHOTS = (REPO / "docs" / "screenshots" if os.environ.get("ARTIFACTFS_SCREENSHOTS") == "1"
         else Path(tempfile.gettempdir()) / f"artifactfs-screenshots-{os.getpid()}")
CHROMIUM = "/usr/bin/chromium"
#: A foreign site's name that DNS rebinding has pointed at this machine.
REBOUND = "rebound.test"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-proxy-server",
                 f"--host-resolver-rules=MAP {REBOUND} 127.0.0.1"]


def _missing(reason: str):
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so a missing prerequisite fails)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A fresh home holding two runs of the example pipeline (the second
    cached) and a version with a hostile name and metadata."""
    folder = tmp_path_factory.mktemp("web-browser-home")
    env = home_env(folder)
    for _ in range(2):
        subprocess.run([sys.executable, str(REPO / "examples" / "training_pipeline.py")], env=env, check=True,
                       capture_output=True, timeout=300)
    hostile = f"from artifactfs import save_artifact; save_artifact([1], {XSS_NAME!r}, metadata={{'note': {XSS_NOTE!r}}})"
    subprocess.run([sys.executable, "-c", hostile], env=env, check=True, capture_output=True, timeout=120)
    failing = textwrap.dedent("""
        from artifactfs import pipeline, step

        @step
        def broken() -> int:
            raise RuntimeError("disk on fire")

        @pipeline
        def fragile():
            broken()

        try:
            fragile()
        except RuntimeError:
            pass
    """)
    subprocess.run([sys.executable, "-c", failing], env=env, check=True, capture_output=True, timeout=120)
    scores = ("from artifactfs import save_artifact; save_artifact([1], 'scores', metadata={'f1': 0.5, 'k': 1}); "
              "save_artifact([1, 2], 'scores', metadata={'f1': 0.7, 'k': 1})")
    subprocess.run([sys.executable, "-c", scores], env=env, check=True, capture_output=True, timeout=120)
    many = tmp_path_factory.mktemp("many-files")
    for i in range(MANY_FILES):
        (many / f"shard-{i:04d}.bin").write_bytes(b"%d" % i)
    register = f"from artifactfs import register_artifact; register_artifact({str(many)!r}, 'shards', copy=True)"
    subprocess.run([sys.executable, "-c", register], env=env, check=True, capture_output=True, timeout=120)
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


MANY_FILES = 205  # more than the version page's 200 files per page


@pytest.fixture(scope="module")
def ui_token(home, browser):
    """`artifactfs ui` as a user starts it (a token is generated), its base
    address and token; the browser opened the printed address once, as the
    user does, and holds the cookie from then on."""
    proc, url = start_ui(home)
    try:
        base, token = split_url(url)
        assert token, url
        tab = browser.new_page()
        assert tab.goto(url).status == 200 and tab.url == base + "/"
        tab.close()
        yield base, token
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def ui(ui_token):
    return ui_token[0]


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


def test_dot_dot_in_a_file_path_is_404(ui_token, page):
    ui, token = ui_token
    data = index_runs()[0].steps["load_data"].outputs["raw_data"]
    host, port = ui.removeprefix("http://").split(":")
    for path in [f"/versions/{data.id}/files/../../../../etc/passwd", f"/versions/{data.id}/files/../{data.files[0].path}"]:
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        # sent as written: browsers would normalize the dots away
        connection.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        assert connection.getresponse().status == 404, path
        connection.close()
    answer = page.goto(f"{ui}/versions/{data.id}/files/%2e%2e/%2e%2e/etc/passwd")
    assert answer.status == 404 and "404" in page.locator("h1").inner_text()


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0"])
def test_token_required_on_loopback_too(home, page, host):
    """Any user of the machine reaches a loopback port: a token by default
    everywhere, carried once in the printed address, then by a cookie named
    after the port (this server's, not the module's other server's)."""
    proc, url = start_ui(home, "--host", host)
    try:
        base, token = split_url(url)
        if host == "0.0.0.0":  # printed under this machine's name for teammates; read here by its number
            assert base.startswith(f"http://{machine_name()}:")
            base, url = (text.replace(f"//{machine_name()}:", "//127.0.0.1:", 1) for text in (base, url))
        assert token and base.startswith("http://127.0.0.1:")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(base + "/api/v1/runs", timeout=30)
        assert refused.value.code == 401 and json.load(refused.value)["status"] == 401
        request = urllib.request.Request(base + "/api/v1/runs", headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert answer.status == 200 and len(json.load(answer)["items"]) == 3  # two training runs, one failed
        assert page.goto(base + "/runs").status == 401 and "401" in page.locator("h1").inner_text()
        assert page.goto(url).status == 200 and page.url == base + "/"  # the cookie is set, the token gone
        assert token not in page.evaluate("location.href")
        assert page.goto(base + "/runs").status == 200
        port = base.rsplit(":", 1)[1]
        cookies = {c["name"]: c for c in page.context.cookies(base)}
        mine = cookies[f"artifactfs_token_{port}"]
        assert mine["httpOnly"] and mine["sameSite"] == "Strict" and mine["value"] != token
    finally:
        stop(proc)


def test_a_rebound_host_name_reads_nothing(home, page):
    """DNS rebinding: a foreign name resolving to 127.0.0.1 (Chromium maps
    it) reaches the port, but the server answers to its own names only, even
    without a token; a name given with --host-name is answered."""
    proc, url = start_ui(home, "--no-token")
    try:
        base, token = split_url(url)
        assert token is None
        port = base.rsplit(":", 1)[1]
        assert page.goto(base + "/api/v1/stores").status == 200  # no token: open to its own names
        assert page.goto(f"http://localhost:{port}/api/v1/stores").status == 200
        for path in ["/api/v1/stores", "/"]:
            answer = page.goto(f"http://{REBOUND}:{port}{path}")
            assert answer.status == 421, path
            assert "DNS rebinding" in page.locator("body").inner_text() and "store" not in answer.text().lower()
    finally:
        stop(proc)
    proc, url = start_ui(home, "--no-token", "--host-name", REBOUND)
    try:
        port = split_url(url)[0].rsplit(":", 1)[1]
        assert page.goto(f"http://{REBOUND}:{port}/api/v1/stores").status == 200
    finally:
        stop(proc)


def test_file_pager_reaches_every_file(ui, page):
    """The version page lists 200 files a page; Next page shows the rest."""
    from artifactfs import Client

    shards = Client().get_artifact_version("shards")
    page.goto(f"{ui}/versions/{shards.id}")
    first = page.locator("table.files tbody tr td:first-child").all_inner_texts()
    assert len(first) == 200 and first[0] == "shard-0000.bin"
    page.click("nav.pager a.next")
    rest = page.locator("table.files tbody tr td:first-child").all_inner_texts()
    assert rest == [f"shard-{i:04d}.bin" for i in range(200, MANY_FILES)]
    assert page.locator("nav.pager a.next").count() == 0


def test_runs_filter_sort_and_show_errors(ui, page):
    """The runs list: a failed run shows its error; filter by status and
    pipeline; a click on a column header sorts by it, a second reverses."""
    page.goto(f"{ui}/runs")
    failed = page.locator("table.runs tbody tr", has_text="fragile")
    assert failed.locator(".run-error").inner_text() == "broken: RuntimeError: disk on fire"
    page.select_option("select[name=status]", "failed")
    page.click("form.runs-filter button")
    assert page.locator("table.runs tbody tr").count() == 1 and "status=failed" in page.url
    page.goto(f"{ui}/runs")
    page.fill("input[name=pipeline]", "training_pipeline")
    page.click("form.runs-filter button")
    assert page.locator("table.runs tbody tr").count() == 2
    page.goto(f"{ui}/runs")
    page.click("th a[data-sort=steps]")
    steps = [int(t) for t in page.locator("table.runs tbody tr td:nth-child(6)").all_inner_texts()]
    assert steps == sorted(steps, reverse=True) and steps[0] > steps[-1]
    page.click("th a[data-sort=steps]")
    assert [int(t) for t in page.locator("table.runs tbody tr td:nth-child(6)").all_inner_texts()] == steps[::-1]
    page.click("th a[data-sort=name]")
    names = page.locator("table.runs tbody tr td:first-child").all_inner_texts()
    assert names == sorted(names, reverse=True)


def test_compare_versions_and_runs(ui, page):
    """From a version, compare with the previous one: the metadata that
    differs is marked, the same is not, and both files are listed; from a
    run, compare with the previous run of its pipeline."""
    page.goto(f"{ui}/artifacts/scores/versions/latest")
    page.click("a.compare")
    assert "/compare/versions?" in page.url
    assert page.locator("table.metadata-compare tr[data-key=f1]").get_attribute("data-state") == "changed"
    assert page.locator("table.metadata-compare tr[data-key=k]").get_attribute("data-state") == "same"
    cells = page.locator("table.metadata-compare tr[data-key=f1] td").all_inner_texts()
    assert cells == ["0.5", "0.7"]
    changed = page.locator("table.metadata-compare tr.diff-changed td").first
    assert changed.evaluate("e => getComputedStyle(e).backgroundColor") != \
        page.locator("table.metadata-compare tr.diff-same td").first.evaluate("e => getComputedStyle(e).backgroundColor")
    assert page.locator("table.files-compare tbody tr").count() >= 1
    first, second = index_runs()
    page.goto(f"{ui}/runs/{second.id}")
    page.click("a.compare")
    assert page.url.endswith(f"/compare/runs?a={first.id}&b={second.id}")
    steps = page.locator("table.steps-compare tr.step").evaluate_all("rows => rows.map(r => r.dataset.step)")
    assert steps == list(first.steps)
    assert page.locator("table.steps-compare tr.step[data-state=changed]").count() == len(first.steps)  # cached
    assert page.locator("table.steps-compare tr.output[data-state=changed]").count() == 0  # the same versions


def test_archive_download_and_latest_link(ui, page):
    """`/artifacts/<name>/versions/latest` opens the newest version; its
    "Download all files" gives one tar of every manifest file."""
    import tarfile

    from artifactfs import Client

    newest = Client().get_artifact_version("model_weights")
    page.goto(f"{ui}/artifacts/model_weights/versions/latest")
    assert page.url == f"{ui}/versions/{newest.id}"
    with page.expect_download() as info:
        page.click("a.archive")
    assert info.value.suggested_filename == f"model_weights-{newest.version}.tar"
    with tarfile.open(info.value.path()) as archive:
        members = {m.name: archive.extractfile(m).read() for m in archive.getmembers()}
    store = newest.open_store()
    assert members == {f"model_weights-{newest.version}/{f.path}": store.read_bytes(newest.file_uri(f.path))
                       for f in newest.files}
    shards = Client().get_artifact_version("shards")
    page.goto(f"{ui}/artifacts/shards/versions/latest")
    with page.expect_download() as info:
        page.click("a.archive")
    with tarfile.open(info.value.path()) as archive:
        assert len(archive.getnames()) == MANY_FILES  # more than one manifest page


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


BIG_STEPS, SIBLINGS = 1000, 100
BIG_HOME = textwrap.dedent("""
    import logging, sys
    sys.path.insert(0, sys.argv[1])
    from sqlalchemy import select
    from artifactfs import pipeline, step
    from artifactfs.index import get_index
    from artifactfs.index import pipelines as rows
    from artifactfs.index.models import Artifact, RunStatus, VersionRow
    from bulk_rows import insert_live_versions

    @step
    def hostile() -> int:
        print("<script>alert('stdout')</script>")
        logging.getLogger("user").warning("<img src=x onerror=alert('logging')>")
        return 1

    @pipeline(quiet=True)
    def attack():
        hostile()

    attack()
    steps, siblings = int(sys.argv[2]), int(sys.argv[3])
    index = get_index()
    insert_live_versions(index, 1, steps, ("data.json",), prefix="chain")
    with index.write() as session:
        ids = list(session.scalars(select(VersionRow.id).join(Artifact, Artifact.id == VersionRow.artifact_id)
                                   .where(Artifact.name.like("chain%")).order_by(VersionRow.version_number)))
        run = rows.create_run(session, "big", "big-run", {})
        for k in range(steps):
            chain = k < steps - siblings
            made = rows.create_step_run(session, run.id, f"step-{k:04d}" if chain else f"sibling-{k:04d}", "c",
                                        None, {}, status=RunStatus.COMPLETED)
            links = [rows.Link(ids[k], "output", "out")]
            if k:  # a chain, then siblings that all read the first step's output
                links.append(rows.Link(ids[k - 1 if chain else 0], "input", "in"))
            rows.link_all(session, made.id, links)
        rows.finish(session, run, RunStatus.COMPLETED)
        rows.create_run(session, "ghost", "ghost-run", {})  # left running: this process ends now
""")


@pytest.fixture(scope="module")
def big_ui(tmp_path_factory, browser):
    """Another home: a run of 1,000 steps (100 of them siblings), a run whose
    process is gone, and a step whose output is hostile; `artifactfs ui` on
    it, the browser holding its cookie."""
    folder = tmp_path_factory.mktemp("web-big-home")
    env = home_env(folder)
    subprocess.run([sys.executable, "-c", BIG_HOME, str(REPO / "tests"), str(BIG_STEPS), str(SIBLINGS)], env=env,
                   check=True, capture_output=True, timeout=600)
    proc, url = start_ui(env)
    try:
        tab = browser.new_page()
        assert tab.goto(url).status == 200
        tab.close()
        yield split_url(url)[0]
    finally:
        stop(proc)


def _node_box(page, node_id: str) -> dict:
    return page.locator(f"svg.graph a.node[data-node='{node_id}'] rect").bounding_box()


def test_a_thousand_step_graph_is_readable_fits_and_follows_the_pointer(big_ui, page):
    """A run of 1,000 steps opens at reading size on its start; fit shows
    the whole graph (the 100 siblings too); a zoom keeps the point under the
    pointer still; a drag moves the graph exactly as far as the pointer."""
    page.goto(f"{big_ui}/runs")
    page.click("table.runs a:text-is('big-run')")
    page.wait_for_load_state("load")
    svg, box = page.locator("svg.graph"), page.locator(".graph-box")
    assert page.locator("svg.graph a.node").count() == 2 * BIG_STEPS  # each step and its output
    assert float(box.get_attribute("data-scale")) == 1.0  # opens readable, not a speck
    first = page.locator("svg.graph a.node.step").first.locator("rect")
    assert first.is_visible() and first.bounding_box()["width"] > 150

    page.click("button[data-zoom='fit']")
    frame = svg.bounding_box()
    ends = page.locator("svg.graph a.node").evaluate_all(
        "nodes => nodes.filter(n => /sibling|step-0000|step-0899/.test(n.textContent)).map(n => n.dataset.node)")
    assert len(ends) == SIBLINGS + 2
    for node in ends:  # the first and last steps of the chain and every sibling are inside the picture
        rect = _node_box(page, node)
        assert frame["x"] - 1 <= rect["x"] and rect["x"] + rect["width"] <= frame["x"] + frame["width"] + 1, node
        assert frame["y"] - 1 <= rect["y"] and rect["y"] + rect["height"] <= frame["y"] + frame["height"] + 1, node

    page.click("button[data-zoom='fit']")
    for _ in range(80):  # zoom in on the first sibling with the wheel
        target = _node_box(page, _first_sibling(page))
        cx, cy = target["x"] + target["width"] / 2, target["y"] + target["height"] / 2
        page.mouse.move(cx, cy)
        page.mouse.wheel(0, -100)
        page.wait_for_timeout(20)
        after = _node_box(page, _first_sibling(page))
        assert abs(after["x"] + after["width"] / 2 - cx) < 2 and abs(after["y"] + after["height"] / 2 - cy) < 2
        if after["width"] >= 190:
            break
    assert _node_box(page, _first_sibling(page))["width"] >= 190  # zoomed from the whole graph to reading size

    before = _node_box(page, _first_sibling(page))
    page.mouse.move(frame["x"] + 30, frame["y"] + 30)
    page.mouse.down()
    page.mouse.move(frame["x"] + 130, frame["y"] + 80, steps=8)
    page.mouse.up()
    moved = _node_box(page, _first_sibling(page))
    assert abs(moved["x"] - before["x"] - 100) < 1.5 and abs(moved["y"] - before["y"] - 50) < 1.5
    assert not page.dialogs


def _first_sibling(page) -> str:
    return page.locator("svg.graph a.node.step", has_text="sibling").first.get_attribute("data-node")


def test_a_crashed_run_shows_crashed_and_stops_polling(big_ui, page):
    asked = []
    page.on("request", lambda request: asked.append(request.url) if "/progress" in request.url else None)
    page.goto(f"{big_ui}/runs?status=crashed")
    assert page.locator("table.runs tbody tr").count() == 1
    page.click("table.runs a:text-is('ghost-run')")
    assert "crashed" in page.locator("h1 .badge").inner_text() and page.locator(".crashed-note").is_visible()
    page.wait_for_timeout(2000)
    assert asked == []  # no polling of a run that will never finish


def test_step_logs_render_as_text(big_ui, page):
    page.goto(f"{big_ui}/pipelines/attack")
    page.click("table.runs tbody a >> nth=0")
    page.click("a.step-logs")
    log = page.locator("pre.log").inner_text()
    assert "<script>alert('stdout')</script>" in log and "<img src=x onerror=alert('logging')>" in log
    page.wait_for_timeout(300)
    assert page.dialogs == [] and page.locator("main img").count() == 0


PHONE = {"width": 390, "height": 844}


def test_pages_fit_a_phone_screen(ui, big_ui, page):
    """At 390 px the page body never scrolls sideways (wide tables scroll in their own box)."""
    first, second = index_runs()
    train = first.steps["train"]
    weights = train.outputs["model_weights"]
    paths = [f"{ui}{p}" for p in [
        "/", "/pipelines", "/pipelines/training_pipeline", "/runs", f"/runs/{first.id}", f"/steps/{train.id}",
        "/artifacts", "/artifacts/model_weights", f"/versions/{weights.id}", f"/versions/{weights.id}/lineage",
        "/search?q=a", "/stores", f"/compare/runs?a={first.id}&b={second.id}",
        f"/compare/versions?a={weights.id}&b={second.steps['train'].outputs['model_weights'].id}"]]
    paths.append(f"{big_ui}/runs")
    page.set_viewport_size(PHONE)
    for url in paths:
        assert page.goto(url).status == 200, url
        wide = page.evaluate("document.documentElement.scrollWidth")
        assert wide <= PHONE["width"], f"{url}: the page is {wide} px wide"
    page.goto(f"{ui}/runs")
    table = page.locator("table.runs")
    assert table.evaluate("t => t.scrollWidth > t.clientWidth && getComputedStyle(t).overflowX === 'auto'")
    page.goto(f"{big_ui}/runs")
    page.click("table.runs a:text-is('big-run')")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert page.locator("svg.graph").bounding_box()["width"] <= PHONE["width"]
