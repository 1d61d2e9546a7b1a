"""What each page shows, said once: a loader per page returns the page's
data, served as JSON under ``/api/v1/`` and rendered into HTML by its
template at the page's own address (``register``). Loaders only read:
every one runs in one read transaction of the index.
"""

from __future__ import annotations

import datetime as dt
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel

from artifactfs.index import browse, lineage, names
from artifactfs.index.models import RunStatus
from artifactfs.index.steplogs import STEP_LOG_LIMIT
from artifactfs.index.browse import (
    ArtifactItem,
    FileItem,
    Overview,
    PipelineItem,
    RunDetail,
    RunItem,
    StepDetail,
    StoreItem,
    VersionDetail,
    VersionItem,
)
from artifactfs.web import compare, payloads
from artifactfs.web.errors import RESPONSES
from artifactfs.web.views import lineage_graph, run_graph
from artifactfs.web.security import mask_url, public_options

T = TypeVar("T")
#: Search and filter strings longer than this are refused (422), not run.
MAX_QUERY = 1000


# Each parameter gets its own Query: FastAPI records a parameter's name in
# the object, so one shared between `cursor` and `files_cursor` answered
# to `cursor` in both places (the version page's pager showed page one again).
def Cursor():  # noqa: N802 - reads as the parameter's kind
    return Query(None, max_length=4096, description="`next_cursor` of the page before; leave out for the first page")


def Limit():  # noqa: N802
    return Query(browse.DEFAULT_LIMIT, ge=1, le=browse.MAX_LIMIT, description="rows per page")


def Contains(what: str):  # noqa: N802
    return Query(None, max_length=MAX_QUERY, description=f"only {what} whose name contains this")


class PageOf(BaseModel, Generic[T]):
    """One keyset page: ``items`` and the cursor of the next page (``null`` on the last)."""

    items: list[T]
    next_cursor: str | None = None


# -- page data --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Home:
    overview: Overview
    runs: PageOf[RunItem]
    versions: PageOf[VersionItem]


@dataclass(frozen=True)
class PipelineRuns:
    pipeline: str
    runs: PageOf[RunItem]


@dataclass(frozen=True)
class ArtifactVersions:
    artifact: str
    versions: PageOf[VersionItem]


@dataclass(frozen=True)
class VersionPage:
    detail: VersionDetail
    files: PageOf[FileItem]
    mount_path: str
    python: str
    previous: str | None = None  # the artifact's version before this one, to compare with


@dataclass(frozen=True)
class Progress:
    """What a page showing a running run polls: it refreshes when this changes."""

    status: str
    generation: int
    steps: list[tuple[str, str]]


@dataclass(frozen=True)
class SearchResults:
    query: str
    kind: Literal["name", "tag", "metadata", "empty"]
    artifacts: PageOf[ArtifactItem] | None
    versions: PageOf[VersionItem] | None
    runs: list[RunItem]
    tags: list[str]
    more_runs: bool = False  # more runs match than ``runs`` lists (see /runs?q=)
    more_tags: bool = False


@dataclass(frozen=True)
class StoresPage:
    index: str
    stores: list[StoreItem]


# -- registering a page twice: JSON and HTML ----------------------------------------------------------


def register(app: FastAPI, templates: Jinja2Templates) -> None:
    """Every page: ``GET /api/v1<api>`` answers the loader's data as JSON,
    ``GET <path>`` renders it with the template (plus ``extra`` context)."""
    for path, api, template, loader, extra in PAGES:
        hints = inspect.get_annotations(loader, eval_str=True)
        app.add_api_route("/api/v1" + api, loader, methods=["GET"], response_model=hints["return"],
                          summary=(loader.__doc__ or "").splitlines()[0], tags=["browse"], responses=RESPONSES)
        if path is not None:
            app.add_api_route(path, _html(loader, template, extra, templates), methods=["GET"],
                              include_in_schema=False, response_class=HTMLResponse)


