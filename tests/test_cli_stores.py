"""The `artifactfs store` commands (in-process with CliRunner and as a real
subprocess), credentials handling, `store check` against real servers,
missing extras, and flavor plugins through the real entry-point mechanism."""

import importlib
import json
import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import servers
from artifactfs.index.migrate import NEW_INDEX
from artifactfs import fileio
from artifactfs.api import check_store, get_store, list_stores, register_store
from artifactfs.cli.main import cli
from artifactfs.errors import ConfigError, MissingExtraError, NotFoundError, PathEscapeError, StoreError
from artifactfs.settings import get_settings
from artifactfs.stores import Flavor, get_flavor, list_flavors, register_flavor
from artifactfs.stores import registry

pytest_plugins = ["store_fixtures"]

# The script beside the running interpreter: the environment under test, never one found first on PATH.
ARTIFACTFS = str(Path(sys.executable).with_name("artifactfs"))
BUILTINS = ["azure", "gcs", "local", "s3"]


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def invoke(*args: str, expect: int | None = 0):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=True)
    if expect is not None:
        assert result.exit_code == expect, (
            f"exit {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}\n{result.exception!r}"
        )
    return result


def run(*args: str, env: dict | None = None, expect: int | None = 0, timeout: float = 60):
    result = subprocess.run([ARTIFACTFS, *args], env=env or dict(os.environ), capture_output=True,
                            text=True, timeout=timeout)
    if expect is not None:
        assert result.returncode == expect, f"rc {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def assert_one_line_error(stderr: str, *fragments: str) -> None:
    """An error is one 'Error:' line (plus an optional 'Hint:' line), no traceback."""
    lines = [line for line in stderr.splitlines() if line.strip() and not line.startswith(NEW_INDEX)]
    assert lines, "no error output"
    assert lines[0].startswith("Error: "), stderr
    assert len(lines) <= 2 and all(line.startswith("Hint: ") for line in lines[1:]), stderr
    assert "Traceback" not in stderr
    for fragment in fragments:
        assert fragment in stderr, f"{fragment!r} not in {stderr!r}"


def table_rows(output: str, key: int = 0) -> dict[str, list[str]]:
    """Rows of a rich table by the cell in column ``key`` (a table is never
    wrapped when the output is not a terminal, so each row is one line)."""
    rows = {}
    for line in output.splitlines():
        if not line.startswith("│"):
            continue
        cells = [c.strip() for c in line.strip().strip("│").split("│")]
        rows[cells[key]] = cells
    return rows


def store_rows(output: str) -> dict[str, list[str]]:
    """`store list` rows by store name."""
    return table_rows(output, key=1)


# =============================================================================
# Help, and the store commands end to end
# =============================================================================


def _command_paths(group: click.Group, prefix=()):
    ctx = click.Context(group)
    for name in group.list_commands(ctx):  # lazy subcommands too
        command = group.get_command(ctx, name)
        yield (*prefix, name)
        if isinstance(command, click.Group):
            yield from _command_paths(command, (*prefix, name))


@pytest.mark.parametrize("path", [()] + sorted(_command_paths(cli)), ids=lambda p: " ".join(p) or "artifactfs")
def test_help_on_every_command(path, artifactfs_home):
    result = invoke(*path, "--help")
    assert "Usage:" in result.stdout
    assert result.stderr == ""


def test_help_in_a_real_subprocess(artifactfs_home):
    out = run("--help").stdout
    assert out.startswith("Usage: artifactfs") and "store" in out
    out = run("store", "register", "--help").stdout
    assert out.startswith("Usage: artifactfs store register") and "--flavor" in out


