"""A new user's and a new teammate's first hour (issue 22): help and errors
in one table, the line a command says when it creates a new index, `artifactfs
info`, a read-only home, the index URL kept in the config file, and masking
a database password in its URL field only. The real `artifactfs` program runs
in a fresh home for each case."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from artifactfs.index.migrate import NEW_INDEX

ARTIFACTFS = str(Path(sys.executable).with_name("artifactfs"))


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ARTIFACTFS_", "XDG_"))}
    env.update(ARTIFACTFS_HOME=str(home), COLUMNS="300", **extra)
    return env


def cli(home: Path, *args: str, env: dict | None = None, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([ARTIFACTFS, *args], env=env or _env(home, **extra), capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]
    code: int
    out: tuple[str, ...] = ()  # on stdout
    err: tuple[str, ...] = ()  # on stderr
    never: tuple[str, ...] = ()  # on neither


CASES = [
    Case("plain artifactfs: the help once, success", (), 0, out=("Usage: artifactfs", "Commands:"),
         never=("Error:",)),
    Case("--debug anywhere on the line", ("artifact", "show", "nope", "--debug"), 1,
         err=("Traceback", "NotFoundError")),
    Case("an option without its value points at its command's help", ("gc", "--grace"), 2,
         err=("Error: Option '--grace' requires an argument", "see `artifactfs gc --help`")),
    Case("same, one level deeper", ("gc", "daemon", "--every"), 2, err=("see `artifactfs gc daemon --help`",)),
    Case("a missing policy file is a usage error with a hint", ("gc", "--policy", "/missing/policy.toml"), 2,
         err=("--policy", "does not exist", "Hint: see `artifactfs gc --help` for --policy")),
    Case("mount --status takes no MOUNTPOINT", ("mount", "--status", "extra"), 2,
         err=("--status", "takes no MOUNTPOINT", "'extra'")),
    Case("run list -n is documented", ("run", "list", "--help"), 0, out=("-n, --limit", "Show at most this many runs")),
    Case("mount names where its log and cache go", ("mount", "--help"), 0, out=("--log-file", "--cache-dir")),
    Case("store login --from-env says which variables it reads", ("store", "login", "--help"), 0,
         out=("ARTIFACTFS_STORE_<NAME>_<OPTION>", "AWS_ACCESS_KEY_ID", "GOOGLE_APPLICATION_CREDENTIALS",
              "AZURE_STORAGE_CONNECTION_STRING")),
    Case("init --index-url is documented", ("init", "--help"), 0, out=("--index-url", "credentials")),
    Case("info is a command", ("--help",), 0, out=("info ",)),
    Case("defaults are shown one way, as click shows its own", ("lineage", "--help"), 0,
         out=("[default: both]", "[default: no limit]", "[default: stdout]"), never=("(default",)),
    Case("a bad --index-url is a usage error", ("init", "--index-url", "not a url"), 2,
         err=("--index-url", "not a SQLAlchemy URL")),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_help_and_errors(case: Case, tmp_path):
    result = cli(tmp_path / "home", *case.argv)
    assert result.returncode == case.code, (result.stdout, result.stderr)
    shown = " ".join(result.stdout.split())  # help text wraps at any space
    for text in case.out:
        assert text in shown, (text, result.stdout)
    for text in case.err:
        assert text in result.stderr, (text, result.stderr)
    for text in case.never:
        assert text not in result.stdout + result.stderr
    assert (result.stdout + result.stderr).count("Usage: artifactfs") <= 1


def test_a_new_index_is_announced_once_and_info_names_what_is_in_use(tmp_path):
    """A mistyped ARTIFACTFS_HOME must not pass for an index whose artifacts
    are gone: info names the index without creating it, the first command
    that opens it says it created it (on stderr, once)."""
    home = tmp_path / "typo-home"
    info = cli(home, "info")
    assert info.returncode == 0, info.stderr
    assert "does not exist yet" in info.stdout and f"{home} (ARTIFACTFS_HOME)" in info.stdout
    assert not (home / "data" / "index.db").exists()
    first = cli(home, "artifact", "list")
    assert first.returncode == 0 and first.stdout.strip() == "No artifacts yet."
    assert f"{NEW_INDEX}sqlite:///{home}/data/index.db" in first.stderr
    again = cli(home, "artifact", "list")
    assert again.returncode == 0 and again.stderr == ""
    from_python = subprocess.run([sys.executable, "-c", "from artifactfs import save_artifact; save_artifact(1, 'x')"],
                                 env=_env(tmp_path / "other"), capture_output=True, text=True, timeout=120)
    assert from_python.returncode == 0 and NEW_INDEX in from_python.stderr
    cli(home, "init")
    shown = cli(home, "info").stdout
    for label in ("index:", "home:", "config:", "credentials:", "data:", "cache:", "active store:", "default store:"):
        assert label in shown, (label, shown)
    assert f"sqlite:///{home}/data/index.db [the default" in shown
    assert f"default (local, {home}/data/store) [this machine's default]" in shown


def test_a_read_only_home_names_the_variables_that_move_it(tmp_path):
    """The home is a read-only file system (a mount namespace of its own)."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare for a read-only mount")
    home = tmp_path / "ro-home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ARTIFACTFS_", "XDG_"))}
    env["HOME"] = str(home)
    result = subprocess.run(["unshare", "-m", "sh", "-c", 'mount -t tmpfs -o ro tmpfs "$HOME" && exec "$0" artifact list',
                             ARTIFACTFS], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    assert f"cannot create {home}/.local: Read-only file system" in result.stderr
    for name in ("ARTIFACTFS_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME"):
        assert name in result.stderr
    assert "Traceback" not in result.stderr and "Errno" not in result.stderr


def test_mount_names_log_file_when_its_log_cannot_be_written(tmp_path):
    point = tmp_path / "mnt"
    point.mkdir()
    if os.access("/sys", os.W_OK) and os.geteuid() != 0:
        pytest.skip("needs a folder that cannot be made")
    try:
        result = cli(tmp_path / "home", "mount", str(point), "--log-file", "/sys/artifactfs-nope/mount.log")
    finally:  # a mount that came up anyway (code that ignores --log-file) never stays behind
        if os.path.ismount(point):
            subprocess.run(["fusermount3", "-u", str(point)], capture_output=True, timeout=60)
    assert result.returncode == 1, result.stderr
    assert "cannot write the mount's log file /sys/artifactfs-nope/mount.log" in result.stderr
    assert "--log-file" in result.stderr and "--cache-dir" in result.stderr


def test_init_index_url_keeps_it_in_the_config_and_masks_only_the_password(postgres_server, tmp_path):
    """`init --index-url` writes the URL to the config file and its password
    to the owner-only credentials file; later commands need no variable.
    The password `team` is masked where it stands, not in a path."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    url = postgres_server.create_database(name).replace("://postgres@", "://postgres:team@")
    home = tmp_path / "team" / "homes" / "me"
    init = cli(home, "init", "--index-url", url)
    assert init.returncode == 0, init.stderr
    config = json.loads((home / "config" / "config.json").read_text())
    assert config["index_url"] == url.replace(":team@", "@")
    credentials = home / "config" / "credentials.json"
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600 and "team" in credentials.read_text()
    info = cli(home, "info")
    assert info.returncode == 0, info.stderr
    assert url.replace(":team@", ":***@") in info.stdout and "index_url in" in info.stdout
    assert f"{home}/data/store" in info.stdout  # the word `team` in a path stays
    assert "***" not in info.stdout.replace(":***@", "")
    assert cli(home, "artifact", "list").stdout.strip() == "No artifacts yet."
    opened = subprocess.run([sys.executable, "-c", "from artifactfs.index import get_index; get_index(); "
                             "from artifactfs.stores.secrets import redact; "
                             "print(redact('in /tmp/team/homes, ' + get_index().url))"],
                            env=_env(home, ARTIFACTFS_INDEX_URL=url), capture_output=True, text=True, timeout=120)
    assert opened.stdout.strip() == "in /tmp/team/homes, " + url.replace(":team@", ":***@"), opened.stderr
    overridden = cli(home, "info", ARTIFACTFS_INDEX_URL=f"sqlite:///{tmp_path}/other.db")
    assert "[ARTIFACTFS_INDEX_URL]" in overridden.stdout  # the variable still wins
