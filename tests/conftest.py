"""Shared pytest fixtures: real servers for each session, a fresh ARTIFACTFS_HOME per test."""

import os
import time

# Must be set before anything imports gcsfs (see tests/servers.py).
os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] = "false"

import pytest

import servers


def _start_or_skip(start):
    """Start a server; skip if a prerequisite is missing here (fail instead in CI)."""
    try:
        return start()
    except servers.MissingPrerequisite as exc:
        reason = str(exc)
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so a missing prerequisite fails)", pytrace=False)
    pytest.skip(reason)


STOP_SECONDS: dict[str, float] = {}  # server name -> seconds its stop took (printed at the end)


def _serve(start):
    server = _start_or_skip(start)
    try:
        yield server
    finally:
        began = time.monotonic()
        server.stop()
        STOP_SECONDS[server.name] = time.monotonic() - began


TERMINAL_SIZE = ("COLUMNS", "LINES")


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    """Hand each pytest-xdist worker this process's COLUMNS and LINES (or their absence)."""
    node.workerinput["terminal_size"] = {name: os.environ.get(name) for name in TERMINAL_SIZE}


def pytest_configure(config):
    """A pytest-xdist worker starts with COLUMNS=80 and LINES=24 set (readline
    exports them), and rich fixes a console's width from COLUMNS when the
    console is made: take the controller's values instead, before any test
    module imports the CLI, so output is as wide as in a run without workers."""
    for name, value in getattr(config, "workerinput", {}).get("terminal_size", {}).items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def pytest_sessionfinish(session):
    """A pytest-xdist worker hands its servers' stop times to the controller."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["server_stops"] = dict(STOP_SECONDS)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """The controller (pytest-xdist) collects each worker's stop times."""
    for name, seconds in getattr(node, "workeroutput", {}).get("server_stops", {}).items():
        STOP_SECONDS[f"{node.gateway.id} {name}"] = seconds


def pytest_terminal_summary(terminalreporter):
    """Name each session server's stop time: they run in the last test's
    teardown, so a slow one shows there in --durations without its name."""
    if STOP_SECONDS:
        stops = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in STOP_SECONDS.items())
        terminalreporter.write_line(f"server stops: {stops}")


@pytest.fixture(scope="session")
def moto_server():
    yield from _serve(servers.start_moto)


@pytest.fixture(scope="session")
def azurite_server():
    yield from _serve(servers.start_azurite)


@pytest.fixture(scope="session")
def gcs_server():
    yield from _serve(servers.start_fake_gcs)


_POSTGRES: list = []  # the session's PostgreSQL server, once a test asked for it


@pytest.fixture(scope="session")
def postgres_server():
    for server in _serve(servers.start_postgres):
        _POSTGRES.append(server)
        yield server
        _POSTGRES.remove(server)


@pytest.fixture(autouse=True)
def _drop_test_databases():
    """Drop the databases a test created when it ends (after its other
    fixtures, which close their connections): left to the end, hundreds of
    them made stopping the server take minutes. Databases of module- and
    session-scoped fixtures were made before this snapshot and stay."""
    before = {id(server): set(server.created) for server in _POSTGRES}
    yield
    for server in _POSTGRES:
        if id(server) not in before:  # started during this test: its own and its fixtures' databases stay
            continue
        for name in [n for n in server.created if n not in before[id(server)]]:
            server.drop_database(name)


@pytest.fixture(scope="session")
def pgbouncer_server(postgres_server):
    yield from _serve(lambda: servers.start_pgbouncer(postgres_server))


@pytest.fixture
def artifactfs_home(tmp_path, monkeypatch):
    """A fresh, empty ARTIFACTFS_HOME; no index URL or store from the environment."""
    home = tmp_path / "artifactfs-home"
    home.mkdir()
    monkeypatch.setenv("ARTIFACTFS_HOME", str(home))
    monkeypatch.delenv("ARTIFACTFS_INDEX_URL", raising=False)
    monkeypatch.delenv("ARTIFACTFS_STORE", raising=False)
    yield home
