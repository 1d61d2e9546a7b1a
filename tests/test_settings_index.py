"""Settings from the environment, `init`, index migrations (SQLite and a real
PostgreSQL server)."""

import multiprocessing
import os
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from artifactfs.api import get_store, init, list_stores, register_store, set_active_store
from artifactfs.index import get_index, reset_index_cache
from artifactfs.index.migrate import current_revision, head_revision
from artifactfs.settings import get_settings

# The script beside the running interpreter: the environment under test, never one found first on PATH.
ARTIFACTFS = str(Path(sys.executable).with_name("artifactfs"))


@pytest.fixture(autouse=True)
def _fresh_engines():
    reset_index_cache()
    yield
    reset_index_cache()


def _env(**changes):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ARTIFACTFS_", "XDG_"))}
    env.update(changes)
    return env


def _run(args, env, check=True):
    result = subprocess.run([ARTIFACTFS, *args], env=env, capture_output=True, text=True, timeout=60)
    if check:
        assert result.returncode == 0, result.stderr
    return result


# -- settings --------------------------------------------------------------------


def test_artifactfs_home_holds_config_data_and_cache(artifactfs_home, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))  # ignored under HOME
    s = get_settings()
    assert s.config_dir == artifactfs_home / "config"
    assert s.data_dir == artifactfs_home / "data"
    assert s.cache_dir == artifactfs_home / "cache"
    assert s.index_url == f"sqlite:///{artifactfs_home / 'data' / 'index.db'}"
    assert s.default_store_root == artifactfs_home / "data" / "store"
    assert s.credentials_path.parent == artifactfs_home / "config"

    store = init()
    assert Path(store.path) == artifactfs_home / "data" / "store"
    assert (artifactfs_home / "data" / "index.db").is_file()
    assert not (tmp_path / "xdg-config").exists()


