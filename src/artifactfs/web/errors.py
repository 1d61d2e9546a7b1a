"""The one shape of every error the web view answers: under ``/api/`` a
JSON object ``{"status", "detail", "errors"}`` (the same for 400, 401,
404, 405, 421 and 422), elsewhere an HTML page. The guard in front of the
app (``security``) and the app's own handlers (``app``) both answer
through here."""

from __future__ import annotations

import html
import json
from typing import Any

from pydantic import BaseModel

API_PREFIX = "/api/"


class ApiError(BaseModel):
    """An error of the JSON API. ``errors``: for 422, each parameter that
    was refused (``loc``, ``msg``, ``type``); empty otherwise."""

    status: int
    detail: str
    errors: list[dict[str, Any]] = []


def wants_json(path: str) -> bool:
    """Whether an error at ``path`` is answered as JSON (the API) or as HTML (pages, files)."""
    return path.startswith(API_PREFIX)


def api_error(status: int, detail: str, errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return ApiError(status=status, detail=detail, errors=errors or []).model_dump()


def plain_page(status: int, detail: str) -> bytes:
    """A minimal HTML error page, for answers given before the app (and its
    templates) is reached; the app's own errors use ``error.html``."""
    text = html.escape(detail)
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{status} · artifactfs</title>'
            f'</head><body><h1>{status}</h1><p>{text}</p></body></html>\n').encode()


def error_body(path: str, status: int, detail: str) -> tuple[bytes, bytes]:
    """``(content type, body)`` of an error at ``path``."""
    if wants_json(path):
        return b"application/json", json.dumps(api_error(status, detail)).encode()
    return b"text/html; charset=utf-8", plain_page(status, detail)


#: What every API route may answer besides 200, for the OpenAPI document.
RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ApiError, "description": "A parameter or cursor that cannot be read"},
    401: {"model": ApiError, "description": "The token is missing or wrong"},
    404: {"model": ApiError, "description": "No such object (or not live)"},
    405: {"model": ApiError, "description": "Only GET and HEAD are answered: the web view is read-only"},
    421: {"model": ApiError, "description": "The Host header names no address this server answers to"},
    422: {"model": ApiError, "description": "A parameter out of its range"},
}
