"""Which machine a local store belongs to (index.hosts): rows recorded
before stores had owners are claimed only when it is safe, and then by one
machine; another machine's local store is refused with a clear line."""

from __future__ import annotations

import shutil

import pytest
from click.testing import CliRunner

from artifactfs.cli.main import cli

pytest_plugins = ["index_fixtures"]


def _forget_owner(name: str = "default") -> None:
    """Make a store look like one recorded before owners were."""
    from sqlalchemy import update

    from artifactfs.api import stores
    from artifactfs.index import get_index
    from artifactfs.index.models import Store

    with get_index().write() as session:
        session.execute(update(Store).where(Store.name == name).values(host_id=None))
    stores._defaults.clear()
    stores.forget_opened(None)


def _owner(name: str) -> str | None:
    from artifactfs.index import find_store_row, get_index

    with get_index().read() as session:
        return find_store_row(session, name).host_id


def _invoke(*args: str, expect: int = 0):
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == expect, (result.stdout, result.stderr)
    return result


def test_a_legacy_default_store_is_claimed_by_the_machine_that_holds_it(sqlite_home, monkeypatch):
    from artifactfs import load_artifact, save_artifact

    monkeypatch.setenv("ARTIFACTFS_MACHINE_ID", "machine-one")
    save_artifact([1], "x")
    _forget_owner()
    assert load_artifact("x") == [1]  # the first use claims it: its folder and payloads are here
    assert _owner("default") == "machine-one"
    assert save_artifact([2], "x").store == "default"


def test_a_legacy_store_whose_payloads_are_not_here_is_not_claimed(sqlite_home, monkeypatch, tmp_path):
    from artifactfs import get_store, save_artifact
    from artifactfs.api.stores import active_store_name
    from artifactfs.gc import fsck
    from artifactfs.index import get_index

    monkeypatch.setenv("ARTIFACTFS_MACHINE_ID", "machine-one")
    version = save_artifact([1], "x")
    _forget_owner()
    shutil.rmtree(version.uri)  # this folder does not hold what the index says it holds
    assert active_store_name() == "default-machine"  # a store of its own, not the legacy one
    assert _owner("default") is None
    assert get_store().name == "default-machine"
    # Reading stays possible where its folder exists, the pruner and fsck leave it alone.
    assert get_store("default").path == version.uri.rsplit("/x/", 1)[0]
    report = fsck(get_index())
    assert any(f.kind == "elsewhere" and "no recorded owner" in f.detail for f in report.findings)
    assert not any(f.kind == "missing-payload" for f in report.findings)
    # Recorded by hand, it is this machine's.
    _invoke("store", "update", "default", "--on-this-machine")
    assert _owner("default") == "machine-one"


def test_another_machines_local_store_is_refused_in_one_line(sqlite_home, monkeypatch):
    from artifactfs import save_artifact

    monkeypatch.setenv("ARTIFACTFS_MACHINE_ID", "machine-one")
    save_artifact([1], "x")
    monkeypatch.setenv("ARTIFACTFS_MACHINE_ID", "machine-two")
    from artifactfs.api import stores

    stores._defaults.clear()
    stores.forget_opened(None)
    result = _invoke("artifact", "export", "x", "out", expect=1)
    assert "local store of machine machine" in result.stderr and "shared store" in result.stderr
    assert result.stderr.count("Error:") == 1 and "Traceback" not in result.stderr
    # Taking it over needs --force (a reinstall changed the machine id).
    result = _invoke("store", "update", "default", "--on-this-machine", expect=1)
    assert "belongs to machine machine" in result.stderr
    _invoke("store", "update", "default", "--on-this-machine", "--force")
    assert _owner("default") == "machine-two"


def test_machine_ids_name_default_stores(sqlite_home, monkeypatch):
    from artifactfs.index import get_index
    from artifactfs.index.hosts import default_store_name, short_id

    assert short_id("0123456789abcdef0123456789abcdef") == "01234567"
    assert short_id("my machine/1") == "my-machi"
    monkeypatch.setenv("ARTIFACTFS_MACHINE_ID", "aaaaaaaa1")
    _invoke("init")
    with get_index().read() as session:
        assert default_store_name(session, "aaaaaaaa1") == "default"
        assert default_store_name(session, "bbbbbbbb") == "default-bbbbbbbb"
    monkeypatch.setenv("ARTIFACTFS_MACHINE_ID", "aaaaaaaa2")
    from artifactfs.api import stores

    stores._defaults.clear()
    out = _invoke("init").stdout
    assert "default-aaaaaaaa " in out or "default-aaaaaaaa (" in out
    with get_index().read() as session:  # two machines sharing the first 8 characters
        assert default_store_name(session, "aaaaaaaa3") == "default-aaaaaaaa3"
