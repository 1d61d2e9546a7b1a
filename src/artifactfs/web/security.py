"""Who may ask the web view what: a pure ASGI middleware in front of the
whole app that lets only reads through (GET and HEAD), checks the access
token on every request when there is one, and puts the security headers on
every answer. Also the token rule itself and the masking of what must not
be shown (index URL passwords, secret store options).

The token travels as ``Authorization: Bearer <token>`` (scripts) or, for
browsers, once as ``?token=<token>``: that request is answered with a
redirect to the same address without it, setting an HttpOnly cookie that
carries the token from then on.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, urlencode

from artifactfs.errors import ArtifactfsError
from artifactfs.stores.secrets import mask_url, split_secrets  # noqa: F401 - mask_url: the pages' import

TOKEN_COOKIE = "artifactfs_token"
TOKEN_PARAM = "token"
READ_METHODS = frozenset({"GET", "HEAD"})

#: Pages load scripts, styles and frames from this server only; nothing inline.
PAGE_POLICY = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
               "frame-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
#: User content (visualizations) runs in a sandbox with a unique origin:
#: no script, no access to this server's pages or cookies.
SANDBOX_POLICY = ("sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'; font-src data:; "
                  "frame-ancestors 'self'")


_TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")
MIN_TOKEN_LENGTH = 16


def new_token() -> str:
    return secrets.token_urlsafe(24)


def check_token(token: str) -> str:
    """A token given by the user: long enough to resist guessing, and made
    of characters that travel unchanged in a header, a URL and a cookie."""
    if len(token) < MIN_TOKEN_LENGTH or not set(token) <= _TOKEN_CHARS:
        raise ArtifactfsError(
            f"the token must be at least {MIN_TOKEN_LENGTH} characters of A-Z, a-z, 0-9, '-', '_', '.', '~'",
            "leave --token out to have one generated",
        )
    return token


def is_loopback(host: str) -> bool:
    """Whether binding to ``host`` keeps the server to this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def public_options(flavor: str, options: dict[str, Any]) -> dict[str, Any]:
    """Store options without any secret ones (the index should hold none,
    but a row written by hand or by an older version might): what is secret
    is decided in ``stores.secrets``, as for ``artifactfs store list``."""
    from artifactfs.stores import get_flavor

    try:
        names = get_flavor(flavor).secret_options
    except Exception:  # noqa: BLE001 - an unknown flavor: its own names are unknown, the common rules apply
        names = frozenset()
    return split_secrets(names, options)[0]


class Guard:
    """The middleware: read-only, token, headers."""

    def __init__(self, app, token: str | None = None) -> None:
        self.app = app
        self.token = token.encode() if token else None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] not in READ_METHODS:
            await _answer(send, 405, b"the web view is read-only: only GET and HEAD are allowed\n",
                          [(b"allow", b"GET, HEAD")])
            return
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
        if "\x00" in scope["path"] or any("\x00" in k or "\x00" in v for k, v in query.items()):
            # No name in the index holds NUL, and PostgreSQL refuses it in a query.
            await _answer(send, 404, b"no such page: the address holds a NUL character\n", [])
            return
        if self.token is not None:
            if TOKEN_PARAM in query and self._matches(query[TOKEN_PARAM].encode()):
                await _redirect_with_cookie(scope, send, query, self.token)
                return
            if not (self._matches(_bearer(scope)) or self._matches(_cookie(scope))):
                await _answer(send, 401, b"a token is required: send 'Authorization: Bearer <token>', "
                                         b"or open the address printed by `artifactfs ui` once\n",
                              [(b"www-authenticate", b'Bearer realm="artifactfs"')])
                return
        head = scope["method"] == "HEAD"
        if head:
            scope = {**scope, "method": "GET"}
        await self.app(scope, receive, _with_headers(send, drop_body=head))

    def _matches(self, given: bytes | None) -> bool:
        return bool(given) and hmac.compare_digest(given, self.token)


def _header(scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value
    return None


def _bearer(scope) -> bytes | None:
    value = _header(scope, b"authorization") or b""
    scheme, _, credentials = value.partition(b" ")
    return credentials.strip() if scheme.lower() == b"bearer" else None


def _cookie(scope) -> bytes | None:
    raw = _header(scope, b"cookie")
    if not raw:
        return None
    morsel = SimpleCookie(raw.decode("latin-1")).get(TOKEN_COOKIE)
    return morsel.value.encode() if morsel else None


_SECURITY_HEADERS = (
    (b"content-security-policy", PAGE_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
)


def _with_headers(send, drop_body: bool):
    """``send`` that adds the security headers an answer did not set itself,
    and for HEAD drops the body."""

    async def wrapped(message) -> None:
        if message["type"] == "http.response.start":
            present = {name.lower() for name, _ in message.get("headers", ())}
            extra = [(k, v) for k, v in _SECURITY_HEADERS if k not in present]
            message = {**message, "headers": [*message.get("headers", ()), *extra]}
        elif message["type"] == "http.response.body" and drop_body:
            message = {**message, "body": b""}
        await send(message)

    return wrapped


async def _answer(send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode()),
        *headers, *_SECURITY_HEADERS]})
    await send({"type": "http.response.body", "body": body})


async def _redirect_with_cookie(scope, send, query: dict[str, str], token: bytes) -> None:
    """Answer ``?token=`` with the same address without it, and the cookie."""
    rest = urlencode([(k, v) for k, v in query.items() if k != TOKEN_PARAM])
    # One leading slash: "//host/..." would send the browser to another server.
    location = b"/" + (scope.get("raw_path") or scope["path"].encode()).lstrip(b"/")
    if rest:
        location += b"?" + rest.encode()
    cookie = TOKEN_COOKIE.encode() + b"=" + token + b"; HttpOnly; SameSite=Strict; Path=/"
    await _answer(send, 303, b"", [(b"location", location), (b"set-cookie", cookie)])
