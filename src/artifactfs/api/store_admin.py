"""Changing registered stores: this machine's credentials for a store
(``login``), its options (``update``), taking it out of use (``remove``), and
recording that a local store's folder is on this machine (``own_store``).

What is shared and what is not: the index (one per team) holds each store's
name, flavor, root and non-secret options. Credentials, and options that
name something on one machine (an AWS profile), stay in that machine's
owner-only credentials file; every machine logs in for itself.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from artifactfs.api.stores import CheckResult, check_store, describe_store, forget_opened, StoreInfo
from artifactfs.errors import ArtifactfsError, StoreError
from artifactfs.index import find_store_row, get_index, hosts, open_store
from artifactfs.index import stores as store_rows
from artifactfs.index.models import Store
from artifactfs.settings import get_settings, machine_id
from artifactfs.stores import env_prefix, env_secrets, get_flavor
from artifactfs.enums import CONDEMNED, LIVE


# -- login: this machine's credentials ------------------------------------------------


@dataclass(frozen=True)
class LoginResult:
    saved: tuple[str, ...]  # option names written to the credentials file (never values)
    check: CheckResult
    variables: tuple[str, ...] = ()  # the environment variables --from-env read them from


def login_store(name: str, options: dict[str, Any] | None = None, from_env: bool = False,
                profile: str | None = None) -> LoginResult:
    """Save this machine's credentials for an existing store in the
    owner-only credentials file (never the index), then check the store."""
    with get_index().read() as session:
        row = find_store_row(session, name)
    flavor = get_flavor(row.flavor)
    if flavor.protocol == "file":
        raise StoreError(f"store {name!r} is a local folder: it needs no credentials", "log in to a remote store")
    private = flavor.secret_options | flavor.machine_options
    values = dict(options or {})
    shared = sorted(set(values) - private)
    if shared:
        raise StoreError(
            f"option(s) {', '.join(shared)} of store {name!r} are shared by every machine, not credentials",
            f"change them with `artifactfs store update {name} -o KEY=VALUE`",
        )
    if profile is not None:
        if "profile" not in flavor.machine_options:
            raise StoreError(f"the {flavor.name} flavor has no credentials profiles", "pass -o KEY=VALUE instead")
        values["profile"] = profile
    variables: dict[str, str] = {}
    if from_env:
        variables = _from_environment(name, flavor)
        values = {**{option: os.environ[variable] for option, variable in variables.items()}, **values}
    if not values:
        raise StoreError(
            f"no credentials given for store {name!r}",
            f"pass -o KEY=VALUE ({', '.join(sorted(private))}), --from-env or --profile",
        )
    get_settings().write_credentials(name, values)
    forget_opened(name)
    return LoginResult(tuple(sorted(values)), check_store(name), tuple(sorted(set(variables.values()))))


def _from_environment(name: str, flavor) -> dict[str, str]:
    """``{option: variable}``: this store's ``ARTIFACTFS_STORE_<NAME>_<OPTION>``
    variables, else the provider's own (``AWS_ACCESS_KEY_ID``...)."""
    prefix = env_prefix(name)
    found = {k: prefix + k.upper() for k in env_secrets(name, flavor.secret_options)
             if k in flavor.secret_options | flavor.machine_options}
    for option, variable in flavor.env_credentials.items():
        if option not in found and os.environ.get(variable):
            found[option] = variable
    if not found:
        names = ", ".join(sorted(flavor.env_credentials.values())) or "none known"
        raise StoreError(
            f"no credentials for store {name!r} in the environment",
            f"set {env_prefix(name)}<OPTION> or the provider's variables ({names})",
        )
    return found


# -- update: shared options to the index, private ones to this machine ------------------


def update_store(name: str, options: dict[str, Any] | None = None, unset: tuple[str, ...] = ()) -> StoreInfo:
    """Change a store's options: shared ones in the index (every machine sees
    them; running mounts and daemons when they restart), secret and
    machine-local ones in this machine's credentials file."""
    options = dict(options or {})
    if not options and not unset:
        raise StoreError("nothing to change", f"pass -o KEY=VALUE or --unset KEY to `store update {name}`")

    def change(session) -> tuple[frozenset[str], dict[str, Any]]:
        row = find_store_row(session, name, lock=True)
        flavor = get_flavor(row.flavor)
        private_names = flavor.secret_options | flavor.machine_options
        shared = {k: v for k, v in options.items() if k not in private_names}
        store_rows.set_options(session, row, shared, [k for k in unset if k not in private_names])
        return private_names, {k: v for k, v in options.items() if k in private_names}

    private_names, private = get_index().run_write(change)
    settings = get_settings()
    if private:
        settings.write_credentials(name, private)
    dropped = [k for k in unset if k in private_names]
    if dropped:
        settings.forget_credentials(name, dropped)
    forget_opened(name)
    return describe_store(name)


