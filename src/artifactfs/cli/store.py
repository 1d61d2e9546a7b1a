"""``artifactfs store ...``: register, list, describe, activate and check stores."""

from __future__ import annotations

import json

import click

from artifactfs.api import stores as api
from artifactfs.cli.output import console, error_line, table
from artifactfs.settings import get_settings
from artifactfs.stores import get_flavor, list_flavors, parse_options, split_secrets


@click.group("store")
def store_group() -> None:
    """Manage artifact stores (local folders, S3, GCS, Azure, plugins)."""


@store_group.command("register")
@click.argument("name")
@click.option("--flavor", "-f", required=True, help="local, s3, gcs, azure or a plugin flavor.")
@click.option("--path", "-p", "path", required=True, help="Root URI, e.g. s3://bucket/prefix or /data/artifacts.")
@click.option("--option", "-o", "options", multiple=True, metavar="KEY=VALUE",
              help="Flavor option (repeatable). Secret ones (keys, tokens) go to the owner-only credentials file.")
def register(name: str, flavor: str, path: str, options: tuple[str, ...]) -> None:
    """Register a store NAME rooted at --path."""
    parsed = parse_options(options)
    store = api.register_store(name, flavor, path, parsed)
    console.print(f"Registered store [bold]{name}[/] ({flavor}) at {store.path}", highlight=False)
    _, secret = split_secrets(get_flavor(flavor), parsed)
    if secret:
        console.print(
            f"Secret options {', '.join(sorted(secret))} saved to {get_settings().credentials_path} (mode 600).",
            highlight=False,
        )
    console.print(f"Check it with: artifactfs store check {name}", highlight=False)


@store_group.command("list")
def list_command() -> None:
    """List the registered stores."""
    rows = [
        ("*" if s.active else "", s.name, s.flavor, s.path, _options_text(s.options), ", ".join(s.secrets))
        for s in api.list_stores()
    ]
    if not rows:
        console.print("No stores yet: run `artifactfs init`.")
        return
    console.print(table("Stores", ["active", "name", "flavor", "path", "options", "secrets (names)"], rows))


@store_group.command("describe")
@click.argument("name")
def describe(name: str) -> None:
    """Show one store."""
    info = api.describe_store(name)
    rows = [
        ("name", info.name),
        ("flavor", info.flavor),
        ("path", info.path),
        ("active", "yes" if info.active else "no"),
        ("options", _options_text(info.options) or "-"),
        ("secrets (names only)", ", ".join(info.secrets) or "- (environment or provider credentials)"),
    ]
    console.print(table(f"Store {name}", ["field", "value"], rows))


@store_group.command("set-active")
@click.argument("name")
def set_active(name: str) -> None:
    """Make NAME the store new artifacts go to."""
    api.set_active_store(name)
    console.print(f"Active store is now [bold]{name}[/].", highlight=False)


@store_group.command("flavors")
def flavors() -> None:
    """List the store flavors, built-in and plugins."""
    rows = []
    for info in list_flavors():
        try:
            cls = get_flavor(info.name)
            installed = "yes" if cls.is_installed() else f"no: pip install 'artifactfs[{cls.extra}]'"
            schemes = ", ".join(f"{s}://" for s in cls.schemes)
            options = ", ".join(cls.option_help)
        except Exception as exc:  # a broken plugin must not hide the others
            installed, schemes, options = f"broken: {exc}", "", ""
        rows.append((info.name, info.source, schemes, installed, options))
    console.print(table("Store flavors", ["flavor", "source", "schemes", "installed", "options (see README)"], rows))


@store_group.command("check")
@click.argument("name")
def check(name: str) -> None:
    """Write, read and delete a probe object in store NAME."""
    result = api.check_store(name)
    if result.ok:
        console.print(f"[green]OK[/] store {name}: {result.detail}", highlight=False)
        return
    hints = {
        "credentials": "check the store's key/secret/token (credentials file or environment)",
        "bucket missing": "create the bucket or container, or fix --path",
        "network": "check the endpoint URL and that the server is reachable",
        "permissions": "check the folder's permissions",
    }
    error_line(f"store {name} failed at {result.step} ({result.problem}): {result.detail}", hints.get(result.problem))
    raise click.exceptions.Exit(1)


def _options_text(options: dict) -> str:
    return ", ".join(f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in sorted(options.items()))