def test_store_commands_end_to_end(artifactfs_home, moto_server, tmp_path):
    bucket = _name("cli")
    servers.s3_bucket(moto_server, bucket)
    invoke("init")
    local_root = tmp_path / "local-store"
    out = invoke("store", "register", "loc", "--flavor", "local", "--path", str(local_root)).stdout
    assert f"Registered store loc (local) at {local_root}" in out
    assert local_root.is_dir()
    out = invoke("store", "register", "s3s", "-f", "s3", "-p", f"s3://{bucket}/prefix",
                 "-o", f"endpoint_url={moto_server.endpoint_url}", "-o", "key=testing",
                 "-o", "secret=testing").stdout
    assert f"s3://{bucket}/prefix" in out
    assert "Secret options key, secret saved to" in out

    rows = store_rows(invoke("store", "list").stdout)
    assert set(rows) >= {"default", "loc", "s3s"}
    assert rows["default"][0] == "*"
    assert rows["s3s"][2:4] == ["s3", f"s3://{bucket}/prefix"]
    assert rows["s3s"][4] == f"endpoint_url={moto_server.endpoint_url}"
    assert rows["s3s"][5] == "key, secret"
    assert rows["loc"][3] == str(local_root)

    out = invoke("store", "set-active", "s3s").stdout
    assert "Active store is now s3s" in out
    rows = store_rows(invoke("store", "list").stdout)
    assert rows["s3s"][0] == "*" and rows["default"][0] == ""
    assert get_store().name == "s3s"

    described = table_rows(invoke("store", "describe", "s3s").stdout)
    assert described["path"][1] == f"s3://{bucket}/prefix"
    assert described["flavor"][1] == "s3"
    assert described["active"][1] == "yes"
    assert described["secrets (names only)"][1] == "key, secret"

    flavors = table_rows(invoke("store", "flavors").stdout)
    for name in BUILTINS:
        assert flavors[name][1] == "built-in"
        assert flavors[name][3] == "yes"
    assert flavors["s3"][2] == "s3://, s3a://"

    out = invoke("store", "check", "s3s").stdout
    assert out.startswith("OK store s3s: wrote, read and deleted s3://")
    assert invoke("store", "check", "loc").stdout.startswith("OK store loc")
    assert sorted(os.listdir(local_root)) == [".artifactfs-store.json"]  # the probe is gone; the marker stays


def test_store_commands_in_a_real_subprocess(tmp_path, moto_server):
    bucket = _name("sub")
    servers.s3_bucket(moto_server, bucket)
    env = _clean_env(tmp_path / "home")
    run("init", env=env)
    run("store", "register", "s3p", "--flavor", "s3", "--path", f"s3://{bucket}/p",
        "--option", f"endpoint_url={moto_server.endpoint_url}", "--option", "key=testing",
        "--option", "secret=testing", env=env)
    run("store", "set-active", "s3p", env=env)
    rows = store_rows(run("store", "list", env=env).stdout)
    assert rows["s3p"][3] == f"s3://{bucket}/p"
    assert rows["s3p"][0] == "*" and rows["default"][0] == ""
    assert "OK store s3p" in run("store", "check", "s3p", env=env).stdout

    failed = run("store", "describe", "ghost", env=env, expect=1)
    assert_one_line_error(failed.stderr, "no store named 'ghost'", "s3p")
    debug = run("--debug", "store", "describe", "ghost", env=env, expect=1)
    assert "Traceback (most recent call last)" in debug.stderr
    assert "NotFoundError" in debug.stderr


# =============================================================================
# Readable errors
# =============================================================================


def test_errors_are_one_line_with_exit_code_1(artifactfs_home, tmp_path):
    invoke("init")
    result = invoke("store", "describe", "ghost", expect=1)
    assert_one_line_error(result.stderr, "no store named 'ghost'", "default")
    assert result.stdout == ""

    result = invoke("store", "set-active", "ghost", expect=1)
    assert_one_line_error(result.stderr, "ghost")
    assert get_settings().active_store == "default"

    result = invoke("store", "register", "x", "--flavor", "nosuch", "--path", str(tmp_path), expect=1)
    assert_one_line_error(result.stderr, "unknown store flavor 'nosuch'", ", ".join(BUILTINS))

    result = invoke("store", "register", "x", "--flavor", "local", "--path", str(tmp_path / "x"),
                    "-o", "novalue", expect=1)
    assert_one_line_error(result.stderr, "'novalue' is not KEY=VALUE")
    result = invoke("store", "register", "x", "--flavor", "local", "--path", str(tmp_path / "x"),
                    "-o", "=value", expect=1)
    assert_one_line_error(result.stderr, "is not KEY=VALUE")

    result = invoke("store", "register", "bad name!", "--flavor", "local", "--path", str(tmp_path / "y"), expect=1)
    assert_one_line_error(result.stderr, "store name 'bad name!' is not allowed")

    result = invoke("store", "register", "default", "--flavor", "local", "--path", str(tmp_path / "z"), expect=1)
    assert_one_line_error(result.stderr, "already exists")

    result = invoke("store", "register", "rel", "--flavor", "local", "--path", "relative/dir", expect=1)
    assert_one_line_error(result.stderr, "absolute folder path")

    result = invoke("store", "register", "s3bad", "--flavor", "s3", "--path", "/not/a/bucket", expect=1)
    assert_one_line_error(result.stderr, "s3://")

    result = invoke("store", "register", "s3bad", "--flavor", "s3", "--path", "s3://", expect=1)
    assert_one_line_error(result.stderr, "bucket")

    # Nothing half-registered by any of the failures above.
    assert [s.name for s in list_stores()] == ["default"]
    assert not get_settings().credentials_path.exists()