def _html(loader: Callable, template: str, extra: Callable | None, templates: Jinja2Templates) -> Callable:
    def endpoint(**kwargs):
        data = loader(**kwargs)
        request = kwargs["request"]
        context = {"data": data, **(extra(request, data) if extra else {})}
        return templates.TemplateResponse(request, template, context)

    endpoint.__signature__ = inspect.signature(loader, eval_str=True)  # FastAPI reads the loader's parameters
    endpoint.__name__ = loader.__name__ + "_page"
    return endpoint


def _read(request: Request):
    return request.app.state.index.read()


def _found(value: T | None, what: str) -> T:
    if value is None:
        raise HTTPException(404, f"no {what}")
    return value


# -- loaders ------------------------------------------------------------------------------------------


def home(request: Request) -> Home:
    """Counts, the newest runs and the newest versions."""
    with _read(request) as session:
        return Home(browse.overview(session), browse.list_runs(session, limit=10),
                    browse.recent_versions(session, limit=10))


def pipelines(request: Request, cursor: str | None = Cursor(), limit: int = Limit()) -> PageOf[PipelineItem]:
    """Pipelines in name order, with run counts and their newest run."""
    with _read(request) as session:
        return browse.list_pipelines(session, cursor, limit)


def pipeline_runs(request: Request, name: str, cursor: str | None = Cursor(), limit: int = Limit()) -> PipelineRuns:
    """The runs of one pipeline, newest first."""
    with _read(request) as session:
        pid = _found(browse.pipeline_id(session, name), f"pipeline named {name!r}")
        return PipelineRuns(name, browse.list_runs(session, pid, cursor, limit))


_STATUSES = tuple(s.value for s in RunStatus)
_DAY = r"^(\d{4}-\d{2}-\d{2})?$"  # empty: no filter (what a form's empty field sends)


def runs(request: Request, cursor: str | None = Cursor(), limit: int = Limit(), q: str | None = Contains("runs"),
         pipeline: str | None = Query(None, max_length=MAX_QUERY, description="only runs of this pipeline"),
         status: str | None = Query(None, pattern=f"^({'|'.join(_STATUSES)})?$", description="only runs in this state"),
         since: str | None = Query(None, pattern=_DAY, description="only runs started on or after this day (UTC)"),
         until: str | None = Query(None, pattern=_DAY, description="only runs started on or before this day (UTC)"),
         sort: Literal[browse.RUN_SORTS] = Query(  # type: ignore[valid-type]
             "started", description="the column to sort by"),
         order: Literal["desc", "asc"] = Query("desc", description="descending (default) or ascending")
         ) -> PageOf[RunItem]:
    """Every run, newest first, or filtered and sorted: status, start, duration, steps, cached steps, and a
    failed run's error."""
    with _read(request) as session:
        return browse.list_runs(session, None, cursor, limit, q, pipeline_name=pipeline or None,
                                status=status or None, since=_day("since", since), until=_day("until", until, 1),
                                sort=sort, descending=order == "desc")


def _day(name: str, text: str | None, after: int = 0) -> dt.datetime | None:
    """Midnight UTC starting day ``text`` (``after`` days later)."""
    if not text:
        return None
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise HTTPException(422, f"{name}: {text!r} is not a day (YYYY-MM-DD)") from None
    return dt.datetime.combine(day + dt.timedelta(days=after), dt.time(), tzinfo=dt.timezone.utc)


def run(request: Request, run: str) -> RunDetail:
    """One run (by id or name): parameters and every step run with its inputs, outputs and timings."""
    with _read(request) as session:
        return _found(browse.get_run(session, run), f"run {run!r}")


def run_progress(request: Request, run: str) -> Progress:
    """A run's status and its steps' statuses, cheap to poll while it runs."""
    with _read(request) as session:
        return Progress(*_found(browse.run_progress(session, run), f"run {run!r}"))


def step(request: Request, step: str) -> StepDetail:
    """One step run: parameters, inputs, outputs, timings, cache origin, error."""
    with _read(request) as session:
        return _found(browse.get_step(session, step), f"step run {step!r}")


