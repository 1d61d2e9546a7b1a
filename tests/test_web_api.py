"""The web view's JSON API and pages over HTTP, through a real uvicorn
server, on a seeded index in SQLite and in PostgreSQL: what each answer
holds is checked against the index, pages chain without gaps, downloads are
confined to the manifest, nothing writes, secrets and hostile names stay
harmless, the token is required when set."""

import http.client as http_client
import uuid

import pytest
from sqlalchemy import func, select

import web_helpers
from artifactfs.index import get_generation, get_index, reset_index_cache
from artifactfs.index import pipelines as pipeline_rows
from artifactfs.index.models import Artifact, VersionRow, PipelineRun, RunStatus, StepRun, VersionFile
from artifactfs.web import WebConfig, create_app
from artifactfs.web.security import mask_url
from web_helpers import XSS_NAME, XSS_NOTE, client, serving

pytest_plugins = ["index_fixtures"]

TOKEN = "test-token-0123456789abcdef"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def seeded(request, tmp_path_factory):
    """A seeded index (one per backend for the whole module) and a server on it."""
    with pytest.MonkeyPatch.context() as mp:
        home = tmp_path_factory.mktemp("web-home")
        mp.setenv("ARTIFACTFS_HOME", str(home))
        mp.delenv("ARTIFACTFS_STORE", raising=False)
        mp.delenv("ARTIFACTFS_INDEX_URL", raising=False)
        if request.param == "postgres":
            server = request.getfixturevalue("postgres_server")
            mp.setenv("ARTIFACTFS_INDEX_URL", server.create_database(f"web_{uuid.uuid4().hex[:12]}"))
        reset_index_cache()
        made = web_helpers.seed(tmp_path_factory.mktemp("files"))
        with serving(create_app(WebConfig(mount_root="/mnt/afs"))) as base, client(base) as http:
            yield made, http
        reset_index_cache()


def walk_pages(http, path, inside=None, **params):
    """Every item of a paged list (the member ``inside`` of the answer), following the cursors."""
    items, cursor, pages = [], None, 0
    while True:
        answer = http.get(path, params={**params, **({"cursor": cursor} if cursor else {})})
        assert answer.status_code == 200, answer.text
        body = answer.json()[inside] if inside else answer.json()
        items += body["items"]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return items, pages


def raw_get(http, path: str) -> int:
    """The status of a GET whose request line is sent exactly as given."""
    connection = http_client.HTTPConnection(http.base_url.host, http.base_url.port, timeout=30)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    finally:
        connection.close()


def test_overview_counts_are_the_index(seeded):
    _, http = seeded
    overview = http.get("/api/v1/overview").json()["overview"]
    with get_index().read() as session:
        assert overview["runs"] == session.scalar(select(func.count()).select_from(PipelineRun))
        assert overview["versions"] == session.scalar(
            select(func.count()).select_from(VersionRow).where(VersionRow.state == "live"))
        assert overview["generation"] == get_generation(session)


def test_pipeline_runs_and_steps(seeded):
    made, http = seeded
    pipelines = {p["name"]: p for p in http.get("/api/v1/pipelines").json()["items"]}
    assert pipelines["web_pipe"]["runs"] == 2 and pipelines["web_pipe"]["last_run"] == made["second"].name
    runs = http.get("/api/v1/pipelines/web_pipe/runs").json()["runs"]["items"]
    assert [r["name"] for r in runs] == [made["second"].name, made["first"].name]  # newest first
    assert runs[0]["cached_steps"] == 3 and runs[1]["cached_steps"] == 0 and runs[1]["steps"] == 3
    assert runs[1]["duration_s"] >= 0 and runs[1]["status"] == "completed"

    detail = http.get(f"/api/v1/runs/{made['first'].id}").json()
    assert detail == http.get(f"/api/v1/runs/{made['first'].name}").json()  # by id or by name
    assert detail["parameters"] == {"n": 5}
    steps = {s["name"]: s for s in detail["steps"]}
    assert list(steps) == ["make_numbers", "double", "summarize"]
    assert steps["make_numbers"]["parameters"] == {"n": 5}
    produced = made["first"].steps["double"].outputs["doubled"]
    assert steps["double"]["outputs"][0]["version"]["id"] == produced.id
    assert steps["summarize"]["inputs"] == [{"name": "doubled", "version": steps["double"]["outputs"][0]["version"]}]
    cached = {s["name"]: s for s in http.get(f"/api/v1/runs/{made['second'].id}").json()["steps"]}
    assert cached["double"]["status"] == "cached"
    assert cached["double"]["cached_from"]["id"] == made["first"].steps["double"].id

    one = http.get(f"/api/v1/steps/{made['first'].steps['double'].id}").json()
    assert one["run"] == made["first"].name and one["outputs"] == steps["double"]["outputs"]
    assert http.get("/api/v1/runs/no-such-run").status_code == 404
    assert http.get("/api/v1/pipelines/nope/runs").status_code == 404