def test_debug_shows_the_traceback(artifactfs_home):
    invoke("init")
    result = CliRunner().invoke(cli, ["--debug", "store", "describe", "ghost"])
    assert result.exit_code == 1
    assert isinstance(result.exception, NotFoundError)
    assert result.exc_info is not None


def test_unknown_flavor_error_lists_plugins_too(artifactfs_home, plugin):
    result = invoke("store", "register", "x", "--flavor", "nosuch", "--path", "/tmp/x", expect=1)
    assert_one_line_error(result.stderr, "azure", "gcs", "local", "s3", plugin.flavor, "artifactfs.flavors")


# =============================================================================
# Credentials
# =============================================================================


def _index_bytes() -> bytes:
    """Every byte the SQLite index keeps on disk (main file, WAL and shm)."""
    data_dir = get_settings().data_dir
    return b"".join(p.read_bytes() for p in sorted(data_dir.glob("index.db*")))


def test_secrets_go_to_the_credentials_file_only(artifactfs_home, moto_server, azurite_server):
    bucket, container = _name("cred"), _name("cred")
    servers.s3_bucket(moto_server, bucket)
    servers.azure_container(azurite_server, container)
    key, secret = f"AKIA{uuid.uuid4().hex[:16].upper()}", f"s3cr3t-{uuid.uuid4().hex}"
    outputs = []
    outputs.append(invoke("store", "register", "s3c", "--flavor", "s3", "--path", f"s3://{bucket}/p",
                          "-o", f"endpoint_url={moto_server.endpoint_url}", "-o", f"key={key}",
                          "-o", f"secret={secret}").output)
    conn = azurite_server.connection_string
    outputs.append(invoke("store", "register", "azc", "--flavor", "azure", "--path", f"az://{container}/p",
                          "-o", f"connection_string={conn}").output)

    creds_path = get_settings().credentials_path
    assert stat.S_IMODE(creds_path.stat().st_mode) == 0o600
    creds = json.loads(creds_path.read_text())
    assert creds["s3c"] == {"key": key, "secret": secret}
    assert creds["azc"] == {"connection_string": conn}

    # Not in the index: neither in its rows nor anywhere in its files.
    db = sqlite3.connect(get_settings().data_dir / "index.db")
    try:
        options = dict(db.execute("SELECT name, options FROM store").fetchall())
    finally:
        db.close()
    assert json.loads(options["s3c"]) == {"endpoint_url": moto_server.endpoint_url}
    assert json.loads(options["azc"]) == {}
    raw = _index_bytes()
    for value in (key, secret, conn, servers.AZURITE_KEY):
        assert value.encode() not in raw

    # The stores work with the secrets from the file.
    outputs.append(invoke("store", "check", "s3c").output)
    outputs.append(invoke("store", "check", "azc").output)
    assert "OK store s3c" in outputs[-2] and "OK store azc" in outputs[-1]

    # And no command shows them.
    outputs.append(invoke("store", "list").output)
    outputs.append(invoke("store", "describe", "s3c").output)
    outputs.append(invoke("store", "describe", "azc").output)
    assert "key, secret" in outputs[-2] and "connection_string" in outputs[-1]
    for output in outputs:
        for value in (key, secret, conn, servers.AZURITE_KEY):
            assert value not in output
    assert key not in repr(get_store("s3c")) and secret not in repr(get_store("s3c"))


