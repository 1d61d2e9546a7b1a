"""What a store flavor is: URI schemes, the fsspec filesystem it builds, which
options are secret, and the pip extra that brings its library.

A flavor adds primitives only; confinement, walking and copying live in
``base.ArtifactStore`` and are the same for every flavor.
"""

from __future__ import annotations

import importlib
import json
import os
import re
from collections.abc import Awaitable, Callable, Generator
from typing import Any, ClassVar

import fsspec
from fsspec.utils import infer_storage_options

from artifactfs.errors import MissingExtraError, StoreError
from artifactfs.stores.secrets import mask_url, split_secrets

# user:password@ at the start of a bucket URI
_USERINFO_PASSWORD = re.compile(r"^[^/@]*:[^/@]*@")


class Flavor:
    """Base class of store flavors. Subclasses set the class attributes and may
    override :meth:`filesystem_options` to translate options for their library,
    and :meth:`stream_range` (with ``streams_ranges``) where their library's
    public API streams a ranged response.

    Custom flavors subclass this and are registered through the entry-point
    group ``artifactfs.flavors`` (``name = "package.module:MyFlavor"``) or
    :func:`artifactfs.stores.register_flavor`.
    """

    name: ClassVar[str]
    #: URI schemes this flavor accepts for its root, first one canonical.
    schemes: ClassVar[tuple[str, ...]]
    #: fsspec protocol used to build the filesystem.
    protocol: ClassVar[str]
    #: Module that must import for the flavor to work, and the extra that brings it.
    module: ClassVar[str | None] = None
    extra: ClassVar[str | None] = None
    #: Option names that are credentials: never stored in the index (beyond
    #: these, ``secrets.split_secrets`` keeps out anything that looks secret).
    secret_options: ClassVar[frozenset[str]] = frozenset()
    #: Options that name something on one machine (a credentials profile):
    #: kept with that machine's credentials, not in the shared index.
    machine_options: ClassVar[frozenset[str]] = frozenset()
    #: The provider's own environment variables for secret options
    #: (``store login --from-env`` reads them).
    env_credentials: ClassVar[dict[str, str]] = {}
    #: Options applied unless the user sets them (e.g. timeouts so a dead store fails fast).
    default_options: ClassVar[dict[str, Any]] = {}
    #: One line per option, shown by ``artifactfs store flavors``.
    option_help: ClassVar[dict[str, str]] = {}
    #: Whether :meth:`stream_range` reads a range in one request and hands
    #: its bytes over as they arrive (otherwise ranges are read with fsspec's
    #: ``cat_file``, one request per piece, each returned once complete).
    streams_ranges: ClassVar[bool] = False

    # -- availability --------------------------------------------------------

    @classmethod
    def is_installed(cls) -> bool:
        if cls.module is None:
            return True
        try:
            importlib.import_module(cls.module)
        except ImportError:
            return False
        return True

    @classmethod
    def require_installed(cls) -> None:
        if cls.is_installed():
            return
        hint = (
            f"install it with `pip install 'artifactfs[{cls.extra}]'`"
            if cls.extra
            else f"install the `{cls.module}` package"
        )
        raise MissingExtraError(
            f"the {cls.name} flavor needs the Python package `{cls.module}`, which is not installed",
            hint,
        )

    # -- paths ---------------------------------------------------------------

    @classmethod
    def filesystem_class(cls) -> type[fsspec.AbstractFileSystem]:
        cls.require_installed()
        return fsspec.get_filesystem_class(cls.protocol)

    @classmethod
    def split_uri(cls, uri: str) -> tuple[str | None, str]:
        """``(scheme or None, path in the filesystem's own notation)``."""
        scheme, _, rest = uri.partition("://")
        if not rest:
            return None, uri
        scheme = scheme.lower()
        if scheme not in cls.schemes:
            return scheme, rest
        return scheme, cls.filesystem_class()._strip_protocol(uri)

    @classmethod
    def canonical_root(cls, uri: str) -> tuple[str, str]:
        """Validate a root URI; return ``(native root, canonical URI)``."""
        scheme, native = cls.split_uri(uri)
        if scheme not in cls.schemes:
            expected = " or ".join(f"{s}://..." for s in cls.schemes)
            raise StoreError(
                f"a store of flavor {cls.name} needs a root URI like {expected}, got {uri!r}",
                f"pass --path {cls.schemes[0]}://<bucket>/<prefix>",
            )
        native = native.rstrip("/")
        if _USERINFO_PASSWORD.match(native):
            raise StoreError(
                f"the root URI of a {cls.name} store carries a password ({mask_url(uri)}); it would be kept in the index",
                "pass credentials as the flavor's secret options (`artifactfs store flavors`) or in the environment",
            )
        if not native or native.startswith("/") or ".." in native.split("/"):
            raise StoreError(
                f"{uri!r} does not name a bucket or container",
                f"use {cls.schemes[0]}://<bucket>[/<prefix>]",
            )
        return native, f"{cls.schemes[0]}://{native}"

    @classmethod
    def to_uri(cls, native: str) -> str:
        return f"{cls.schemes[0]}://{native}"

    # -- the filesystem --------------------------------------------------------

    @classmethod
    def filesystem_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        """Translate store options into keyword arguments of the fsspec class."""
        return dict(options)

    @classmethod
    def filesystem(cls, options: dict[str, Any]) -> fsspec.AbstractFileSystem:
        merged = {**cls.default_options, **options}
        try:
            return cls.filesystem_class()(**cls.filesystem_options(merged))
        except TypeError as exc:
            raise StoreError(
                f"the {cls.name} flavor does not accept these options: {exc}",
                "see `artifactfs store flavors` for the options it takes",
            ) from exc


    @classmethod
    def prepare(cls, fs: fsspec.AbstractFileSystem) -> None:
        """Build whatever ``fs`` would build on its first request, sending
        nothing, so the first read does not pay for it. Most clients are
        ready once constructed; a flavor whose client is not says how."""

    @classmethod
    def stream_range(cls, fs: fsspec.AbstractFileSystem, native: str, start: int, end: int,
                     chunk: int) -> Generator[bytes, None, None]:
        """Bytes ``[start, end)`` of the object ``native`` (``start < end``)
        in ONE ranged request of the flavor's own client, ``chunk`` bytes per
        piece (the last may be shorter), each handed over as soon as its
        bytes have arrived; closing the iterator early ends the request.
        Only for flavors that set ``streams_ranges``; errors are the
        filesystem's own (``FileNotFoundError`` for a missing object)."""
        raise NotImplementedError(f"the {cls.name} flavor does not stream ranges")

    @classmethod
    def filesystem_at(cls, root: str, options: dict[str, Any]) -> fsspec.AbstractFileSystem:
        """The filesystem of a store rooted at ``root`` (native); most
        flavors need only the options (the local one holds the root open)."""
        return cls.filesystem(options)