def test_failed_step_shows_its_error(seeded):
    _, http = seeded
    failed = http.get("/api/v1/pipelines/failing_pipe/runs").json()["runs"]["items"][0]
    assert failed["status"] == "failed" and failed["failed_steps"] == 1
    step = next(s for s in http.get(f"/api/v1/runs/{failed['id']}").json()["steps"] if s["name"] == "explode")
    assert step["metadata"]["error"] == "ValueError: boom <b>bold</b>"
    assert "raise ValueError" in step["metadata"]["traceback"]
    page = http.get(f"/steps/{step['id']}").text
    assert "boom &lt;b&gt;bold&lt;/b&gt;" in page and "<b>bold</b>" not in page


def test_keyset_pages_chain_without_gaps(seeded):
    made, http = seeded
    versions, pages = walk_pages(http, "/api/v1/artifacts/notes/versions", "versions", limit=3)
    assert pages == 3 and [v["id"] for v in versions] == [v.id for v in reversed(made["notes"])]
    artifacts, pages = walk_pages(http, "/api/v1/artifacts", limit=2)
    with get_index().read() as session:
        names = sorted(session.scalars(select(Artifact.name)))
    assert [a["name"] for a in artifacts] == names and pages == (len(names) + 1) // 2
    runs, _ = walk_pages(http, "/api/v1/runs", limit=1)
    with get_index().read() as session:
        assert [r["name"] for r in runs] == list(session.scalars(select(PipelineRun.name)
                                                                 .order_by(PipelineRun.id.desc())))
    assert http.get("/api/v1/runs", params={"limit": 0}).status_code == 422
    for garbage in ["garbage", "-1", "1e9", "١٢"]:  # never page one again as if it were the next
        refused = http.get("/api/v1/runs", params={"cursor": garbage})
        assert refused.status_code == 400 and "not a cursor" in refused.json()["detail"], garbage


def test_version_page_data(seeded):
    made, http = seeded
    newest = made["notes"][-1]
    body = http.get(f"/api/v1/versions/{newest.id}").json()
    item = body["detail"]["version"]
    assert (item["artifact"], item["version"], item["tags"]) == ("notes", "7", ["dev"])
    assert item["metadata"] == {**newest.metadata}
    assert item["metadata"]["accuracy"] == pytest.approx(0.56) and item["store"] == "default"
    assert body["mount_path"] == "/mnt/afs/artifacts/notes/7/"
    assert body["python"] == "from artifactfs import load_artifact\n\nvalue = load_artifact('notes', version='7')\n"
    assert [f["path"] for f in body["files"]["items"]] == [f.path for f in newest.files]
    # The mount's own escaping: "%41" would read as "A" there.
    assert http.get(f"/api/v1/versions/{made['escaped'].id}").json()["mount_path"] == "/mnt/afs/artifacts/rate%2541/1/"

    doubled = made["first"].steps["double"].outputs["doubled"]
    detail = http.get(f"/api/v1/versions/{doubled.id}").json()["detail"]
    assert detail["version"]["producer"]["name"] == "double"
    assert {c["run"] for c in detail["consumers"]} == {made["first"].name, made["second"].name}
    assert detail["version"]["consumers"] == 2
    assert http.get(f"/api/v1/versions/{uuid.uuid4()}").status_code == 404
    assert http.get(f"/artifacts/notes/versions/3", follow_redirects=False).headers["location"] == \
        f"/versions/{made['notes'][2].id}"


def test_downloads_only_from_the_manifest(seeded):
    made, http = seeded
    version = made["registered"]
    files = {f["path"]: f for f in http.get(f"/api/v1/versions/{version.id}/files").json()["items"]}
    assert set(files) == {"a b.txt", "sub/dir/b.bin"}
    got = http.get(f"/versions/{version.id}/files/sub/dir/b.bin")
    assert got.status_code == 200 and got.content == bytes(range(256)) * 40
    assert got.headers["content-disposition"] == "attachment; filename*=UTF-8''b.bin"
    assert http.get(f"/versions/{version.id}/files/a%20b.txt").content == b"spaces in a name\n"
    other = made["notes"][0]
    for bad in ["%2e%2e/%2e%2e/etc/passwd", "sub%2f..%2fa b.txt", "sub/dir", "/etc/passwd",
                "sub/dir/b.bin%00", other.files[0].path]:
        assert http.get(f"/versions/{version.id}/files/{bad}").status_code == 404, bad
    # Raw request lines, which a client would normalize.
    for bad in ["../../../../etc/passwd", "sub/../a%20b.txt", "sub/dir/../dir/b.bin", "./a%20b.txt"]:
        assert raw_get(http, f"/versions/{version.id}/files/{bad}") == 404, bad
    assert raw_get(http, f"/versions/{version.id}/files/sub/dir/b.bin") == 200
    assert http.head(f"/versions/{version.id}/files/a%20b.txt").content == b""