def step_logs(request: Request, step: str) -> browse.StepLogs:
    """What a step run wrote to stdout, stderr and logging while it ran (bounded: ``cut`` characters were
    left out of the middle)."""
    with _read(request) as session:
        return _found(browse.step_logs(session, step), f"step run {step!r}")


def artifacts(request: Request, cursor: str | None = Cursor(), limit: int = Limit(),
              q: str | None = Contains("artifacts")
              ) -> PageOf[ArtifactItem]:
    """Artifacts with a live version, in name order."""
    with _read(request) as session:
        return browse.list_artifacts(session, cursor, limit, q)


def artifact_versions(request: Request, name: str, cursor: str | None = Cursor(), limit: int = Limit()
                      ) -> ArtifactVersions:
    """The live versions of one artifact, newest first, with tags, metadata, producer, consumers."""
    with _read(request) as session:
        aid = _found(browse.artifact_id(session, name), f"artifact named {name!r}")
        return ArtifactVersions(name, browse.list_versions(session, aid, cursor, limit))


def version(request: Request, version: str, files_cursor: str | None = Cursor()) -> VersionPage:
    """One version: record, metadata, visualizations, files, its path in the mount, how to load it."""
    with _read(request) as session:
        version = browse.version_uuid(session, version)
        detail = _found(browse.get_version(session, version), f"live version {version!r}")
        files = browse.list_files(session, browse.version_payload(session, version)[0], files_cursor, 200)
        previous = browse.previous_version(session, version)
    item = detail.version
    root = request.app.state.config.mount_root or "<mountpoint>"
    python = ("from artifactfs import load_artifact\n\n"
              f"value = load_artifact({item.artifact!r}, version={item.version!r})\n")
    return VersionPage(detail, files, root.rstrip("/") + names.version_path(item.artifact, item.version), python,
                       previous)


def version_files(request: Request, version: str, cursor: str | None = Cursor(), limit: int = Limit()
                  ) -> PageOf[FileItem]:
    """A version's manifest in path order (download each at /versions/{version}/files/{path})."""
    with _read(request) as session:
        payload = _found(browse.version_payload(session, browse.version_uuid(session, version)),
                         f"live version {version!r}")
        return browse.list_files(session, payload[0], cursor, limit)


def version_lineage(request: Request, version: str,
                    depth: int = Query(2, ge=0, le=50, description="step runs away from the version"),
                    direction: Literal["both", "upstream", "downstream"] = "both",
                    max_steps: int = Query(100, ge=1, le=1000, description="stop after this many step runs"),
                    ) -> lineage.Lineage:
    """Versions and step runs around a version, up- and/or downstream."""
    with _read(request) as session:
        payload = _found(browse.version_payload(session, browse.version_uuid(session, version)),
                         f"live version {version!r}")
        return lineage.walk(session, payload[0], direction != "downstream", direction != "upstream", depth,
                            max_steps)


def search(request: Request, q: str = Query("", max_length=MAX_QUERY,
                                            description="`tag:NAME`, `KEY=VALUE` (metadata) or part of a name"),
           cursor: str | None = Cursor(), limit: int = Limit()) -> SearchResults:
    """Artifacts and runs by name, versions by tag or by metadata."""
    q = q.strip()
    with _read(request) as session:
        if not q:
            return SearchResults(q, "empty", None, None, [], [])
        if q.startswith("tag:"):
            return SearchResults(q, "tag", None, browse.versions_tagged(session, q[4:].strip(), cursor, limit), [], [])
        key, equals, value = q.partition("=")
        if equals and key.strip():
            found = browse.versions_with_metadata(session, key.strip(), value.strip() or None, cursor, limit)
            return SearchResults(q, "metadata", None, found, [], [])
        if cursor:  # later pages hold artifacts only
            return SearchResults(q, "name", browse.list_artifacts(session, cursor, limit, q), None, [], [])
        runs_ = browse.list_runs(session, None, None, SHOWN_MATCHES, q)
        tags = browse.tags_like(session, q, SHOWN_MATCHES + 1)
        return SearchResults(q, "name", browse.list_artifacts(session, cursor, limit, q), None, runs_.items,
                             tags[:SHOWN_MATCHES], runs_.next_cursor is not None, len(tags) > SHOWN_MATCHES)


