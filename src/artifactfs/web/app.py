"""The web view's ASGI app: the pages and their JSON twins (``pages``), the
raw routes (downloads, visualizations), templates with their filters,
static files, error pages, and the guard in front of it all (``security``).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.exceptions import HTTPException as StarletteHTTPException

from artifactfs import __version__
from artifactfs.index import browse, get_index
from artifactfs.units import human_bytes
from artifactfs.web import pages, payloads
from artifactfs.web.security import SANDBOX_POLICY, Guard

HERE = Path(__file__).parent


@dataclass(frozen=True)
class WebConfig:
    """How one server runs: which index (default: from settings), the
    access token (``None``: no token, for loopback only), and where the
    index is mounted (shown in each version's mount path)."""

    index_url: str | None = None
    token: str | None = None
    mount_root: str | None = None


def create_app(config: WebConfig = WebConfig()) -> FastAPI:
    index = get_index(config.index_url)
    app = FastAPI(title="artifactfs", version=__version__, openapi_url="/api/v1/openapi.json", docs_url=None,
                  redoc_url=None, description="Read-only JSON API of the artifactfs lineage index. Every list is a "
                  "keyset page: pass `next_cursor` back as `cursor` for the next one.")
    app.state.index, app.state.config, app.state.stores = index, config, payloads.Stores(index)
    templates = Jinja2Templates(env=_environment())
    app.state.templates = templates
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    _raw_routes(app)
    pages.register(app, templates)
    app.add_exception_handler(StarletteHTTPException, _error_page)
    app.add_middleware(Guard, token=config.token)
    return app


# -- templates --------------------------------------------------------------------------------------


def _environment() -> Environment:
    env = Environment(loader=PackageLoader("artifactfs.web", "templates"), autoescape=select_autoescape(default=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update(size=human_bytes, when=_when, duration=_duration, short=lambda s: (s or "")[:8],
                       segment=lambda s: quote(str(s), safe=""), value=payloads.pretty_value,
                       pretty=lambda v: json.dumps(v, indent=2, ensure_ascii=False, default=str))
    env.globals.update(version=__version__, page_link=_page_link)
    return env


def _page_link(request: Request, **params: str) -> str:
    """This page's address with ``params`` changed (the pager's links)."""
    query = {**request.query_params, **params}
    return quote(request.url.path) + "?" + urlencode(query)


def _when(value: dt.datetime | None) -> str:
    return browse.utc(value).strftime("%Y-%m-%d %H:%M:%S UTC") if value else ""


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes} min {secs} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


async def _error_page(request: Request, exc: StarletteHTTPException) -> Response:
    if request.url.path.startswith("/api/") or exc.status_code < 400:
        return JSONResponse({"detail": exc.detail}, exc.status_code, headers=getattr(exc, "headers", None))
    return request.app.state.templates.TemplateResponse(request, "error.html", {"status": exc.status_code,
                                                                                "detail": exc.detail},
                                                        status_code=exc.status_code)


# -- raw routes: files, visualizations, names --------------------------------------------------------


def _raw_routes(app: FastAPI) -> None:
    app.add_api_route("/versions/{version}/files/{path:path}", download, methods=["GET"], tags=["payload"],
                      summary="Download one file of a version's manifest", response_class=StreamingResponse)
    app.add_api_route("/versions/{version}/visualizations/{number}", visualization, methods=["GET"],
                      tags=["payload"], summary="A visualization, raw (served in a sandbox)", response_class=Response)
    app.add_api_route("/artifacts/{name}/versions/{version}", version_by_name, methods=["GET"],
                      include_in_schema=False)


def download(request: Request, version: str, path: str) -> StreamingResponse:
    """Only a path of the version's manifest, exactly as recorded, is served."""
    try:
        found = payloads.open_file(request.app.state.stores, version, path)
    except (payloads.NotInManifest, FileNotFoundError):
        raise HTTPException(404, f"version {version!r} has no file {path!r}") from None
    disposition = f"attachment; filename*=UTF-8''{quote(found.name, safe='')}"
    return StreamingResponse(found.chunks, media_type="application/octet-stream",
                             headers={"content-length": str(found.size), "content-disposition": disposition,
                                      "content-security-policy": SANDBOX_POLICY})


def visualization(request: Request, version: str, number: int) -> Response:
    try:
        kind, data = payloads.read_visualization(request.app.state.stores, version, number)
    except (payloads.NotInManifest, FileNotFoundError):
        raise HTTPException(404, f"version {version!r} has no visualization {number}") from None
    return Response(data, media_type=payloads.media_type(kind, data),
                    headers={"content-security-policy": SANDBOX_POLICY, "cache-control": "private, max-age=3600"})


def version_by_name(request: Request, name: str, version: str) -> RedirectResponse:
    with request.app.state.index.read() as session:
        uuid = browse.get_version_by_name(session, name, version)
    if uuid is None:
        raise HTTPException(404, f"artifact {name!r} has no live version {version!r}")
    return RedirectResponse(f"/versions/{uuid}", status_code=303)
