"""Where artifactfs keeps things: config, data and cache folders, the index URL,
the active store, and the owner-only credentials file.

Resolution order, highest first:
  * ``ARTIFACTFS_HOME=DIR`` puts config, data and cache under DIR;
  * otherwise the XDG base directories (``XDG_CONFIG_HOME``, ``XDG_DATA_HOME``,
    ``XDG_CACHE_HOME``), each with an ``artifactfs`` sub-folder;
  * ``ARTIFACTFS_CONFIG_DIR`` overrides the config folder alone;
  * ``ARTIFACTFS_INDEX_URL`` overrides the index URL (any SQLAlchemy URL);
    else ``index_url`` in ``config.json`` (``artifactfs init --index-url``
    writes it; its password lives in the owner-only credentials file), else
    the SQLite index in the data folder;
  * ``ARTIFACTFS_STORE`` overrides the active store named in ``config.json``;
  * ``ARTIFACTFS_MACHINE_ID`` overrides this machine's id (tests that play
    several machines on one host set it).

Every folder artifactfs creates for itself (the home and its config, data
and cache folders, the default store's root, logs) is created 0700 by
:func:`private_dir`, whatever the umask, as the XDG specification asks:
the index, payloads, caches and logs are their owner's alone.
"""

from __future__ import annotations

import json
import os
import stat
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

from artifactfs.errors import ConfigError

DEFAULT_STORE = "default"
MACHINE_ID_FILES = ("/etc/machine-id", "/var/lib/dbus/machine-id")
CREDENTIALS_FILE = "credentials.json"
CONFIG_FILE = "config.json"


@dataclass(frozen=True)
class Settings:
    """The folders and URLs one process works with."""

    config_dir: Path
    data_dir: Path
    cache_dir: Path
    index_url: str

    @cached_property
    def default_store_root(self) -> Path:
        return self.data_dir / "store"

    @cached_property
    def credentials_path(self) -> Path:
        return self.config_dir / CREDENTIALS_FILE

    @cached_property
    def config_path(self) -> Path:
        return self.config_dir / CONFIG_FILE

    # -- the small user config (active store) ---------------------------------

    def read_config(self) -> dict[str, Any]:
        """``config.json`` (empty when there is none), read again only when
        the file changed (its inode, size or times): a save reads the active
        store here, and must not pay a file read for it."""
        path = self.config_path
        stamp = _file_stamp(path)
        if stamp is None:
            return {}
        try:
            return json.loads(_file_text(path, stamp) if _settled(stamp) else path.read_text())
        except FileNotFoundError:
            return {}
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"config file {self.config_path} is not valid JSON: {exc}",
                "fix or delete the file; `artifactfs init` writes a fresh one",
            ) from exc

    def write_config(self, **changes: Any) -> None:
        config = self.read_config() | changes
        _write_private(self.config_path, config, mode=0o644)

    @property
    def chosen_store(self) -> str | None:
        """The store this machine's user chose (``ARTIFACTFS_STORE``, then
        ``config.json``), or None: then this machine's own default local
        store is active (``api.stores`` finds its name in the index)."""
        return os.environ.get("ARTIFACTFS_STORE") or self.read_config().get("active_store")

    @property
    def active_store(self) -> str:
        return self.chosen_store or DEFAULT_STORE

    # -- secrets, per store, in an owner-only file --------------------------

    def read_credentials(self) -> dict[str, dict[str, str]]:
        """Secrets by store name. Refused when others can read the file."""
        path = self.credentials_path
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            return {}
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(
                f"credentials file {path} is readable by others "
                f"(mode {stat.S_IMODE(mode):o}); refusing to read it",
                f"run `chmod 600 {path}`",
            )
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ConfigError(f"credentials file {path} is not valid JSON", "fix it") from exc

    def write_credentials(self, store: str, secrets: dict[str, str]) -> None:
        """Merge ``secrets`` into the store's entry; the file stays mode 0600."""
        creds = self.read_credentials()
        creds[store] = creds.get(store, {}) | secrets
        _write_private(self.credentials_path, creds, mode=0o600)

    def forget_credentials(self, store: str, keys: Iterable[str] | None = None) -> None:
        """Drop the store's entry (``keys``: only those options of it)."""
        creds = self.read_credentials()
        entry = creds.pop(store, None)
        if entry is None:
            return
        if keys is not None and (kept := {k: v for k, v in entry.items() if k not in set(keys)}):
            creds[store] = kept
        _write_private(self.credentials_path, creds, mode=0o600)