def test_visualizations_are_sandboxed_and_escaped(seeded):
    made, http = seeded
    report = made["report"]
    kinds = [v["kind"] for v in http.get(f"/api/v1/versions/{report.id}").json()["detail"]["visualizations"]]
    assert kinds == ["html", "markdown", "csv", "json", "image"]
    raw = http.get(f"/versions/{report.id}/visualizations/0")
    assert raw.headers["content-type"].startswith("text/html")
    assert raw.headers["content-security-policy"].startswith("sandbox;")
    assert http.get(f"/versions/{report.id}/visualizations/4").headers["content-type"] == "image/png"
    assert http.get(f"/versions/{report.id}/visualizations/5").status_code == 404
    page = http.get(f"/versions/{report.id}").text
    assert f'<iframe sandbox="" src="/versions/{report.id}/visualizations/0"' in page
    assert "<h1>Quarterly &lt;results&gt;</h1>" in page  # markdown, rendered
    assert "&lt;b&gt;raw html&lt;/b&gt;" in page and 'href="javascript:' not in page
    assert "<td>&lt;i&gt;2&lt;/i&gt;</td>" in page  # csv as a table


def test_search_by_name_tag_and_metadata(seeded):
    made, http = seeded

    def versions(q):
        return [v["id"] for v in http.get("/api/v1/search", params={"q": q}).json()["versions"]["items"]]

    notes = made["notes"]
    assert versions("tag:prod") == [v.id for v in reversed(notes) if int(v.version) % 2 == 0]
    assert versions("epochs=3") == [notes[3].id]
    assert versions("accuracy=0.52") == [notes[2].id]
    assert versions("owner=user4") == [notes[4].id]
    assert versions("ok=true") == versions("tag:prod")
    assert versions("epoch=") == [made["registered"].id]
    assert versions("owner=nobody") == []
    found = http.get("/api/v1/search", params={"q": "not"}).json()
    assert [a["name"] for a in found["artifacts"]["items"]] == ["notes"]
    assert http.get("/api/v1/search", params={"q": "web_pipe"}).json()["runs"][0]["pipeline"] == "web_pipe"
    assert "prod" in http.get("/api/v1/search", params={"q": "pro"}).json()["tags"]


def test_metadata_search_pages_through_a_bounded_window(seeded, monkeypatch):
    made, http = seeded
    from artifactfs.index import browse

    monkeypatch.setattr(browse, "SCAN_WINDOW", 2)  # two metadata rows compared per page
    found, pages = walk_pages(http, "/api/v1/search", "versions", q="ok=true")
    assert [v["id"] for v in found] == [v.id for v in reversed(made["notes"]) if int(v.version) % 2 == 0]
    assert pages == 4  # seven "ok" rows, two a page
    page = http.get("/search", params={"q": "ok=true", "cursor": str(made["notes"][-1]._pk)}).text
    assert "No match among the newest versions compared so far" in page or "Next page" in page


def test_lineage_walks_up_and_down(seeded):
    made, http = seeded
    doubled = made["first"].steps["double"].outputs["doubled"]

    def walk(**params):
        body = http.get(f"/api/v1/versions/{doubled.id}/lineage", params=params).json()
        return body, {v["artifact"] for v in body["versions"]}, {s["name"] for s in body["steps"]}

    body, names, steps = walk()
    assert body["root"] == doubled.id and names == {"numbers", "doubled", "summary"}
    assert steps == {"make_numbers", "double", "summarize"}
    _, names, steps = walk(direction="upstream", depth=1)
    assert names == {"numbers", "doubled"} and steps == {"double"}
    _, names, steps = walk(direction="downstream", depth=1)
    assert names == {"doubled", "summary"} and steps == {"summarize"}
    body, _, _ = walk(max_steps=1)
    assert body["truncated"] and len(body["steps"]) == 1
    edge = next(e for e in body["edges"] if e["version"] == doubled.id)
    assert edge["direction"] == "output" and edge["name"] == "doubled"
    page = http.get(f"/versions/{doubled.id}/lineage").text
    assert page.count('class="node ') == 3 + 3 * 2  # versions + both runs' step runs (cached ones too)


def test_hostile_names_are_text(seeded):
    made, http = seeded
    for path in ["/artifacts", f"/versions/{made['xss'].id}", "/", "/search?q=img"]:
        page = http.get(path).text
        assert "<img src=x" not in page and "<script>alert" not in page, path
    assert "&lt;img src=x onerror=alert(1)&gt;" in http.get("/artifacts").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in http.get(f"/versions/{made['xss'].id}").text
    versions = http.get(f"/api/v1/artifacts/{XSS_NAME}/versions").json()["versions"]["items"]
    assert versions[0]["metadata"]["note"] == XSS_NOTE
    assert http.get("/").headers["content-security-policy"].startswith("default-src 'self'")