def test_credentials_file_is_private_from_its_creation(artifactfs_home, tmp_path):
    os.umask(0o022)
    register_store("gs1", "gcs", "gs://b/p", {"token": "anon", "project": "x"})
    path = get_settings().credentials_path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # A second store merges into the same file, still 0600.
    register_store("gs2", "gcs", "gs://b/q", {"token": "anon"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert set(json.loads(path.read_text())) == {"gs1", "gs2"}
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_numeric_looking_secrets_stay_text(artifactfs_home):
    invoke("store", "register", "num", "--flavor", "s3", "--path", "s3://bkt/p",
           "-o", "key=0123", "-o", "secret=1e5", "-o", "endpoint_url=http://127.0.0.1:1")
    creds = json.loads(get_settings().credentials_path.read_text())
    assert creds["num"] == {"key": "0123", "secret": "1e5"}


def test_credentials_readable_by_others_are_refused(artifactfs_home):
    register_store("s3x", "s3", "s3://bkt/p", {"key": "k-value", "secret": "s-value-123"})
    path = get_settings().credentials_path
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        get_store("s3x")
    result = invoke("store", "list", expect=1)
    assert_one_line_error(result.stderr, "chmod 600", str(path))
    result = invoke("store", "describe", "s3x", expect=1)
    assert_one_line_error(result.stderr, "chmod 600")
    assert "s-value-123" not in result.output
    check = check_store("s3x")
    assert not check.ok and "chmod 600" in check.detail
    path.chmod(0o600)
    assert get_store("s3x").name == "s3x"


class AuthMotoServer(servers.MotoServer):
    """moto that checks credentials (IAM auth on from the first request on)."""

    def popen_kwargs(self):
        return {"env": {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "3"}}


@pytest.fixture(scope="module")
def auth_moto():
    """(server, access key id, secret key, bucket): only that key may write."""
    import boto3

    server = servers._launch(AuthMotoServer)
    try:
        iam = boto3.client("iam", endpoint_url=server.endpoint_url, region_name="us-east-1",
                           aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
        iam.create_user(UserName="artifactfs")
        access = iam.create_access_key(UserName="artifactfs")["AccessKey"]
        iam.put_user_policy(UserName="artifactfs", PolicyName="s3", PolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
        }))
        import s3fs

        bucket = _name("auth")
        s3fs.S3FileSystem(key=access["AccessKeyId"], secret=access["SecretAccessKey"],
                          endpoint_url=server.endpoint_url, skip_instance_cache=True).mkdir(bucket)
        yield server, access["AccessKeyId"], access["SecretAccessKey"], bucket
    finally:
        server.stop()


def test_wrong_key_is_reported_without_the_secret(artifactfs_home, auth_moto):
    server, good_key, good_secret, bucket = auth_moto
    wrong_key, wrong_secret = "AKIAWRONG" + uuid.uuid4().hex[:8].upper(), "wrong-" + uuid.uuid4().hex
    invoke("store", "register", "bad", "--flavor", "s3", "--path", f"s3://{bucket}/p",
           "-o", f"endpoint_url={server.endpoint_url}", "-o", f"key={wrong_key}", "-o", f"secret={wrong_secret}")
    result = check_store("bad")
    assert not result.ok and result.problem == "credentials"
    cli_result = invoke("store", "check", "bad", expect=1)
    assert_one_line_error(cli_result.stderr, "store bad failed at write (credentials)")
    for secret in (wrong_key, wrong_secret):
        assert secret not in cli_result.output
        assert secret not in result.detail

    # Right key id, wrong secret: the signature does not match. (moto in auth
    # mode also rejects listings with a '/' in the query, so only the
    # classification and the redaction are checked here.)
    invoke("store", "register", "badsig", "--flavor", "s3", "--path", f"s3://{bucket}/q",
           "-o", f"endpoint_url={server.endpoint_url}", "-o", f"key={good_key}", "-o", f"secret={wrong_secret}")
    cli_result = invoke("store", "check", "badsig", expect=1)
    assert_one_line_error(cli_result.stderr, "(credentials)")
    assert wrong_secret not in cli_result.output and good_key not in cli_result.output


def _clean_env(home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARTIFACTFS_")}
    env["ARTIFACTFS_HOME"] = str(home)
    return env


def test_environment_overrides_store_options(tmp_path, moto_server):
    """ARTIFACTFS_STORE_<NAME>_<OPTION> beats the option in the index; it is
    read when a process starts using the store."""
    bucket = _name("envopt")
    servers.s3_bucket(moto_server, bucket)
    env = _clean_env(tmp_path / "home")
    run("store", "register", "env-s3", "--flavor", "s3", "--path", f"s3://{bucket}/env",
        "-o", f"endpoint_url=http://127.0.0.1:{servers.free_port()}",  # nothing listens there
        "-o", "key=testing", "-o", "secret=testing", env=env)
    assert_one_line_error(run("store", "check", "env-s3", env=env, expect=1).stderr, "(network)")
    env["ARTIFACTFS_STORE_ENV_S3_ENDPOINT_URL"] = moto_server.endpoint_url
    assert "OK store env-s3" in run("store", "check", "env-s3", env=env).stdout


def test_environment_secrets_beat_the_credentials_file(tmp_path, auth_moto):
    """With the wrong key in the credentials file and the right one in the
    environment, the store works. (moto's auth mode rejects the signature of
    any listing whose query holds a '/', so this reads and writes objects by
    name only.)"""
    server, good_key, good_secret, bucket = auth_moto
    env = _clean_env(tmp_path / "home")
    run("store", "register", "env-s3", "--flavor", "s3", "--path", f"s3://{bucket}/env",
        "-o", f"endpoint_url={server.endpoint_url}",
        "-o", "key=AKIAWRONGWRONGWRONG", "-o", "secret=wrong-secret-value", env=env)
    code = textwrap.dedent("""\
        from artifactfs.api import get_store
        store = get_store("env-s3")
        store.fs.pipe_file(store.resolve("by-env.txt"), b"written")
        print(store.read_bytes("by-env.txt").decode())
        """)

    def attempt():
        return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)

    refused = attempt()
    assert refused.returncode != 0 and "PermissionError" in refused.stderr
    env["ARTIFACTFS_STORE_ENV_S3_KEY"] = good_key
    env["ARTIFACTFS_STORE_ENV_S3_SECRET"] = good_secret
    worked = attempt()
    assert worked.returncode == 0, worked.stderr
    assert worked.stdout.strip() == "written"
    # Environment values never reach the files.
    home = tmp_path / "home"
    assert good_secret not in (home / "config" / "credentials.json").read_text()
    for db_file in (home / "data").glob("index.db*"):
        assert good_secret.encode() not in db_file.read_bytes()
        assert good_key.encode() not in db_file.read_bytes()


# =============================================================================
# store check against real servers
# =============================================================================


def test_store_check_ok_on_every_flavor(registered_store):
    out = invoke("store", "check", registered_store.name).stdout
    assert out.startswith(f"OK store {registered_store.name}: wrote, read and deleted {registered_store.path}/")
    assert check_store(registered_store.name).ok
    assert registered_store.find("") == [".artifactfs-store.json"]  # the probes are deleted; the marker stays


@pytest.mark.parametrize("flavor", ["s3", "gcs", "azure"])
def test_store_check_bucket_missing(request, artifactfs_home, flavor):
    server = request.getfixturevalue({"s3": "moto_server", "gcs": "gcs_server", "azure": "azurite_server"}[flavor])
    scheme = {"s3": "s3", "gcs": "gs", "azure": "az"}[flavor]
    register_store("nobucket", flavor, f"{scheme}://{_name('missing')}/p", dict(server.options))
    result = check_store("nobucket")
    assert (result.ok, result.step, result.problem) == (False, "write", "bucket missing"), result
    cli_result = invoke("store", "check", "nobucket", expect=1)
    assert_one_line_error(cli_result.stderr, "(bucket missing)", "create the bucket")


def test_store_check_server_stopped_is_network_and_fast(artifactfs_home):
    server = servers.start_moto()
    try:
        bucket = _name("dead")
        servers.s3_bucket(server, bucket)
        register_store("dying", "s3", f"s3://{bucket}/p", dict(server.options))
        assert check_store("dying").ok
        server.kill()
        began = time.monotonic()
        result = check_store("dying")
        elapsed = time.monotonic() - began
        assert (result.ok, result.problem) == (False, "network"), result
        assert elapsed < 20, f"store check took {elapsed:.1f} s against a stopped server"
        began = time.monotonic()
        cli_result = invoke("store", "check", "dying", expect=1)
        assert time.monotonic() - began < 20
        assert_one_line_error(cli_result.stderr, "(network)", "reachable")
        assert "testing" not in cli_result.stderr  # the key and secret of this server
    finally:
        server.stop()


# =============================================================================
# Missing extras
# =============================================================================


@pytest.mark.parametrize(("flavor", "module"), [("s3", "s3fs"), ("gcs", "gcsfs"), ("azure", "adlfs")])
def test_missing_extra_names_the_pip_command(artifactfs_home, monkeypatch, flavor, module):
    scheme = {"s3": "s3", "gcs": "gs", "azure": "az"}[flavor]
    register_store("before", flavor, f"{scheme}://bkt/p")  # registered while installed
    monkeypatch.setitem(sys.modules, module, None)  # now `import module` fails
    hint = f"pip install 'artifactfs[{flavor}]'"

    cls = get_flavor(flavor)
    assert not cls.is_installed()
    with pytest.raises(MissingExtraError, match=hint.replace("[", r"\[").replace("]", r"\]")):
        cls.require_installed()
    with pytest.raises(MissingExtraError) as caught:
        register_store("after", flavor, f"{scheme}://bkt/p")
    assert hint in str(caught.value) and module in str(caught.value)
    with pytest.raises(MissingExtraError):
        get_store("before").fs  # noqa: B018 - building the filesystem needs the module
    assert [s.name for s in list_stores()] == ["before"]

    result = invoke("store", "register", "after", "--flavor", flavor, "--path", f"{scheme}://bkt/p", expect=1)
    assert_one_line_error(result.stderr, hint)
    flavors = table_rows(invoke("store", "flavors").stdout)
    assert flavors[flavor][3] == f"no: {hint}"
    assert flavors["local"][3] == "yes"
    result = invoke("store", "check", "before", expect=1)
    assert_one_line_error(result.stderr, hint)


# =============================================================================
# Flavor plugins through the entry-point group artifactfs.flavors
# =============================================================================

PLUGIN_MODULE = '''
from artifactfs.errors import StoreError
from artifactfs.stores import Flavor


class MemoryFlavor(Flavor):
    """fsspec's in-memory filesystem: paths are '/bucket/prefix/...'."""

    name = "{flavor}"
    schemes = ("memory",)
    protocol = "memory"
    option_help = {{"(none)": "an in-process memory filesystem"}}

    @classmethod
    def canonical_root(cls, uri):
        scheme, native = cls.split_uri(uri)
        native = "/" + (native or "").strip("/")
        if scheme not in cls.schemes or native == "/" or ".." in native.split("/"):
            raise StoreError(f"a memory store needs memory://<bucket>/<prefix>, got {{uri!r}}")
        return native, cls.to_uri(native)

    @classmethod
    def to_uri(cls, native):
        return "memory://" + native


class ShadowLocal(MemoryFlavor):
    name = "local"
'''


class Plugin:
    def __init__(self, folder: Path, module: str, dist: str, flavor: str) -> None:
        self.folder, self.module, self.dist, self.flavor = folder, module, dist, flavor


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """A distribution on sys.path declaring flavors in group artifactfs.flavors:
    a memory flavor, a plugin named like a built-in, and a broken one."""
    folder = tmp_path / "plugins"
    folder.mkdir()
    module = f"afs_memflavor_{uuid.uuid4().hex[:8]}"
    dist = "artifactfs-memflavor"
    flavor = "memory"
    (folder / f"{module}.py").write_text(PLUGIN_MODULE.format(flavor=flavor))
    info = folder / "artifactfs_memflavor-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(f"""\
        [artifactfs.flavors]
        {flavor} = {module}:MemoryFlavor
        local = {module}:ShadowLocal
        broken = {module}_missing:Nothing
        """))
    monkeypatch.syspath_prepend(str(folder))
    importlib.invalidate_caches()
    yield Plugin(folder, module, dist, flavor)
    sys.modules.pop(module, None)
    importlib.invalidate_caches()


def test_plugin_is_listed_and_cannot_shadow_a_builtin(plugin):
    infos = {i.name: i for i in list_flavors()}
    assert infos["memory"].source == f"plugin {plugin.dist}"
    assert infos["memory"].target == f"{plugin.module}:MemoryFlavor"
    assert infos["local"].source == "built-in"
    assert get_flavor("local").__module__ == "artifactfs.stores.local"
    assert get_flavor("memory").__module__ == plugin.module
    with pytest.raises(StoreError, match="broken"):
        get_flavor("broken")


def test_plugin_store_works_through_fileio(artifactfs_home, plugin):
    bucket = _name("mem")
    store = register_store("mem", "memory", f"memory://{bucket}/prefix")
    assert store.path == f"memory:///{bucket}/prefix"
    uri = f"memory:///{bucket}/prefix/dir/hello.txt"
    with fileio.open(uri, "w") as f:
        f.write("from a plugin")
    with fileio.open(f"memory://{bucket}/prefix/dir/hello.txt") as f:
        assert f.read() == "from a plugin"
    assert fileio.listdir(f"memory:///{bucket}/prefix/dir") == ["hello.txt"]
    assert fileio.exists(uri) and fileio.size(uri) == len("from a plugin")
    fileio.copy(uri, f"memory:///{bucket}/prefix/copy.txt")
    assert get_store("mem").read_bytes("copy.txt") == b"from a plugin"
    assert check_store("mem").ok
    # Confinement holds for plugin flavors too.
    with pytest.raises(PathEscapeError, match="'mem'"):
        get_store("mem").open("../prefix2/x", "w")
    with pytest.raises(NotFoundError):
        fileio.open(f"memory:///{bucket}/prefix2/x", "w")
    import fsspec

    assert not fsspec.filesystem("memory").exists(f"/{bucket}/prefix2/x")
    rows = store_rows(invoke("store", "list").stdout)
    assert rows["mem"][2:4] == ["memory", f"memory:///{bucket}/prefix"]


def test_plugin_in_store_flavors_command(artifactfs_home, plugin):
    rows = table_rows(invoke("store", "flavors").stdout)
    assert rows["memory"][1] == f"plugin {plugin.dist}"
    assert rows["memory"][2] == "memory://"
    assert rows["memory"][3] == "yes"
    assert rows["local"][1] == "built-in"
    assert rows["broken"][3].startswith("broken:")


def test_plugin_through_a_real_subprocess(tmp_path, plugin):
    env = _clean_env(tmp_path / "home")
    env["PYTHONPATH"] = os.pathsep.join([str(plugin.folder), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    rows = table_rows(run("store", "flavors", env=env).stdout)
    assert rows["memory"][1] == f"plugin {plugin.dist}"
    run("store", "register", "m", "--flavor", "memory", "--path", "memory://b/p", env=env)
    assert "OK store m" in run("store", "check", "m", env=env).stdout
    result = run("store", "register", "x", "--flavor", "broken", "--path", "memory://b/x", env=env, expect=1)
    assert_one_line_error(result.stderr, "broken", "cannot be loaded")


def test_register_flavor_refuses_duplicates(monkeypatch, plugin):
    monkeypatch.setattr(registry, "_registered", {})

    class Fresh(Flavor):
        name = "fresh-" + uuid.uuid4().hex[:6]
        schemes = ("fresh",)
        protocol = "memory"

    class SameName(Fresh):
        pass

    class LikeBuiltin(Fresh):
        name = "s3"

    class LikePlugin(Fresh):
        name = "memory"

    assert register_flavor(Fresh) is Fresh
    assert register_flavor(Fresh) is Fresh  # the same class again is harmless
    assert get_flavor(Fresh.name) is Fresh
    assert {i.name: i.source for i in list_flavors()}[Fresh.name] == "registered"
    for dup in (SameName, LikeBuiltin, LikePlugin):
        with pytest.raises(StoreError, match="already exists"):
            register_flavor(dup)
    assert get_flavor("s3").__module__ == "artifactfs.stores.s3"
    assert get_flavor("memory").__module__ == plugin.module
    with pytest.raises(StoreError, match="not a subclass"):
        register_flavor(dict)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "error, problem",
    [
        # A missing GCS bucket: the message is only the upload URL, whose port or
        # object name may contain "403" by chance; that is no status code.
        (FileNotFoundError("http://127.0.0.1:40312/upload/storage/v1/b/x/o?name=p%2F.probe-ab401cd"), "bucket missing"),
        (PermissionError("403 Forbidden"), "credentials"),
        (OSError("Could not connect to the endpoint URL: \"http://127.0.0.1:1/b\""), "network"),
    ],
)
def test_store_errors_are_classified_by_words_not_digits_in_urls(error, problem):
    from artifactfs.api.stores import classify_store_error

    assert classify_store_error(error) == problem