def test_relative_artifactfs_home_is_made_absolute(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ARTIFACTFS_HOME", "rel-home")
    assert get_settings().data_dir == tmp_path / "rel-home" / "data"


def test_config_file_is_read_again_whenever_it_changes(artifactfs_home):
    """``config.json`` is cached by its inode, size and times: an edit in
    place (same inode, same size) and a replacement are both seen at once."""
    settings = get_settings()
    settings.config_dir.mkdir(parents=True, exist_ok=True)
    settings.config_path.write_text('{"active_store": "aaa"}')
    assert get_settings().chosen_store == "aaa"
    settled = os.stat(settings.config_path).st_mtime_ns - 10 ** 10  # as if written long ago: cached
    os.utime(settings.config_path, ns=(settled, settled))
    assert get_settings().chosen_store == "aaa"
    with open(settings.config_path, "r+") as f:  # the same file, the same size
        f.write('{"active_store": "bbb"}')
    assert get_settings().chosen_store == "bbb"
    os.utime(settings.config_path, ns=(settled, settled))  # and the same times: only its ctime moved
    assert get_settings().chosen_store == "bbb"
    get_settings().write_config(active_store="cc")  # replaced atomically
    assert get_settings().chosen_store == "cc"
    settings.config_path.unlink()
    assert get_settings().chosen_store is None


def test_xdg_directories_without_artifactfs_home(monkeypatch, tmp_path):
    monkeypatch.delenv("ARTIFACTFS_HOME", raising=False)
    monkeypatch.delenv("ARTIFACTFS_INDEX_URL", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    s = get_settings()
    assert s.config_dir == tmp_path / "cfg" / "artifactfs"
    assert s.data_dir == tmp_path / "data" / "artifactfs"
    assert s.cache_dir == tmp_path / "cache" / "artifactfs"
    assert s.index_url == f"sqlite:///{tmp_path / 'data' / 'artifactfs' / 'index.db'}"

    store = init()
    assert Path(store.path) == tmp_path / "data" / "artifactfs" / "store"
    set_active_store("default")
    assert (tmp_path / "cfg" / "artifactfs" / "config.json").is_file()


def test_xdg_defaults_fall_back_to_the_home_folder(monkeypatch, tmp_path):
    for var in ("ARTIFACTFS_HOME", "ARTIFACTFS_INDEX_URL", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    s = get_settings()
    assert s.config_dir == tmp_path / ".config" / "artifactfs"
    assert s.data_dir == tmp_path / ".local" / "share" / "artifactfs"
    assert s.cache_dir == tmp_path / ".cache" / "artifactfs"


def test_index_url_override(artifactfs_home, monkeypatch, tmp_path):
    elsewhere = tmp_path / "elsewhere" / "my.db"
    monkeypatch.setenv("ARTIFACTFS_INDEX_URL", f"sqlite:///{elsewhere}")
    assert get_settings().index_url == f"sqlite:///{elsewhere}"
    init()
    assert elsewhere.is_file()
    assert not (artifactfs_home / "data" / "index.db").exists()
    # The default store still lives under the data folder.
    assert Path(get_store().path) == artifactfs_home / "data" / "store"


def test_store_env_overrides_active_store(artifactfs_home, monkeypatch, tmp_path):
    init()
    register_store("other", "local", str(tmp_path / "other"))
    register_store("third", "local", str(tmp_path / "third"))
    set_active_store("third")
    assert get_settings().active_store == "third"
    assert get_store().name == "third"
    monkeypatch.setenv("ARTIFACTFS_STORE", "other")
    assert get_settings().active_store == "other"
    assert get_store().name == "other"
    assert [s.name for s in list_stores() if s.active] == ["other"]
    monkeypatch.delenv("ARTIFACTFS_STORE")
    assert get_store().name == "third"


def test_active_store_env_naming_an_unknown_store_fails_clearly(artifactfs_home, monkeypatch):
    from artifactfs.errors import NotFoundError

    init()
    monkeypatch.setenv("ARTIFACTFS_STORE", "ghost")
    with pytest.raises(NotFoundError, match="ghost"):
        get_store()


# -- init ------------------------------------------------------------------------


def test_init_is_idempotent_via_the_api(artifactfs_home):
    first = init()
    (Path(first.path) / "payload.txt").write_text("kept")
    second = init()
    assert first.path == second.path
    stores = list_stores()
    assert [(s.name, s.flavor, s.path) for s in stores] == [("default", "local", first.path)]
    assert (Path(first.path) / "payload.txt").read_text() == "kept"
    with get_index().read() as session:
        assert session.execute(sa.text("SELECT count(*) FROM store")).scalar() == 1


def test_get_store_on_first_use_creates_default(artifactfs_home):
    store = get_store()
    assert store.name == "default"
    assert Path(store.path).is_dir()
    assert [s.name for s in list_stores()] == ["default"]


def test_init_is_idempotent_via_the_cli_subprocess(tmp_path):
    home = tmp_path / "home"
    env = _env(ARTIFACTFS_HOME=str(home))
    first = _run(["init"], env)
    second = _run(["init"], env)
    root = str(home / "data" / "store")
    assert root in first.stdout and root in second.stdout
    assert "default" in second.stdout
    db = sqlite3.connect(home / "data" / "index.db")
    try:
        rows = db.execute("SELECT name, flavor, root_uri FROM store").fetchall()
    finally:
        db.close()
    assert rows == [("default", "local", root)]
    listing = _run(["store", "list"], env).stdout
    assert listing.count("default") == 1


# -- migrations --------------------------------------------------------------------


def test_fresh_index_is_created_at_head(artifactfs_home):
    index = get_index()
    with index.engine.connect() as conn:
        assert current_revision(conn) == head_revision()
        tables = set(sa.inspect(conn).get_table_names())
    assert {"store", "index_state", "alembic_version"} <= tables
    # A second get_index in a fresh process-level cache does not migrate again.
    reset_index_cache()
    with get_index().engine.connect() as conn:
        assert current_revision(conn) == head_revision()


def test_sqlite_index_is_tuned(artifactfs_home):
    index = get_index()
    with index.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar().lower() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000


def _start_together(barrier, home, index_url, queue):
    """In a child process: wait for the others, then open the index and init."""
    try:
        os.environ["ARTIFACTFS_HOME"] = home
        os.environ.pop("ARTIFACTFS_STORE", None)
        if index_url:
            os.environ["ARTIFACTFS_INDEX_URL"] = index_url
        else:
            os.environ.pop("ARTIFACTFS_INDEX_URL", None)
        from artifactfs.api import init as child_init
        from artifactfs.index import get_index as child_get_index
        from artifactfs.index.migrate import current_revision as child_revision

        barrier.wait(timeout=60)
        index = child_get_index()
        store = child_init()
        with index.engine.connect() as conn:
            queue.put(("ok", child_revision(conn), store.path))
    except BaseException as exc:  # report to the parent
        queue.put(("error", f"{type(exc).__name__}: {exc}", None))


def _race(home: str, index_url: str | None, n: int = 3):
    ctx = multiprocessing.get_context("spawn")
    barrier, queue = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=_start_together, args=(barrier, home, index_url, queue)) for _ in range(n)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    return results


def test_processes_starting_at_once_on_a_fresh_sqlite_index(tmp_path):
    home = tmp_path / "race-home"
    results = _race(str(home), None)
    assert all(r[0] == "ok" for r in results), "\n".join(map(str, results))
    assert {r[1] for r in results} == {head_revision()}
    assert len({r[2] for r in results}) == 1
    db = sqlite3.connect(home / "data" / "index.db")
    try:
        assert db.execute("SELECT count(*) FROM alembic_version").fetchone() == (1,)
        assert db.execute("SELECT name FROM store").fetchall() == [("default",)]
    finally:
        db.close()


# -- PostgreSQL ------------------------------------------------------------------


@pytest.fixture
def pg_url(postgres_server, artifactfs_home, monkeypatch):
    url = postgres_server.create_database(f"afs_{uuid.uuid4().hex[:12]}")
    monkeypatch.setenv("ARTIFACTFS_INDEX_URL", url)
    return url


@pytest.mark.postgres
def test_postgres_index_init_register_list(pg_url, tmp_path):
    default = init()
    init()
    register_store("pg-local", "local", str(tmp_path / "pg-local"), {"auto_mkdir": True})
    set_active_store("pg-local")
    stores = {s.name: s for s in list_stores()}
    assert set(stores) == {"default", "pg-local"}
    assert stores["pg-local"].active
    assert stores["pg-local"].options == {"auto_mkdir": True}
    assert stores["default"].path == default.path
    assert get_store().name == "pg-local"
    index = get_index()
    assert index.engine.dialect.name == "postgresql"
    with index.engine.connect() as conn:
        assert current_revision(conn) == head_revision()
    # The rows really are in PostgreSQL, not in some SQLite file.
    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as conn:
            names = conn.execute(sa.text("SELECT name FROM store ORDER BY name")).scalars().all()
    finally:
        engine.dispose()
    assert names == ["default", "pg-local"]
    assert not (get_settings().data_dir / "index.db").exists()


@pytest.mark.postgres
def test_processes_starting_at_once_on_a_fresh_postgres_index(pg_url, tmp_path):
    results = _race(str(tmp_path / "pg-race-home"), pg_url)
    assert all(r[0] == "ok" for r in results), "\n".join(map(str, results))
    assert {r[1] for r in results} == {head_revision()}
    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM alembic_version")).scalar() == 1
            assert conn.execute(sa.text("SELECT name FROM store")).scalars().all() == ["default"]
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_postgres_index_through_the_cli_subprocess(pg_url, tmp_path):
    env = _env(ARTIFACTFS_HOME=str(tmp_path / "cli-home"), ARTIFACTFS_INDEX_URL=pg_url)
    _run(["init"], env)
    _run(["store", "register", "pgcli", "--flavor", "local", "--path", str(tmp_path / "pgcli")], env)
    listing = _run(["store", "list"], env).stdout
    assert "pgcli" in listing and "default" in listing
    assert not (tmp_path / "cli-home" / "data" / "index.db").exists()


def test_unusable_index_url_is_a_clear_error(artifactfs_home, monkeypatch):
    from artifactfs.errors import ConfigError

    monkeypatch.setenv("ARTIFACTFS_INDEX_URL", "nosuchdb://x/y")
    with pytest.raises(ConfigError, match="ARTIFACTFS_INDEX_URL"):
        init()
