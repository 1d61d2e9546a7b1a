"""``artifactfs ui``: serve the read-only web view of the index. The web
stack is imported only when the command runs, so the CLI starts fast."""

from __future__ import annotations

import os

import click

from artifactfs.cli.output import console, escape
from artifactfs.errors import ArtifactfsError


@click.command("ui")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8237, show_default=True, type=click.IntRange(0, 65535), help="Port (0: any free one).")
@click.option("--open", "open_browser", is_flag=True, help="Open the page in a browser.")
@click.option("--token", envvar="ARTIFACTFS_UI_TOKEN",
              help="Access token [default: generated and printed once]. Prefer ARTIFACTFS_UI_TOKEN or "
                   "--token-file: other users see command lines in `ps`.")
@click.option("--token-file", type=click.Path(dir_okay=False),
              help="Read the access token from the first line of this file (mode 600).")
@click.option("--no-token", is_flag=True,
              help="Serve without a token (loopback only): then every user of this machine can read "
                   "what you can through it.")
@click.option("--host-name", "host_names", multiple=True, metavar="NAME",
              help="Also answer to this host name (repeatable); by default only to the address and localhost, "
                   "so that no other site can reach the server through DNS rebinding.")
@click.option("--mountpoint", type=click.Path(file_okay=False),
              help="Where this index is mounted (`artifactfs mount`), for the mount paths the pages show.")
def ui_command(host: str, port: int, open_browser: bool, token: str | None, token_file: str | None, no_token: bool,
               host_names: tuple[str, ...], mountpoint: str | None) -> None:
    """Serve a read-only web view of runs, artifacts and lineage, with a JSON API under /api/v1/."""
    try:
        from artifactfs.web import server
    except ImportError as exc:
        raise ArtifactfsError(f"the web view needs packages that are not installed ({exc.name})",
                              "pip install 'artifactfs[web]'") from None
    serving = server.plan(host, port, token, no_token, token_file, host_names)

    def announce(ready) -> None:
        console.print(f"artifactfs ui: serving the index read-only at [bold]{escape(ready.url)}[/]", markup=True,
                      soft_wrap=True)
        if ready.generated:
            console.print("Open this address once (it carries a token generated now, shown only here; your "
                          "browser then keeps a cookie). Scripts send 'Authorization: Bearer <token>'.",
                          highlight=False, soft_wrap=True)
        elif ready.token:
            console.print("Every request must carry the token: open the address with ?token=<token> once, "
                          "or send 'Authorization: Bearer <token>'.", highlight=False, soft_wrap=True)
        console.print("Stop with Ctrl+C.", highlight=False)

    # A mount does not record which index it shows, so none is guessed.
    server.serve(serving, None, os.path.abspath(mountpoint) if mountpoint else None, open_browser, announce)