#: What to do when a folder of artifactfs's own cannot be made (a read-only home, no HOME).
HOME_HINT = ("artifactfs keeps its index, default store and cache under ARTIFACTFS_HOME if set, else under "
             "XDG_DATA_HOME, XDG_CONFIG_HOME and XDG_CACHE_HOME (default ~/.local/share, ~/.config, ~/.cache): "
             "set ARTIFACTFS_HOME to a writable folder (`artifactfs info` shows the folders in use)")


class HomeNotWritableError(ConfigError):
    """A folder or file of artifactfs's own cannot be made where settings put it."""


def _not_writable(what: Path, exc: OSError) -> HomeNotWritableError:
    return HomeNotWritableError(f"cannot create {what}: {exc.strerror or exc}", HOME_HINT)


def private_dir(path: Path) -> Path:
    """Create the folder ``path`` and any missing parents, each 0700 (umask
    can only narrow that). Folders that already exist are left as they are:
    they are the user's. A folder that cannot be made (read-only file
    system, no permission) raises :class:`HomeNotWritableError`, which names
    the variables that move artifactfs's folders."""
    missing = []
    current = Path(path)
    while not current.is_dir():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for folder in reversed(missing):
        try:
            os.mkdir(folder, 0o700)
        except FileExistsError:
            pass  # made by another process meanwhile
        except OSError as exc:
            raise _not_writable(folder, exc) from exc
    return Path(path)


def create_private_file(path: Path) -> None:
    """Create ``path`` empty and 0600 unless it exists (a SQLite index: SQLite
    gives its -wal and -shm files the mode of the database file)."""
    private_dir(Path(path).parent)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
    except FileExistsError:
        pass
    except OSError as exc:
        raise _not_writable(Path(path), exc) from exc


def machine_id() -> str:
    """A stable id of this machine, never its hostname (cloned VMs share one):
    ``ARTIFACTFS_MACHINE_ID``, else systemd's machine id, else a random id
    kept in the config folder. Local stores and the pruner's lease holder
    are identified by it."""
    if override := os.environ.get("ARTIFACTFS_MACHINE_ID"):
        return override.strip()
    return _system_machine_id() or _generated_machine_id(get_settings().config_dir / "machine-id")


@lru_cache(maxsize=1)
def _system_machine_id() -> str | None:
    """The system's machine id (read once: it does not change while a process runs), or None."""
    for path in MACHINE_ID_FILES:
        try:
            if value := Path(path).read_text().strip():
                return value
        except OSError:
            continue
    return None


def _generated_machine_id(path: Path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        private_dir(path.parent)
        value = uuid.uuid4().hex
        try:  # O_EXCL: two processes creating it at once agree on the first
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return path.read_text().strip()
        with os.fdopen(fd, "w") as f:
            f.write(value + "\n")
        return value


def _write_private(path: Path, data: dict, mode: int) -> None:
    """Write JSON atomically, creating the file with ``mode`` from the start."""
    private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    except OSError as exc:
        raise _not_writable(path, exc) from exc
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, sort_keys=True)
        os.chmod(tmp, mode)  # O_CREAT honours umask; be exact
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _xdg(value: str | None, user_home: str | None, fallback: str) -> Path:
    base = value or str(Path(user_home or Path.home()) / fallback)
    return Path(base) / "artifactfs"


#: Overrides the config folder alone (ZenML's ZENML_CONFIG_PATH).
ENV_CONFIG_DIR = "ARTIFACTFS_CONFIG_DIR"

_ENVIRONMENT = ("ARTIFACTFS_HOME", "ARTIFACTFS_INDEX_URL", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "HOME",
                ENV_CONFIG_DIR)


#: Where the index URL's password is kept in the credentials file (no store has this name).
INDEX_CREDENTIALS = ":index"


