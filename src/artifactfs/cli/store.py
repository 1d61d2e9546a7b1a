"""``artifactfs store ...``: register, list, describe, activate, check, log
in to, update and remove stores."""

from __future__ import annotations

import json
import logging

import click
from rich.markup import escape

from artifactfs.api import store_admin
from artifactfs.api import stores as api
from artifactfs.cli.output import console, error_line, plain_console, table
from artifactfs.errors import AlreadyExistsError
from artifactfs.settings import get_settings
from artifactfs.stores import get_flavor, list_flavors, parse_options, split_secrets
from artifactfs.stores.secrets import secret_names


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
    flavor_cls = get_flavor(flavor)
    parsed = parse_options(options, flavor_cls.secret_options)
    try:
        store = api.register_store(name, flavor, path, parsed)
    except AlreadyExistsError:
        if not _registered_as_given(name, flavor_cls, path, parsed):
            raise
        # Running the same command again (a script, the README run twice) changes nothing.
        _say(f"Store {_bold(name)} is already registered as given ({escape(flavor)} at {escape(path)}); nothing changed.")
        return
    _say(f"Registered store {_bold(name)} ({escape(flavor)}) at {escape(store.path)}")
    _, secret = split_secrets(flavor_cls, parsed)
    if secret:
        path = escape(str(get_settings().credentials_path))
        _say(f"Secret options {escape(', '.join(secret_names(secret)))} saved to {path} (mode 600), not to the index.")
    _say(f"Check it with: artifactfs store check {escape(name)}")


def _registered_as_given(name: str, flavor_cls, path: str, options: dict) -> bool:
    """The store ``name`` exists with this flavor, root and options, and no secret is being given."""
    public, secret = split_secrets(flavor_cls, options)
    info = api.describe_store(name)
    return not secret and info.flavor == flavor_cls.name and info.path == flavor_cls.canonical_root(path)[1] \
        and info.options == public


@store_group.command("list")
def list_command() -> None:
    """List the registered stores."""
    rows = [
        ("*" if s.active else "", s.name, s.flavor, s.path, _options_text(s.options), ", ".join(s.secrets), s.owner)
        for s in api.list_stores()
    ]
    if not rows:
        _say("No stores yet: run `artifactfs init`.")
        return
    _show(table("Stores", ["active", "name", "flavor", "path", "options", "secrets (names)", "machine"],
                rows))


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
        ("machine", info.owner),
        ("options", _options_text(info.options) or "-"),
        ("secrets (names only)", ", ".join(info.secrets) or "- (environment or provider credentials)"),
    ]
    _show(table(f"Store {name}", ["field", "value"], rows))


@store_group.command("set-active")
@click.argument("name")
def set_active(name: str) -> None:
    """Make NAME the store new artifacts go to."""
    api.set_active_store(name)
    _say(f"Active store is now {_bold(name)}.")


@store_group.command("claim")
@click.argument("name")
@click.option("--force", is_flag=True, help="Also take a store whose marker names another index.")
def claim(name: str, force: bool) -> None:
    """Mark store NAME as this index's: gc then removes the payloads in it
    that this index does not know, once they are older than the orphan grace.
    To keep them, run `artifactfs fsck --adopt --store NAME` instead."""
    from artifactfs.gc.adopt import claim_store
    from artifactfs.index import find_store_row, get_index, open_store

    index = get_index()
    with index.read() as session:
        row = find_store_row(session, name)
    result = claim_store(index, open_store(row), row.id, force=force)
    if result.already:
        _say(f"Store {_bold(name)} already carries this index's marker.")
        return
    _say(f"Store {_bold(name)} now carries a marker naming this index.")
    if result.unknown:
        _say(f"It holds {result.unknown} payload folder(s) this index does not know: `artifactfs gc` removes them "
             "once they are older than the orphan grace (run `artifactfs fsck --adopt` first to keep them).")


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
    _show(table("Store flavors", ["flavor", "source", "schemes", "installed", "options (see README)"], rows))


@store_group.command("check")
@click.argument("name")
def check(name: str) -> None:
    """Write, read and delete a probe object in store NAME."""
    if not click.get_current_context().find_root().params.get("debug"):
        # gcsfs logs each failed request with a traceback; the failure is
        # reported below as one line (--debug shows the library's logs).
        logging.getLogger("gcsfs").setLevel(logging.CRITICAL)
    _report_check(name, api.check_store(name))