def test_nothing_writes(seeded):
    made, http = seeded
    with get_index().read() as session:
        before = get_generation(session), session.scalar(select(func.count()).select_from(VersionFile))
    for method in ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"]:
        for path in ["/api/v1/runs", f"/versions/{made['notes'][0].id}", "/"]:
            answer = http.request(method, path)
            assert answer.status_code == 405 and answer.headers["allow"] == "GET, HEAD", (method, path)
    assert http.head("/runs").status_code == 200 and http.head("/runs").content == b""
    with get_index().read() as session:
        assert (get_generation(session), session.scalar(select(func.count()).select_from(VersionFile))) == before


def test_secrets_never_shown(seeded):
    _, http = seeded
    body = http.get("/api/v1/stores").json()
    assert [s["name"] for s in body["stores"]] == ["default"] and "password" not in body["index"]
    assert mask_url("postgresql+psycopg://ann:s3cret@db/x") == "postgresql+psycopg://ann:***@db/x"
    from artifactfs.web.security import public_options

    assert public_options("s3", {"endpoint_url": "http://x", "secret": "k", "key": "id"}) == {"endpoint_url": "http://x"}


def test_live_progress_follows_a_running_run(seeded):
    _, http = seeded
    with get_index().write() as session:
        run = pipeline_rows.create_run(session, "live_pipe", f"live-{uuid.uuid4().hex[:6]}", {})
        first = pipeline_rows.create_step_run(session, run.id, "first", "c", None, {})
        run_uuid, first_id, run_id = run.uuid, first.id, run.id
    before = http.get(f"/api/v1/runs/{run_uuid}/progress").json()
    assert before["status"] == "running" and before["steps"] == [["first", "running"]]
    assert f'data-live="/api/v1/runs/{run_uuid}/progress"' in http.get(f"/runs/{run_uuid}").text
    with get_index().write() as session:
        pipeline_rows.finish(session, session.get(StepRun, first_id), RunStatus.COMPLETED)
        pipeline_rows.finish(session, session.get(PipelineRun, run_id), RunStatus.COMPLETED)
    after = http.get(f"/api/v1/runs/{run_uuid}/progress").json()
    assert after["status"] == "completed" and after["generation"] > before["generation"]
    assert "data-live" not in http.get(f"/runs/{run_uuid}").text


def test_openapi_lists_every_api_route(seeded):
    _, http = seeded
    paths = http.get("/api/v1/openapi.json").json()["paths"]
    for path in ["/api/v1/overview", "/api/v1/pipelines", "/api/v1/runs/{run}", "/api/v1/runs/{run}/progress",
                 "/api/v1/steps/{step}", "/api/v1/artifacts/{name}/versions", "/api/v1/versions/{version}",
                 "/api/v1/versions/{version}/files", "/api/v1/versions/{version}/lineage", "/api/v1/search",
                 "/api/v1/stores", "/versions/{version}/files/{path}"]:
        assert "get" in paths[path], path
    assert not any(p.startswith("/runs") for p in paths)  # HTML pages are not API


