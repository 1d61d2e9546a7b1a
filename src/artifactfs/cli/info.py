"""``artifactfs info``: which index, home, config and stores this shell
uses, and what chose each. It never creates anything: a missing SQLite
index is reported, not made (a mistyped ARTIFACTFS_HOME must show as such)."""

from __future__ import annotations

import os

import click


def _home() -> str:
    if home := os.environ.get("ARTIFACTFS_HOME"):
        return f"{home} (ARTIFACTFS_HOME)"
    xdg = [f"{name}={os.environ[name]}" for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME")
           if os.environ.get(name)]
    return f"XDG folders under HOME={os.environ.get('HOME', '(not set)')}" + (f" ({', '.join(xdg)})" if xdg else "")


def _stores(settings) -> list[tuple[str, str]]:
    """(label, value) of the active store and this machine's default store."""
    from sqlalchemy import select

    from artifactfs.index import get_index, hosts
    from artifactfs.index.models import Store
    from artifactfs.settings import machine_id

    chosen = settings.chosen_store
    with get_index().read() as session:
        default = hosts.default_store_name(session, machine_id(), str(settings.default_store_root))
        rows = {name: session.scalar(select(Store).where(Store.name == name, Store.removed_at.is_(None)))
                for name in {default, chosen or default}}

    def shown(name: str) -> str:
        row = rows[name]
        if row is None:
            return f"{name} (not created yet: `artifactfs init` creates it)" if name == default \
                else f"{name} (no such store in this index)"
        return f"{name} ({row.flavor}, {row.root_uri})"

    active = chosen or default
    why = "ARTIFACTFS_STORE" if os.environ.get("ARTIFACTFS_STORE") else (
        f"store set-active, in {settings.config_path}" if chosen else "this machine's default")
    return [("active store", f"{shown(active)} [{why}]"), ("default store", shown(default))]


@click.command("info")
def info_command() -> None:
    """Show the index, home, config and stores in use, and what chose each."""
    from sqlalchemy.engine import make_url

    from artifactfs.cli.output import console
    from artifactfs.settings import get_settings, index_url_source, machine_id
    from artifactfs.stores.secrets import mask_url

    settings = get_settings()
    url = make_url(settings.index_url)
    missing = url.get_backend_name() == "sqlite" and url.database and not os.path.exists(url.database)
    index = mask_url(settings.index_url) + (" (does not exist yet: any command that uses it creates it)"
                                            if missing else "")
    lines = [("index", f"{index} [{index_url_source()}]"), ("home", _home()),
             ("config", str(settings.config_path)), ("credentials", str(settings.credentials_path)),
             ("data", str(settings.data_dir)), ("cache", str(settings.cache_dir)), ("machine", machine_id())]
    if not missing:
        lines += _stores(settings)
    for label, value in lines:
        console.print(f"{label + ':':<15}{value}", highlight=False, markup=False, soft_wrap=True)