# -- remove -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RemoveResult:
    name: str
    lost: int  # versions marked lost
    kept_row: bool  # the row stays (renamed) for the lost versions


def remove_store(name: str, force: bool = False) -> RemoveResult:
    """Take a store out of use. Refused while versions are recorded in it
    (with their count and what to do); ``force`` is only for a store that is
    unreachable or holds none of its payloads any more, and marks its
    versions ``lost``, which fsck lists from then on."""
    index = get_index()
    with index.read() as session:
        row = find_store_row(session, name)
        counts = store_rows.version_counts(session, row.id)
        examples = store_rows.some_versions(session, row.id, LIVE)
    live, condemned = counts.get(LIVE, 0), counts.get(CONDEMNED, 0)
    if (live or condemned) and not force:
        raise _still_used(name, live, condemned, examples)
    if live or condemned:
        _require_gone(row, name, live + condemned)

    def retire(session) -> RemoveResult:
        current = find_store_row(session, name, lock=True)  # saves into it wait, then fail cleanly
        again = store_rows.version_counts(session, current.id)
        if (again.get(LIVE, 0) or again.get(CONDEMNED, 0)) and not force:
            raise _still_used(name, again.get(LIVE, 0), again.get(CONDEMNED, 0), [])
        lost = store_rows.retire_store(session, current)
        return RemoveResult(name, lost, kept_row=bool(sum(again.values())))

    result = index.run_write(retire)
    settings = get_settings()
    settings.forget_credentials(name)
    if settings.read_config().get("active_store") == name:
        settings.write_config(active_store=None)
    forget_opened(name)
    return result


def _still_used(name: str, live: int, condemned: int, examples: list[str]) -> ArtifactfsError:
    parts = [f"{live} live version(s)" + (f" (e.g. {', '.join(examples)})" if examples else "")] if live else []
    if condemned:
        parts.append(f"{condemned} condemned version(s) whose payloads the pruner has not deleted yet")
    return StoreError(
        f"store {name!r} still holds {' and '.join(parts)}",
        f"move them with `artifactfs migrate --from {name} --to OTHER`, or let `artifactfs gc` prune them, "
        f"then remove it; --force only for a store that is unreachable or lost its files",
    )


def _require_gone(row: Store, name: str, count: int) -> None:
    """``--force`` with versions recorded: only if the store cannot be
    reached from here, or answers and holds none of their payloads."""
    try:
        store = open_store(row)
    except hosts.ForeignStoreError:
        return  # another machine's folder: unreachable from here by definition
    except ArtifactfsError:
        return
    if not check_store(name).ok:
        return
    try:
        holding = [entry for entry in store.listdir("") if not entry.startswith(".")]
    except FileNotFoundError:
        holding = []
    if holding:
        raise StoreError(
            f"store {name!r} answers and still holds files ({', '.join(sorted(holding)[:3])}...) for its "
            f"{count} recorded version(s): --force is only for a store that is unreachable or lost its files",
            f"move them with `artifactfs migrate --from {name} --to OTHER`, or prune them with `artifactfs gc`",
        )


# -- which machine holds a local store ---------------------------------------------------


def own_store(name: str, force: bool = False) -> StoreInfo:
    """Record this machine as the owner of a local store: one recorded before
    owners were, or (``force``) one whose machine id changed (a reinstall)."""
    machine = machine_id()

    def claim(session) -> None:
        row = find_store_row(session, name, lock=True)
        if not hosts.is_local_row(row):
            raise StoreError(f"store {name!r} is not a local folder: every machine uses it", "nothing to record")
        if row.host_id not in (None, machine) and not force:
            raise StoreError(
                f"store {name!r} belongs to machine {hosts.short_id(row.host_id)}",
                "if its files are on this machine now (a reinstall changed the machine id), pass --force",
            )
        if not os.path.isdir(row.root_uri):
            raise StoreError(f"store {name!r} has its folder at {row.root_uri}, which is not on this machine",
                             "run this on the machine that holds that folder")
        hosts.claim(session, row, machine)

    get_index().run_write(claim)
    forget_opened(name)
    return describe_store(name)