def stream_on_loop(loop: Any, open_body: Callable[[], Awaitable[Any]], read: Callable[[Any, int], Awaitable[bytes]],
                   close: Callable[[Any], Awaitable[None]], chunk: int) -> Generator[bytes, None, None]:
    """A streamed response of an async client, read from a worker thread:
    ``open_body()`` sends the request on the filesystem's event loop
    (``fs.loop``, through fsspec's documented ``fsspec.asyn.sync``), then
    each piece of ``chunk`` bytes (the last may be shorter) is gathered on
    the loop from ``read(body, n)`` (at most ``n`` bytes, ``b""`` at the end)
    and handed over: one hand-off per piece, not per network read.
    ``close(body)`` runs on the loop when the iterator ends or is closed."""
    from fsspec.asyn import sync

    async def gather(body: Any) -> bytes:
        parts, got = [], 0
        while got < chunk:
            part = await read(body, chunk - got)
            if not part:
                break
            parts.append(part)
            got += len(part)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    body = sync(loop, open_body)
    try:
        while piece := sync(loop, gather, body):
            yield piece
    finally:
        sync(loop, close, body)


def parse_option_value(text: str) -> Any:
    """``--option k=v`` values: JSON when they parse (numbers, booleans,
    objects for client_kwargs), a plain string otherwise."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_options(pairs: list[str] | tuple[str, ...], text_keys: frozenset[str] = frozenset()) -> dict[str, Any]:
    """``KEY=VALUE`` pairs as options; values of ``text_keys`` (secrets) stay
    text as given, so a key like ``0123`` or ``1e5`` is not turned into a number."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise StoreError(f"option {pair!r} is not KEY=VALUE", "write e.g. --option endpoint_url=http://host:9000")
        options[key] = value if key in text_keys else parse_option_value(value)
    return options


def env_prefix(store_name: str) -> str:
    """``ARTIFACTFS_STORE_<NAME>_``: the prefix of a store's option variables."""
    return "ARTIFACTFS_STORE_" + re.sub(r"[^A-Za-z0-9]", "_", store_name).upper() + "_"


def env_secrets(store_name: str, text_keys: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Options from ``ARTIFACTFS_STORE_<NAME>_<OPTION>`` environment variables
    (values of ``text_keys`` stay text, see :func:`parse_options`)."""
    prefix = env_prefix(store_name)
    options = {}
    for key, value in os.environ.items():
        if key.startswith(prefix):
            option = key[len(prefix):].lower()
            options[option] = value if option in text_keys else parse_option_value(value)
    return options


def is_local_uri(uri: str) -> bool:
    return infer_storage_options(uri)["protocol"] in ("file", "local")


__all__ = ["Flavor", "env_prefix", "env_secrets", "is_local_uri", "parse_option_value", "parse_options", "split_secrets",
           "stream_on_loop"]
