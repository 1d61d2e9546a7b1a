"""The web view's ASGI app: the pages and their JSON twins (``pages``), the
raw routes (downloads, visualizations), templates with their filters,
static files, error pages, and the guard in front of it all (``security``).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlencode

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.exceptions import HTTPException as StarletteHTTPException

from artifactfs import __version__
from artifactfs.errors import NotFoundError
from artifactfs.index import browse, get_index
from artifactfs.units import human_bytes
from artifactfs.web import errors as errors_module
from artifactfs.web import compare, graph, pages, payloads
from artifactfs.web.errors import wants_json
from artifactfs.web.security import SANDBOX_POLICY, Guard, HostRule, head_only

HERE = Path(__file__).parent


@dataclass(frozen=True)
class WebConfig:
    """How one server runs: which index (default: from settings), the
    access token (``None``: no token, for loopback only), where the index
    is mounted (shown in each version's mount path), and the host names it
    answers to (default: loopback's)."""

    index_url: str | None = None
    token: str | None = None
    mount_root: str | None = None
    hosts: HostRule = field(default_factory=lambda: HostRule("127.0.0.1"))


def create_app(config: WebConfig = WebConfig()) -> FastAPI:
    index = get_index(config.index_url)
    app = FastAPI(title="artifactfs", version=__version__, openapi_url="/api/v1/openapi.json", docs_url=None,
                  redoc_url=None,
                  description="Read-only JSON API of the artifactfs lineage index. Every list is a "
                  "keyset page: pass `next_cursor` back as `cursor` for the next one. Every error is "
                  "`{\"status\", \"detail\", \"errors\"}`.")
    app.state.index, app.state.config, app.state.stores = index, config, payloads.Stores(index)
    templates = Jinja2Templates(env=_environment())
    app.state.templates = templates
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    _raw_routes(app)
    pages.register(app, templates)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid_parameters)
    app.add_exception_handler(browse.BadCursor, _bad_cursor)
    app.add_exception_handler(NotFoundError, _not_found)
    app.add_middleware(Guard, token=config.token, hosts=config.hosts)
    app.openapi = lambda: _openapi(app)
    return app


def _openapi(app: FastAPI) -> dict:
    """The generated document, plus how to send the token (when the server
    has one): as a bearer token, or as the cookie a browser gets."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        if app.state.config.token is not None:
            schema.setdefault("components", {})["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "the token `artifactfs ui` printed or was given"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "artifactfs_token_<port>",
                           "description": "set by opening any address once with `?token=<token>`"},
            }
            schema["security"] = [{"bearer": []}, {"cookie": []}]
        for path, operations in schema.get("paths", {}).items():  # FastAPI's own 422 model is replaced by ours
            for operation in operations.values():
                invalid = operation.get("responses", {}).get("422")
                if invalid is not None:
                    invalid["content"] = ({"application/json": {"schema": {"$ref": "#/components/schemas/ApiError"}}}
                                          if wants_json(path) else {"text/html": {}})
        schema.get("components", {}).get("schemas", {}).pop("HTTPValidationError", None)
        schema.get("components", {}).get("schemas", {}).pop("ValidationError", None)
        app.openapi_schema = schema
    return app.openapi_schema


# -- templates --------------------------------------------------------------------------------------


def _environment() -> Environment:
    env = Environment(loader=PackageLoader("artifactfs.web", "templates"), autoescape=select_autoescape(default=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update(size=human_bytes, when=_when, duration=_duration, short=lambda s: (s or "")[:8],
                       segment=lambda s: quote(str(s), safe=""), value=payloads.pretty_value,
                       pretty=lambda v: json.dumps(v, indent=2, ensure_ascii=False, default=str), draw=graph.draw)
    env.globals.update(version=__version__, page_link=_page_link, compare_files=compare.MAX_FILES)
    env.tests["version_ref"] = lambda value: isinstance(value, browse.VersionLink)
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


def _error(request: Request, status: int, detail: str, errors: list | None = None,
           headers: dict | None = None) -> Response:
    """Every error the app answers: JSON of one shape under ``/api/``, the
    error page elsewhere (``web.errors`` owns the shape)."""
    if wants_json(request.url.path):
        return JSONResponse(errors_module.api_error(status, detail, errors), status, headers=headers)
    return request.app.state.templates.TemplateResponse(request, "error.html", {"status": status, "detail": detail,
                                                                                "errors": errors or []},
                                                        status_code=status, headers=headers)


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail, default=str)
    if exc.status_code == 405:
        detail = "the web view is read-only: only GET and HEAD are allowed"
    return _error(request, exc.status_code, detail, headers=getattr(exc, "headers", None))


async def _invalid_parameters(request: Request, exc: RequestValidationError) -> Response:
    found = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
             for e in exc.errors()]
    said = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or 'request'}: {e['msg']}" for e in found)
    return _error(request, 422, f"invalid parameters: {said}", found)


async def _bad_cursor(request: Request, exc: browse.BadCursor) -> Response:
    return _error(request, 400, str(exc))


async def _not_found(request: Request, exc: NotFoundError) -> Response:
    return _error(request, 404, str(exc))


# -- raw routes: files, visualizations, names --------------------------------------------------------


def _raw_routes(app: FastAPI) -> None:
    """Payload routes: opened by browsers as often as by scripts, so their
    errors are error pages (``web.errors``), described as such."""
    responses = {status: {"description": f"{answer['description']} (an HTML error page)",
                          "content": {"text/html": {}}}
                 for status, answer in errors_module.RESPONSES.items() if status != 405}
    app.add_api_route("/versions/{version}/files/{path:path}", download, methods=["GET"], tags=["payload"],
                      summary="Download one file of a version's manifest", response_class=StreamingResponse,
                      responses=responses)
    app.add_api_route("/versions/{version}/archive", download_archive, methods=["GET"], tags=["payload"],
                      summary="Download every file of a version as one tar archive, streamed",
                      response_class=StreamingResponse, responses=responses)
    app.add_api_route("/versions/{version}/visualizations/{number}", visualization, methods=["GET"],
                      tags=["payload"], summary="A visualization, raw (served in a sandbox), streamed",
                      response_class=StreamingResponse, responses=responses)
    app.add_api_route("/artifacts/{name}/versions/{version}", version_by_name, methods=["GET"],
                      include_in_schema=False)


def _uuid(request: Request, version: str) -> str:
    with request.app.state.index.read() as session:
        return browse.version_uuid(session, version)


def _attachment(name: str) -> str:
    return f"attachment; filename*=UTF-8''{quote(name, safe='')}"


def download(request: Request, version: str, path: str) -> Response:
    """Only a path of the version's manifest, exactly as recorded, is
    served; ``HEAD`` reads nothing of it."""
    try:
        found = payloads.find_file(request.app.state.stores, _uuid(request, version), path)
    except payloads.NotInManifest:
        raise HTTPException(404, f"version {version!r} has no file {path!r}") from None
    headers = {"content-length": str(found.size), "content-disposition": _attachment(found.name),
               "content-security-policy": SANDBOX_POLICY}
    if head_only(request.scope):
        return Response(None, media_type="application/octet-stream", headers=headers)
    try:
        handle = found.open(request.app.state.stores)
    except FileNotFoundError:
        raise HTTPException(404, f"the payload of version {version!r} has lost its file {path!r}") from None
    return StreamingResponse(found.chunks(request.app.state.stores, handle), media_type="application/octet-stream",
                             headers=headers)


def download_archive(request: Request, version: str) -> Response:
    """Every manifest file of a version as one tar archive, streamed (its
    length is not known in advance); ``HEAD`` reads no payload."""
    try:
        name, chunks = payloads.archive(request.app.state.stores, _uuid(request, version))
    except payloads.NotInManifest:
        raise HTTPException(404, f"no live version {version!r}") from None
    headers = {"content-disposition": _attachment(name), "content-security-policy": SANDBOX_POLICY}
    if head_only(request.scope):
        chunks.close()
        return Response(None, media_type="application/x-tar", headers=headers)
    return StreamingResponse(chunks, media_type="application/x-tar", headers=headers)


def visualization(request: Request, version: str, number: int) -> Response:
    try:
        kind, media, chunks = payloads.open_visualization(request.app.state.stores, _uuid(request, version), number,
                                                          body=not head_only(request.scope))
    except (payloads.NotInManifest, FileNotFoundError):
        raise HTTPException(404, f"version {version!r} has no visualization {number}") from None
    return StreamingResponse(chunks, media_type=media, headers={"content-security-policy": SANDBOX_POLICY,
                                                                "cache-control": "private, max-age=3600"})


def version_by_name(request: Request, name: str, version: str) -> RedirectResponse:
    """``/artifacts/<name>/versions/<version>`` (``latest``: the newest) to the version's page."""
    with request.app.state.index.read() as session:
        uuid = browse.get_version_by_name(session, name, version)
    if uuid is None:
        raise HTTPException(404, f"artifact {name!r} has no live version {version!r}")
    return RedirectResponse(f"/versions/{uuid}", status_code=303)
