"""Runs the web view: decides the token (required off loopback), prints
the address once, and serves the app with uvicorn until interrupted."""

from __future__ import annotations

import socket
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass, replace

from artifactfs.errors import ArtifactfsError
from artifactfs.web.security import check_token, is_loopback, new_token

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8237


@dataclass(frozen=True)
class Serving:
    host: str
    port: int
    token: str | None
    generated: bool  # the token was made here: print it once

    @property
    def url(self) -> str:
        """The address to open; it carries a generated token (a given one
        the user knows already, and it should not end up in logs)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}/" + (f"?token={self.token}" if self.generated else "")


def plan(host: str, port: int, token: str | None) -> Serving:
    """Loopback needs no token (one given is still checked); any other
    address requires one, generated when not given."""
    if token is not None:
        return Serving(host, port, check_token(token), False)
    if is_loopback(host):
        return Serving(host, port, None, False)
    return Serving(host, port, new_token(), True)


def listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything is announced (port 0:
    any free port, read back from the socket)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # Named IPPROTO_TCP, so that asyncio sets TCP_NODELAY on each connection
    # (with proto 0 it does not, and keep-alive answers wait 40 ms for an ACK).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise ArtifactfsError(f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                              "pick another --port, or stop what listens there") from None
    sock.listen(128)
    return sock


def serve(serving: Serving, index_url: str | None, mount_root: str | None, open_browser: bool,
          announce: Callable[[Serving], None]) -> None:
    import uvicorn

    from artifactfs.web.app import WebConfig, create_app

    app = create_app(WebConfig(index_url=index_url, token=serving.token, mount_root=mount_root))
    sock = listen(serving.host, serving.port)
    serving = replace(serving, port=sock.getsockname()[1])
    config = uvicorn.Config(app, log_level="warning", access_log=False, server_header=False, proxy_headers=False)
    announce(serving)
    if open_browser:
        webbrowser.open(serving.url)
    uvicorn.Server(config).run(sockets=[sock])