#: Runs and tags a name search shows (the rest: ``more_runs`` / ``more_tags``).
SHOWN_MATCHES = 20


def compare_versions(request: Request,
                     a: str = Query(..., max_length=MAX_QUERY, description="a version id (or prefix)"),
                     b: str = Query(..., max_length=MAX_QUERY, description="another version id (or prefix)")
                     ) -> compare.VersionComparison:
    """Two versions side by side: facts, metadata and files (size, digest), differences marked."""
    with _read(request) as session:
        found = [_found(browse.get_version(session, browse.version_uuid(session, v)), f"live version {v!r}")
                 for v in (a, b)]
        return compare.versions(session, *found)


def compare_runs(request: Request, a: str = Query(..., max_length=MAX_QUERY, description="a run id or name"),
                 b: str = Query(..., max_length=MAX_QUERY, description="another run id or name")
                 ) -> compare.RunComparison:
    """Two runs side by side: parameters, and each step's status and outputs, differences marked."""
    with _read(request) as session:
        found = [_found(browse.get_run(session, r), f"run {r!r}") for r in (a, b)]
    return compare.runs(*found)


def stores(request: Request) -> StoresPage:
    """The index (password hidden) and its stores (secret options never shown)."""
    with _read(request) as session:
        return StoresPage(mask_url(request.app.state.index.url), browse.list_stores(session, public_options))


# -- what only the HTML pages add ---------------------------------------------------------------------


def _version_extra(request: Request, data: VersionPage) -> dict[str, Any]:
    stores_ = request.app.state.stores
    return {"shown": [payloads.show(stores_, data.detail.version.id, v.index, v.kind)
                      for v in data.detail.visualizations]}


def _runs_extra(request: Request, data: PageOf[RunItem]) -> dict[str, Any]:
    return {"statuses": _STATUSES}


def _run_extra(request: Request, data: RunDetail) -> dict[str, Any]:
    with _read(request) as session:
        previous = browse.previous_run(session, data.run.id)
        logged = browse.steps_with_logs(session, data.run.id)
    return {"graph": run_graph(data), "previous": previous, "logged": logged}


def _step_extra(request: Request, data: StepDetail) -> dict[str, Any]:
    with _read(request) as session:
        return {"logs": browse.step_logs(session, data.id), "log_limit": STEP_LOG_LIMIT}



def _lineage_extra(request: Request, data: lineage.Lineage) -> dict[str, Any]:
    return {"graph": lineage_graph(data)}


PAGES: list[tuple[str | None, str, str, Callable, Callable | None]] = [
    ("/", "/overview", "home.html", home, None),
    ("/pipelines", "/pipelines", "pipelines.html", pipelines, None),
    ("/pipelines/{name}", "/pipelines/{name}/runs", "pipeline.html", pipeline_runs, None),
    ("/runs", "/runs", "runs.html", runs, _runs_extra),
    ("/runs/{run}", "/runs/{run}", "run.html", run, _run_extra),
    (None, "/runs/{run}/progress", "", run_progress, None),
    ("/steps/{step}", "/steps/{step}", "step.html", step, _step_extra),
    (None, "/steps/{step}/logs", "", step_logs, None),
    ("/artifacts", "/artifacts", "artifacts.html", artifacts, None),
    ("/artifacts/{name}", "/artifacts/{name}/versions", "artifact.html", artifact_versions, None),
    ("/versions/{version}", "/versions/{version}", "version.html", version, _version_extra),
    (None, "/versions/{version}/files", "", version_files, None),
    ("/versions/{version}/lineage", "/versions/{version}/lineage", "lineage.html", version_lineage, _lineage_extra),
    ("/search", "/search", "search.html", search, None),
    ("/stores", "/stores", "stores.html", stores, None),
    ("/compare/versions", "/compare/versions", "compare_versions.html", compare_versions, None),
    ("/compare/runs", "/compare/runs", "compare_runs.html", compare_runs, None),
]