def _report_check(name: str, result: api.CheckResult) -> None:
    """One line: OK, or what failed and a hint (exit code 1)."""
    if result.ok:
        _say(f"[green]OK[/] store {escape(name)}: {escape(result.detail)}")
        return
    hints = {
        "credentials": "check the store's key/secret/token (credentials file or environment)",
        "bucket missing": "create the bucket or container, or fix --path",
        "network": "check the endpoint URL and that the server is reachable",
        "permissions": "check the folder's permissions",
    }
    error_line(f"store {name} failed at {result.step} ({result.problem}): {result.detail}", hints.get(result.problem))
    raise click.exceptions.Exit(1)


@store_group.command("login")
@click.argument("name")
@click.option("--option", "-o", "options", multiple=True, metavar="KEY=VALUE",
              help="A credential of this machine (key, secret, token, connection_string...; repeatable).")
@click.option("--from-env", is_flag=True,
              help="Take them from ARTIFACTFS_STORE_<NAME>_<OPTION> variables, else the provider's: "
                   "S3 AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN; GCS GOOGLE_APPLICATION_CREDENTIALS; "
                   "Azure AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_KEY, ... (it says which it read).")
@click.option("--profile", help="Use this credentials profile of this machine (S3: ~/.aws/credentials).")
def login(name: str, options: tuple[str, ...], from_env: bool, profile: str | None) -> None:
    """Save this machine's credentials for store NAME (owner-only credentials
    file, never the index), then check the store."""
    flavor = api.flavor_of(name)
    parsed = parse_options(options, flavor.secret_options)
    result = store_admin.login_store(name, parsed, from_env=from_env, profile=profile)
    path = escape(str(get_settings().credentials_path))
    read = f" (read from {escape(', '.join(result.variables))})" if result.variables else ""
    _say(f"Saved {escape(', '.join(result.saved))}{read} for store {_bold(name)} to {path} (mode 600).")
    _report_check(name, result.check)


@store_group.command("update")
@click.argument("name")
@click.option("--option", "-o", "options", multiple=True, metavar="KEY=VALUE",
              help="Set an option (repeatable): shared ones go to the index, secret ones to this machine only.")
@click.option("--unset", "unset", multiple=True, metavar="KEY", help="Remove an option (repeatable).")
@click.option("--on-this-machine", "here", is_flag=True,
              help="Record that this local store's folder is on this machine (a store recorded before machines "
                   "were, or with --force one whose machine id changed).")
@click.option("--force", is_flag=True, help="With --on-this-machine: take it over from another machine id.")
def update(name: str, options: tuple[str, ...], unset: tuple[str, ...], here: bool, force: bool) -> None:
    """Change the options of store NAME (its root and flavor never change:
    use `artifactfs migrate` to move payloads)."""
    if here:
        info = store_admin.own_store(name, force=force)
        _say(f"Store {_bold(name)} now belongs to {escape(str(info.owner))}.")
        if not options and not unset:
            return
    flavor = api.flavor_of(name)
    info = store_admin.update_store(name, parse_options(options, flavor.secret_options), unset)
    _say(f"Store {_bold(name)}: options now {escape(_options_text(info.options)) or '-'}; "
         f"this machine's credentials: {escape(', '.join(info.secrets)) or '-'}")


@store_group.command("remove")
@click.argument("name")
@click.option("--force", is_flag=True,
              help="Also when versions are recorded in it, if it is unreachable or lost its files: they become lost.")
def remove(name: str, force: bool) -> None:
    """Remove store NAME. Refused while versions live there: migrate or
    prune them first."""
    result = store_admin.remove_store(name, force=force)
    if result.lost:
        _say(f"Removed store {_bold(name)}: {result.lost} version(s) in it are now lost "
             "(hidden everywhere; `artifactfs fsck` lists them).")
    else:
        _say(f"Removed store {_bold(name)}.")


def _bold(name: str) -> str:
    return f"[bold]{escape(name)}[/]"


def _say(text: str) -> None:
    """One line of output in rich markup (every value in it escaped), never
    wrapped (paths and URIs stay whole)."""
    console.print(text, markup=True, soft_wrap=True)


def _show(renderable) -> None:
    """A table: fitted to the terminal, or at its natural width when the output
    goes to a pipe or a file, so that every cell stays whole for grep and awk."""
    if console.is_terminal:
        console.print(renderable)
    else:
        plain_console(file=console.file, width=100_000).print(renderable)


def _options_text(options: dict) -> str:
    return ", ".join(f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in sorted(options.items()))