def test_token_is_checked_on_every_request(seeded):
    made, _ = seeded
    with serving(create_app(WebConfig(token=TOKEN))) as base, client(base) as http:
        for path in ["/", "/api/v1/runs", f"/versions/{made['registered'].id}/files/a%20b.txt", "/static/app.js"]:
            assert http.get(path).status_code == 401, path
        assert http.get("/api/v1/runs", headers={"Authorization": f"Bearer {TOKEN}x"}).status_code == 401
        assert http.get("/api/v1/runs", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        assert http.get("/api/v1/runs", params={"token": "wrong"}).status_code == 401
        login = http.get("/runs", params={"token": TOKEN, "q": "web"}, follow_redirects=False)
        assert login.status_code == 303 and login.headers["location"] == "/runs?q=web"
        port = http.base_url.port
        name, _, rest = login.headers["set-cookie"].partition("=")
        value = rest.split(";")[0]
        assert name == f"artifactfs_token_{port}" and TOKEN not in value  # the port's own cookie, not the token
        assert "HttpOnly" in rest and "SameSite=Strict" in rest and login.headers["cache-control"] == "no-store"
        assert http.get("/runs", params={"q": "web"}).status_code == 200  # the cookie jar carries it now
    with serving(create_app(WebConfig(token=TOKEN))) as other, client(other) as http:
        for name, sent in [(f"artifactfs_token_{port}", value), (f"artifactfs_token_{http.base_url.port}", value),
                           (f"artifactfs_token_{http.base_url.port}", TOKEN), ("artifactfs_token", TOKEN)]:
            # another server with the same token takes neither this one's cookie nor the token as a cookie
            assert http.get("/api/v1/runs", headers={"Cookie": f"{name}={sent}"}).status_code == 401, name


def test_foreign_host_names_are_refused(seeded):
    """DNS rebinding: only the bound address, localhost names and names
    given (--host-name) are answered, with or without a token."""
    made, _ = seeded
    from artifactfs.web.security import HostRule

    with serving(create_app(WebConfig(hosts=HostRule("127.0.0.1", ("box.lan",))))) as base, client(base) as http:
        port = http.base_url.port
        for host in ["evil.example", "127.0.0.1.evil.example", "localhost.evil.example", "10.0.0.1", "[::2]", ""]:
            refused = http.get("/api/v1/stores", headers={"Host": f"{host}:{port}" if host else ""})
            assert refused.status_code in (400, 421), host
            assert refused.json()["status"] == refused.status_code and "stores" not in refused.text, host
            page = http.get(f"/versions/{made['registered'].id}/files/a%20b.txt", headers={"Host": host or "x"})
            assert page.status_code == 421 and page.headers["content-type"].startswith("text/html"), host
        for host in ["127.0.0.1", "localhost", "LOCALHOST.", "app.localhost", "box.lan", "[::1]"]:
            assert http.get("/api/v1/stores", headers={"Host": f"{host}:{port}"}).status_code == 200, host
        assert "DNS rebinding" in http.get("/", headers={"Host": "evil.example"}).text
    rule = HostRule("0.0.0.0")  # every address: any address written as a number, never a name
    assert rule.allows("192.168.1.9") and rule.allows("localhost") and not rule.allows("evil.example")
    assert not HostRule("10.1.2.3").allows("10.1.2.4") and HostRule("10.1.2.3").allows("10.1.2.3")
    assert HostRule("box.lan").allows("box.lan") and not HostRule("box.lan").allows("evil.example")


def test_errors_have_one_shape(seeded):
    """401, 404, 405, 421 and 422 under /api/ are JSON of one shape; pages
    answer an HTML error page; a garbage cursor is a 400."""
    _, http = seeded
    shape = {"status", "detail", "errors"}
    answers = {404: http.get("/api/v1/runs/no-such-run"), 405: http.post("/api/v1/runs"),
               422: http.get("/api/v1/runs", params={"limit": 0}), 400: http.get("/api/v1/runs", params={"cursor": "x"})}
    answers[404.5] = http.get("/api/v1/no-such-route")
    with serving(create_app(WebConfig(token=TOKEN))) as base, client(base) as locked:
        answers[401] = locked.get("/api/v1/runs")
    for status, answer in answers.items():
        assert answer.status_code == int(status) and answer.headers["content-type"] == "application/json", status
        body = answer.json()
        assert set(body) == shape and body["status"] == int(status) and isinstance(body["detail"], str), body
    assert answers[422].json()["errors"][0]["loc"] == ["query", "limit"] and "limit" in answers[422].json()["detail"]
    for path, params, status in [("/runs", {"limit": 0}, 422), ("/runs", {"cursor": "x"}, 400),
                                 ("/no-such-page", {}, 404), ("/runs/no-such-run", {}, 404)]:
        page = http.get(path, params=params)
        assert page.status_code == status and page.headers["content-type"].startswith("text/html"), path
        assert f"<h1>{status}" in page.text and "<footer>" in page.text, path
    assert http.post("/runs").headers["content-type"].startswith("text/html")


def test_openapi_lists_security_and_errors(seeded):
    with serving(create_app(WebConfig(token=TOKEN))) as base, client(base) as http:
        document = http.get("/api/v1/openapi.json", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "description": "the token `artifactfs ui` printed or was given"}
    assert {"bearer": []} in document["security"]
    runs = document["paths"]["/api/v1/runs"]["get"]["responses"]
    for status in ["400", "401", "404", "405", "421", "422"]:
        assert runs[status]["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/ApiError"
    assert set(document["components"]["schemas"]["ApiError"]["properties"]) == {"status", "detail", "errors"}


def test_long_search_strings_are_refused(seeded):
    _, http = seeded
    for path in ["/api/v1/search", "/api/v1/runs", "/api/v1/artifacts", "/search", "/runs", "/artifacts"]:
        answer = http.get(path, params={"q": "a" * 50_001})
        assert answer.status_code == 422, path
    assert http.get("/api/v1/search", params={"q": "a" * 1000}).status_code == 200


def test_version_prefixes_and_latest(seeded):
    made, http = seeded
    newest = made["notes"][-1]
    for prefix in [newest.id[:8], newest.id[:13], newest.id]:
        assert http.get(f"/api/v1/versions/{prefix}").json()["detail"]["version"]["id"] == newest.id, prefix
        assert http.get(f"/versions/{prefix}").status_code == 200
        assert http.get(f"/api/v1/versions/{prefix}/files").status_code == 200
        assert http.get(f"/versions/{prefix}/lineage").status_code == 200
    registered = made["registered"]
    assert http.get(f"/versions/{registered.id[:10]}/files/a%20b.txt").content == b"spaces in a name\n"
    missing = http.get("/api/v1/versions/ffffffff")
    assert missing.status_code == 404 and missing.json()["status"] == 404
    latest = http.get("/artifacts/notes/versions/latest", follow_redirects=False)
    assert latest.status_code == 303 and latest.headers["location"] == f"/versions/{newest.id}"
    assert http.get("/artifacts/notes/versions/1", follow_redirects=False).headers["location"] == \
        f"/versions/{made['notes'][0].id}"
    assert http.get("/artifacts/no-such/versions/latest").status_code == 404


def test_archive_streams_every_file(seeded):
    import io
    import tarfile

    made, http = seeded
    registered = made["registered"]
    answer = http.get(f"/versions/{registered.id}/archive")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/x-tar"
    top = f"checkpoint-{registered.version}"
    assert answer.headers["content-disposition"] == f"attachment; filename*=UTF-8''{top}.tar"
    with tarfile.open(fileobj=io.BytesIO(answer.content)) as archive:
        got = {m.name: (archive.extractfile(m).read(), m.mode) for m in archive.getmembers()}
    store = registered.open_store()
    assert got == {f"{top}/{f.path}": (store.read_bytes(registered.file_uri(f.path)), f.mode & 0o7777)
                   for f in registered.files}
    head = http.head(f"/versions/{registered.id}/archive")
    assert head.status_code == 200 and head.content == b""
    assert http.get("/versions/ffffffff-0000/archive").status_code == 404


def test_more_consumers_than_listed_say_so(seeded):
    """A version read by more step runs than the page lists says how many
    it left out."""
    from artifactfs.index.browse import MAX_LIMIT

    made, http = seeded
    source = made["notes"][0]
    extra = 3
    with get_index().write() as session:
        run = pipeline_rows.create_run(session, "fan_out", f"fan-{uuid.uuid4().hex[:6]}", {})
        version_pk = session.scalar(select(VersionRow.id).where(VersionRow.uuid == source.id))
        for i in range(MAX_LIMIT + extra):
            step_run = pipeline_rows.create_step_run(session, run.id, f"read_{i}", "c", None, {})
            pipeline_rows.link(session, step_run.id, version_pk, "input", "notes")
    detail = http.get(f"/api/v1/versions/{source.id}").json()["detail"]
    assert len(detail["consumers"]) == MAX_LIMIT and detail["more_consumers"] == extra
    assert f"and {extra} more" in http.get(f"/versions/{source.id}").text


def test_token_rule_of_the_command():
    from artifactfs.errors import ArtifactfsError
    from artifactfs.web.server import plan

    for host in ["127.0.0.1", "::1", "localhost", "0.0.0.0"]:  # loopback too: other users reach it
        made = plan(host, 8237, None)
        assert made.generated and len(made.token) >= 16 and made.url.endswith(f":8237/?token={made.token}"), host
    from artifactfs.web.security import HostRule, machine_name

    # Bound to every address: the printed address names this machine, and the Host check accepts that name.
    assert plan("0.0.0.0", 8237, None).url.startswith(f"http://{machine_name()}:8237/")
    assert machine_name() not in ("", "127.0.0.1") and HostRule("0.0.0.0").allows(machine_name())
    assert not HostRule("0.0.0.0").allows("rebound.example") and not HostRule("127.0.0.1").allows("rebound.example")
    assert plan("127.0.0.1", 0, None, no_token=True).token is None
    with pytest.raises(ArtifactfsError, match="loopback only"):
        plan("0.0.0.0", 8237, None, no_token=True)
    with pytest.raises(ArtifactfsError, match="contradict"):
        plan("127.0.0.1", 8237, TOKEN, no_token=True)
    given = plan("10.1.2.3", 8237, TOKEN)
    assert given.token == TOKEN and not given.generated and "token" not in given.url
    for bad in ["short", "has space in it 0123456789", "semi;colon-0123456789abc"]:
        with pytest.raises(ArtifactfsError, match="at least 16 characters"):
            plan("0.0.0.0", 8237, bad)


RUN_KEYS = {"name": "name", "pipeline": "pipeline", "status": "status", "duration": "duration_s", "steps": "steps",
            "cached": "cached_steps"}


def test_runs_sort_by_any_column_and_filter(seeded):
    """Every sort, both ways, pages through every run exactly once in
    order; filters by pipeline, status and start day; failed runs carry
    their error on the list."""
    made, http = seeded
    everything, _ = walk_pages(http, "/api/v1/runs")
    newest_first = [r["id"] for r in everything]
    for sort, field in RUN_KEYS.items():
        for order in ("asc", "desc"):
            got, pages = walk_pages(http, "/api/v1/runs", limit=2, sort=sort, order=order)
            assert sorted(r["id"] for r in got) == sorted(newest_first) and pages > 1, (sort, order)
            values = [-1 if r[field] is None else r[field] for r in got]
            assert values == sorted(values, reverse=order == "desc"), (sort, order, values)
            for a, b in zip(got, got[1:]):  # equal values: the older (asc) or newer (desc) run first
                if (-1 if a[field] is None else a[field]) == (-1 if b[field] is None else b[field]):
                    assert (newest_first.index(a["id"]) < newest_first.index(b["id"])) == (order == "desc")
    oldest, _ = walk_pages(http, "/api/v1/runs", limit=2, order="asc")
    assert [r["id"] for r in oldest] == newest_first[::-1]
    ours, _ = walk_pages(http, "/api/v1/runs", pipeline="web_pipe")
    assert {r["id"] for r in ours} == {made["first"].id, made["second"].id}
    failed, _ = walk_pages(http, "/api/v1/runs", status="failed")
    assert failed and all(r["status"] == "failed" for r in failed)
    failing = next(r for r in failed if r["pipeline"] == "failing_pipe")
    assert failing["error"].startswith("explode: ") and "boom" in failing["error"]
    assert all(r["error"] is None for r in everything if r["status"] != "failed")
    days = sorted(r["start_time"][:10] for r in everything)
    assert len(walk_pages(http, "/api/v1/runs", since=days[0], until=days[-1])[0]) == len(everything)
    assert walk_pages(http, "/api/v1/runs", until="2000-01-01")[0] == []
    assert walk_pages(http, "/api/v1/runs", since="2999-01-01")[0] == []
    assert walk_pages(http, "/api/v1/runs", status="", since="", pipeline="")[0] == everything  # an empty form
    for bad in [{"status": "nope"}, {"since": "yesterday"}, {"until": "2026-13-45"}, {"sort": "colour"}]:
        answer = http.get("/api/v1/runs", params=bad)
        assert answer.status_code == 422 and answer.json()["status"] == 422, bad
    cursor = http.get("/api/v1/runs", params={"sort": "name", "limit": 1}).json()["next_cursor"]
    assert http.get("/api/v1/runs", params={"sort": "steps", "cursor": cursor}).status_code == 400
    page = http.get("/runs", params={"status": "failed"}).text
    assert "boom &lt;b&gt;bold&lt;/b&gt;" in page and 'data-sort="duration"' in page


def test_compare_two_versions(seeded, tmp_path):
    """Metadata side by side with differences marked, files by path with
    size and digest: changed, only in one, the same."""
    from artifactfs import register_artifact

    made, http = seeded
    a, b = made["notes"][1], made["notes"][2]
    found = http.get("/api/v1/compare/versions", params={"a": a.id[:10], "b": b.id}).json()
    states = {d["key"]: (d["a"], d["b"], d["state"]) for d in found["metadata"]}
    for key in ["accuracy", "epochs", "owner", "ok"]:
        assert states[key] == (a.metadata[key], b.metadata[key], "changed"), key
    facts = {d["key"]: d["state"] for d in found["facts"]}
    assert facts["artifact"] == "same" and facts["version"] == "changed" and facts["tags"] == "changed"
    folder = tmp_path / "checkpoint"
    (folder / "sub" / "dir").mkdir(parents=True)
    (folder / "a b.txt").write_bytes(b"spaces in a name\n")  # the same
    (folder / "sub" / "dir" / "b.bin").write_bytes(b"other bytes")  # changed
    (folder / "new.txt").write_bytes(b"new")  # only in the new one
    newer = register_artifact(folder, "checkpoint", copy=True, metadata={"epoch": 4})
    old = made["registered"]
    answer = http.get("/api/v1/compare/versions", params={"a": old.id, "b": newer.id}).json()
    files = {f["path"]: f for f in answer["files"]}
    assert {p: f["state"] for p, f in files.items()} == {"a b.txt": "same", "new.txt": "only_b",
                                                         "sub/dir/b.bin": "changed"}
    assert files["sub/dir/b.bin"]["a"]["size"] == 256 * 40 and files["sub/dir/b.bin"]["b"]["size"] == 11
    assert files["sub/dir/b.bin"]["a"]["digest"] != files["sub/dir/b.bin"]["b"]["digest"]
    assert [d for d in answer["metadata"] if d["key"] == "epoch"][0]["state"] == "changed"
    assert answer["differences"] == sum(1 for group in ("facts", "metadata", "files") for d in answer[group]
                                        if d["state"] != "same") and not answer["files_cut"]
    page = http.get("/compare/versions", params={"a": old.id, "b": newer.id}).text
    assert 'data-state="only_b"' in page and "new.txt" in page
    assert "Compare with the previous version" in http.get(f"/versions/{newer.id}").text
    assert f"/compare/versions?a={old.id}&amp;b={newer.id}" in http.get(f"/versions/{newer.id}").text
    assert http.get("/api/v1/compare/versions", params={"a": old.id, "b": "ffffffff"}).status_code == 404
    assert http.get("/api/v1/compare/versions", params={"a": old.id}).status_code == 422


def test_compare_two_runs(seeded):
    made, http = seeded
    first, second = made["first"], made["second"]
    found = http.get("/api/v1/compare/runs", params={"a": first.id, "b": second.name}).json()
    assert [d["state"] for d in found["parameters"]] == ["same"] * len(found["parameters"])
    steps = {s["name"]: s for s in found["steps"]}
    assert list(steps) == list(first.steps)
    for name, step in steps.items():  # the second run's steps were cached: other status, the same outputs
        assert (step["status"]["a"], step["status"]["b"], step["status"]["state"]) == ("completed", "cached", "changed")
        assert [(o["key"], o["a"]["id"], o["state"]) for o in step["outputs"]] == \
            [(k, v.id, "same") for k, v in first.steps[name].outputs.items()]
    with get_index().read() as session:
        failing = session.scalar(select(PipelineRun.uuid).join(PipelineRun.pipeline)
                                 .where(PipelineRun.name.like("failing_pipe%")))
    other = http.get("/api/v1/compare/runs", params={"a": first.id, "b": failing}).json()
    states = {s["name"]: s["status"]["state"] for s in other["steps"]}
    assert states == {"make_numbers": "same", "double": "only_a", "summarize": "only_a",
                      "explode": "only_b"}
    numbers = [s for s in other["steps"] if s["name"] == "make_numbers"][0]["outputs"][0]
    assert numbers["state"] == "changed" and numbers["a"]["id"] != numbers["b"]["id"]  # n=5 and n=3
    page = http.get("/compare/runs", params={"a": first.id, "b": failing}).text
    assert 'data-state="only_b" data-step="explode"' in page
    assert f"/compare/runs?a={first.id}&amp;b={second.id}" in http.get(f"/runs/{second.id}").text


def test_a_lost_payload_file_is_404_not_a_broken_stream(seeded):
    import os

    from artifactfs import save_artifact

    _, http = seeded
    lost = save_artifact({"n": 1}, "lost_payload")
    entry = lost.files[0]
    os.unlink(lost.file_uri(entry.path))
    answer = http.get(f"/versions/{lost.id}/files/{entry.path}")
    assert answer.status_code == 404 and "lost its file" in answer.text



def test_the_web_view_sees_a_store_update(afs_home, moto_server):
    """Store rows change (``store update``, ``store login``): the web view,
    a long-running process, opens the store again instead of keeping the
    copy it opened first. Here a wrong endpoint, put right by another
    process, must not need a restart of the server."""
    import subprocess
    import sys
    from pathlib import Path

    from artifactfs import register_store, save_artifact, set_active_store
    from servers import s3_bucket

    bucket = f"web-update-{uuid.uuid4().hex[:8]}"
    s3_bucket(moto_server, bucket)
    register_store("remote", "s3", f"s3://{bucket}/root", dict(moto_server.options))
    set_active_store("remote")
    version = save_artifact(b"bytes in a remote store", "blob")
    path = version.files[0].path
    cli = [str(Path(sys.executable).with_name("artifactfs")), "store", "update", "remote", "-o"]
    subprocess.run([*cli, "endpoint_url=http://127.0.0.1:9"], check=True, capture_output=True, timeout=60)
    with serving(create_app(WebConfig())) as base, client(base) as http:
        assert http.get(f"/versions/{version.id}/files/{path}").status_code != 200  # opened with the wrong endpoint
        subprocess.run([*cli, f"endpoint_url={moto_server.endpoint_url}"], check=True, capture_output=True, timeout=60)
        answer = http.get(f"/versions/{version.id}/files/{path}")
        assert answer.status_code == 200 and answer.content == b"bytes in a remote store"


def test_a_step_with_caching_off_says_so_though_it_keeps_its_key(afs_home):
    """A step run keeps its cache key even with caching off (a later cached
    run reuses it); the web view must still say caching was off, as the
    Client's ``step.config.enable_cache`` does (one rule:
    ``index.pipelines.caching_on``)."""
    from artifactfs import pipeline, step

    @step
    def seven() -> int:
        return 7

    @pipeline(quiet=True, enable_cache=False)
    def uncached_web():
        seven()

    off = uncached_web().steps["seven"]
    on = uncached_web.configure(enable_cache=True)().steps["seven"]
    assert off.cache_key and off.config.enable_cache is False and on.config.enable_cache is True
    with serving(create_app(WebConfig())) as base, client(base) as http:
        assert http.get(f"/api/v1/steps/{off.id}").json()["caching"] is False
        assert http.get(f"/api/v1/steps/{on.id}").json()["caching"] is True
        assert "caching off" in http.get(f"/steps/{off.id}").text
        assert "caching off" not in http.get(f"/steps/{on.id}").text
