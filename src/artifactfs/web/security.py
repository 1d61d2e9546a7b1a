"""Who may ask the web view what: a pure ASGI middleware in front of the
whole app that answers only to the host names it serves (DNS rebinding),
lets only reads through (GET and HEAD), checks the access token on every
request when there is one, and puts the security headers on every answer.
Also the token rule itself and the masking of what must not be shown
(index URL passwords, secret store options).

The token travels as ``Authorization: Bearer <token>`` (scripts) or, for
browsers, once as ``?token=<token>``: that request is answered with a
redirect to the same address without it, setting an HttpOnly cookie named
after the port, carrying a value derived from the token and the port.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import socket
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, urlencode

from artifactfs.errors import ArtifactfsError
from artifactfs.stores.secrets import mask_url, split_secrets  # noqa: F401 - mask_url: the pages' import
from artifactfs.web.errors import error_body

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


def cookie_name(port: int | None) -> str:
    """The session cookie's name on a server listening on ``port``: browsers
    scope cookies by host, not port, so two servers on one host keep
    their own cookies apart by name."""
    return f"{TOKEN_COOKIE}_{port}" if port else TOKEN_COOKIE


def cookie_value(token: bytes, port: int | None) -> bytes:
    """What the cookie carries: not the token itself but a value derived
    from it and the port, so a cookie sent to another service on the same
    host (browsers do) reveals no token and opens no other server."""
    return hmac.new(token, f"artifactfs-cookie:{port}".encode(), hashlib.sha256).hexdigest().encode()


LOCAL_NAMES = ("localhost",)


def host_of(header: bytes | None) -> str | None:
    """The host name of a ``Host`` header, lower case, without port or
    brackets (``None`` when it cannot be read)."""
    if not header:
        return None
    text = header.decode("latin-1").strip().lower()
    if text.startswith("["):
        inside, bracket, _ = text[1:].partition("]")
        return inside if bracket else None
    name = text.rsplit(":", 1)[0] if text.count(":") == 1 else text
    return name.rstrip(".") or None


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None


def machine_name() -> str:
    """This machine's own name, as teammates reach a server bound to every
    address (no DNS lookup: the kernel's host name)."""
    return socket.gethostname().lower().rstrip(".")


class HostRule:
    """Which ``Host`` headers a server answers to: DNS rebinding gives a
    foreign page's name the address 127.0.0.1, and the browser then lets
    that page read this server's answers; what tells them apart is the
    name in ``Host``. Accepted: ``localhost`` (and ``*.localhost``, which
    resolves to loopback only), the bound address itself (any loopback
    address when bound to loopback, any address written as a number when
    bound to every address: a number cannot be rebound), and the names
    given with ``--host-name`` (and, bound to every address, this machine's
    own name, which is what the printed address names)."""

    def __init__(self, bound: str, names: tuple[str, ...] = ()) -> None:
        self.bound = _ip(bound)
        self.loopback = is_loopback(bound)
        if self.bound is None:  # bound by name: that name is its own
            names = (*names, bound)
        elif self.bound.is_unspecified:  # served to the network: under this machine's name too
            names = (*names, machine_name())
        self.names = frozenset(n.strip().lower().rstrip(".") for n in names if n.strip())

    def allows(self, host: str | None) -> bool:
        if host is None:
            return False
        if host in LOCAL_NAMES or host.endswith(".localhost") or host in self.names:
            return True
        address = _ip(host)
        if address is None:
            return False
        if self.bound is None:  # bound to a name ("localhost")
            return address.is_loopback
        if self.bound.is_unspecified or address == self.bound:
            return True
        return self.loopback and address.is_loopback

    def shown(self) -> str:
        """The names it answers to, for the refusal's message."""
        names = ["localhost", *sorted(self.names)]
        if self.bound is not None and not self.bound.is_unspecified:
            names.insert(0, str(self.bound))
        return ", ".join(names)


HEAD_ONLY = "artifactfs.head_only"


def head_only(scope) -> bool:
    """Whether the request was a ``HEAD`` (the guard hands it on as ``GET``):
    a route that would read a payload answers with its headers only."""
    return bool(scope.get(HEAD_ONLY))


class Guard:
    """The middleware: the Host rule, read-only, token, headers."""

    def __init__(self, app, token: str | None = None, hosts: HostRule | None = None) -> None:
        self.app = app
        self.token = token.encode() if token else None
        self.hosts = hosts or HostRule("127.0.0.1")

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "websocket":  # the view has none: refused before any check could be skipped
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":  # lifespan
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        host = host_of(_header(scope, b"host"))
        if not self.hosts.allows(host):
            named = f"the host name {host!r}" if host else "a request without a Host header"
            await _answer(send, path, 421, (
                f"this server does not answer to {named} (it answers to {self.hosts.shown()}): "
                "a page of another site may be trying to read it through DNS rebinding. If you opened it by "
                "that name yourself, start `artifactfs ui` with --host-name NAME"), [])
            return
        if scope["method"] not in READ_METHODS:
            await _answer(send, path, 405, "the web view is read-only: only GET and HEAD are allowed",
                          [(b"allow", b"GET, HEAD")])
            return
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
        if "\x00" in path or any("\x00" in k or "\x00" in v for k, v in query.items()):
            # No name in the index holds NUL, and PostgreSQL refuses it in a query.
            await _answer(send, path, 404, "no such page: the address holds a NUL character", [])
            return
        if self.token is not None:
            port = _port(scope)
            if TOKEN_PARAM in query and self._matches(query[TOKEN_PARAM].encode()):
                await _redirect_with_cookie(scope, send, query, cookie_name(port), cookie_value(self.token, port))
                return
            cookie = _cookie(scope, cookie_name(port))
            if not (self._matches(_bearer(scope)) or
                    (cookie is not None and hmac.compare_digest(cookie, cookie_value(self.token, port)))):
                await _answer(send, path, 401, "a token is required: send 'Authorization: Bearer <token>', "
                                               "or open the address printed by `artifactfs ui` once",
                              [(b"www-authenticate", b'Bearer realm="artifactfs"')])
                return
        head = scope["method"] == "HEAD"
        if head:
            scope = {**scope, "method": "GET", HEAD_ONLY: True}
        await self.app(scope, receive, _with_headers(send, drop_body=head))

    def _matches(self, given: bytes | None) -> bool:
        return bool(given) and hmac.compare_digest(given, self.token)


def _port(scope) -> int | None:
    server = scope.get("server") or (None, None)
    return server[1] if isinstance(server[1], int) else None


def _header(scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value
    return None


def _bearer(scope) -> bytes | None:
    value = _header(scope, b"authorization") or b""
    scheme, _, credentials = value.partition(b" ")
    return credentials.strip() if scheme.lower() == b"bearer" else None


def _cookie(scope, name: str) -> bytes | None:
    raw = _header(scope, b"cookie")
    if not raw:
        return None
    morsel = SimpleCookie(raw.decode("latin-1")).get(name)
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


async def _answer(send, path: str, status: int, detail: str, headers: list[tuple[bytes, bytes]]) -> None:
    """An error in the shape of every other (``errors``): JSON under ``/api/``, HTML elsewhere."""
    kind, body = error_body(path, status, detail)
    await _send(send, status, body, [(b"content-type", kind), *headers])


async def _send(send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-length", str(len(body)).encode()), *headers, *_SECURITY_HEADERS]})
    await send({"type": "http.response.body", "body": body})


async def _redirect_with_cookie(scope, send, query: dict[str, str], name: str, value: bytes) -> None:
    """Answer ``?token=`` with the same address without it, and the cookie:
    the address the browser keeps (history, bookmarks) holds no token."""
    rest = urlencode([(k, v) for k, v in query.items() if k != TOKEN_PARAM])
    # One leading slash: "//host/..." would send the browser to another server.
    location = b"/" + (scope.get("raw_path") or scope["path"].encode()).lstrip(b"/")
    if rest:
        location += b"?" + rest.encode()
    cookie = name.encode() + b"=" + value + b"; HttpOnly; SameSite=Strict; Path=/"
    await _send(send, 303, b"", [(b"location", location), (b"set-cookie", cookie), (b"cache-control", b"no-store")])
