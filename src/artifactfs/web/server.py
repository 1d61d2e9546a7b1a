"""Runs the web view: decides the token (one by default, as Jupyter does:
every local user can reach a loopback port), prints the address once,
and serves the app with uvicorn until interrupted."""

from __future__ import annotations

import html
import os
import socket
import stat
import tempfile
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from artifactfs.errors import ArtifactfsError
from artifactfs.web.security import HostRule, check_token, is_loopback, machine_name, new_token

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8237


@dataclass(frozen=True)
class Serving:
    host: str
    port: int
    token: str | None
    generated: bool  # the token was made here: print it once
    host_names: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        """The address to print; it carries a generated token (a given one
        the user knows already, and it should not end up in logs)."""
        return self.base + (f"?token={self.token}" if self.generated else "")

    @property
    def base(self) -> str:
        # Bound to every address: teammates need this machine's name, not loopback.
        host = machine_name() if self.host in ("0.0.0.0", "::") else self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}/"


def plan(host: str, port: int, token: str | None, no_token: bool = False, token_file: str | None = None,
         host_names: tuple[str, ...] = ()) -> Serving:
    """A token always, unless ``no_token`` on loopback: any user of the
    machine can reach a loopback port, and through it the owner's files.
    One given (``token``, or the first line of ``token_file``) is checked;
    otherwise one is generated and printed once."""
    if token_file is not None:
        if token is not None:
            raise ArtifactfsError("give the token one way: --token (or ARTIFACTFS_UI_TOKEN) or --token-file, not both",
                                  "unset ARTIFACTFS_UI_TOKEN, or leave --token-file out")
        token = read_token_file(token_file)
    if no_token:
        if token is not None:
            raise ArtifactfsError("--no-token and a token contradict each other", "leave one of them out")
        if not is_loopback(host):
            raise ArtifactfsError(f"--no-token is allowed on loopback only, and {host} is not",
                                  "leave --no-token out: a token is generated and printed")
        return Serving(host, port, None, False, host_names)
    if token is not None:
        return Serving(host, port, check_token(token), False, host_names)
    return Serving(host, port, new_token(), True, host_names)


def read_token_file(path: str) -> str:
    """The token in the first line of ``path``, which only its owner may
    read (a token others can read protects nothing)."""
    try:
        with open(path, encoding="utf-8") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            line = handle.readline().strip()
    except OSError as exc:
        raise ArtifactfsError(f"cannot read the token file {path}: {exc.strerror or exc}",
                              "give a file holding the token on its first line") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ArtifactfsError(f"the token file {path} is open to other users (mode {stat.S_IMODE(mode):o})",
                              f"chmod 600 {path}")
    if not line:
        raise ArtifactfsError(f"the token file {path} is empty", "write the token on its first line")
    return line


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

    app = create_app(WebConfig(index_url=index_url, token=serving.token, mount_root=mount_root,
                               hosts=HostRule(serving.host, serving.host_names)))
    sock = listen(serving.host, serving.port)
    serving = replace(serving, port=sock.getsockname()[1])
    announce(serving)
    opener = open_in_browser(serving) if open_browser else None
    if opener is not None:
        app = _removing_at_shutdown(app, opener)
    config = uvicorn.Config(app, log_level="warning", access_log=False, server_header=False, proxy_headers=False)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        if opener is not None:
            opener.unlink(missing_ok=True)


def _removing_at_shutdown(app, path: Path):
    """``app`` that removes ``path`` when the server shuts down (ASGI
    lifespan: it runs on Ctrl+C and SIGTERM, before the process ends)."""

    async def wrapped(scope, receive, send) -> None:
        if scope["type"] != "lifespan":
            await app(scope, receive, send)
            return

        async def receiving():
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                path.unlink(missing_ok=True)
            return message

        await app(scope, receiving, send)

    return wrapped


def open_in_browser(serving: Serving) -> Path | None:
    """Opens the view in a browser, logged in, without the token on any
    command line (a browser's is visible in `ps` to every user): the browser
    opens a file only its owner can read, which sends it on to the address
    with the token, as Jupyter does. Returns that file (removed at the end)."""
    if serving.token is None:
        webbrowser.open(serving.base)
        return None
    address = html.escape(f"{serving.base}?token={serving.token}")
    fd, name = tempfile.mkstemp(prefix="artifactfs-ui-", suffix=".html")  # mode 600
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(f'<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" content="0;url={address}">'
                     f'<title>artifactfs ui</title><p><a href="{address}">Open the artifactfs web view</a></p>\n')
    webbrowser.open(Path(name).as_uri())
    return Path(name)