def get_settings() -> Settings:
    """Settings from the environment and the config file; follows changes to
    both (tests and notebooks change ``ARTIFACTFS_HOME`` on the fly)."""
    values = tuple(map(os.environ.get, _ENVIRONMENT))
    home, config_dir = values[0], values[-1]
    # The working folder matters only to a relative folder (a syscall spared on every call).
    relative = (home and not os.path.isabs(home)) or (config_dir and not os.path.isabs(config_dir))
    settings = _settings_for(*values, os.getcwd() if relative else None)
    if values[1]:  # ARTIFACTFS_INDEX_URL
        return settings
    config_stamp = _file_stamp(settings.config_path)
    if config_stamp is None:
        return settings
    configured = _configured_index_url(settings, config_stamp, _file_stamp(settings.credentials_path))
    return replace(settings, index_url=configured) if configured else settings


def index_url_source() -> str:
    """What chose the index URL in use, for ``artifactfs info``."""
    if os.environ.get("ARTIFACTFS_INDEX_URL"):
        return "ARTIFACTFS_INDEX_URL"
    settings = get_settings()
    if settings.read_config().get("index_url"):
        return f"index_url in {settings.config_path}"
    return "the default: SQLite in the data folder"


def save_index_url(url: str) -> None:
    """Keep ``url`` as this user's index (``artifactfs init --index-url``):
    the URL without its password in ``config.json``, the password in the
    owner-only credentials file."""
    from sqlalchemy.engine import URL, make_url

    settings = get_settings()
    parsed = make_url(url)
    if parsed.password:
        settings.write_credentials(INDEX_CREDENTIALS, {"password": str(parsed.password)})
    else:
        settings.forget_credentials(INDEX_CREDENTIALS)
    bare = URL.create(parsed.drivername, parsed.username, None, parsed.host, parsed.port, parsed.database, parsed.query)
    settings.write_config(index_url=bare.render_as_string(hide_password=False))


def _file_stamp(path: Path) -> tuple[int, int, int, int] | None:
    """What changes when a file is rewritten or replaced (None: no file)."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_ino, info.st_mtime_ns, info.st_ctime_ns, info.st_size


#: A file changed this recently may change again within the same tick of
#: the filesystem's clock, keeping its stamp: it is read, not cached (git's
#: "racy clean" rule).
SETTLED_NS = 2_000_000_000


def _settled(stamp: tuple[int, int, int, int]) -> bool:
    return time.time_ns() - max(stamp[1], stamp[2]) > SETTLED_NS


@lru_cache(maxsize=16)
def _file_text(path: Path, stamp: tuple[int, int, int, int]) -> str:
    """The text of a small file of ours, cached while its ``stamp`` (the key) stays."""
    return path.read_text()


@lru_cache(maxsize=16)
def _configured_index_url(settings: Settings, config_stamp, credentials_stamp) -> str | None:
    """``index_url`` of the config file with its password put back; cached
    while neither file changes (the stamps are part of the key)."""
    url = settings.read_config().get("index_url") if config_stamp else None
    if not url:
        return None
    password = settings.read_credentials().get(INDEX_CREDENTIALS, {}).get("password") if credentials_stamp else None
    if not password:
        return url
    from sqlalchemy.engine import make_url

    return make_url(url).set(password=password).render_as_string(hide_password=False)


@lru_cache(maxsize=16)
def _settings_for(home, index_url, xdg_config, xdg_data, xdg_cache, user_home, config_dir, cwd) -> Settings:
    """Pure in its arguments (a relative ARTIFACTFS_HOME depends on ``cwd``)."""
    if home:
        root = Path(home).expanduser().absolute()
        config, data, cache = root / "config", root / "data", root / "cache"
    else:
        config = _xdg(xdg_config, user_home, ".config")
        data = _xdg(xdg_data, user_home, ".local/share")
        cache = _xdg(xdg_cache, user_home, ".cache")
    if config_dir:
        config = Path(config_dir).expanduser().resolve()
    url = index_url or f"sqlite:///{data / 'index.db'}"
    return Settings(config_dir=config, data_dir=data, cache_dir=cache, index_url=url)
