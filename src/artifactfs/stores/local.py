"""The ``local`` flavor: a folder on this machine."""

from __future__ import annotations

import os

from artifactfs.errors import StoreError
from artifactfs.stores.flavor import Flavor


class LocalFlavor(Flavor):
    name = "local"
    schemes = ("file",)
    protocol = "file"
    option_help = {}

    @classmethod
    def split_uri(cls, uri: str) -> tuple[str | None, str]:
        scheme, _, rest = uri.partition("://")
        if not rest:
            return "file", os.path.abspath(os.path.expanduser(uri)) if uri.startswith(("/", "~")) else uri
        if scheme.lower() != "file":
            return scheme.lower(), rest
        return "file", "/" + rest.lstrip("/")

    @classmethod
    def canonical_root(cls, uri: str) -> tuple[str, str]:
        scheme, native = cls.split_uri(uri)
        if scheme != "file" or not native.startswith("/"):
            raise StoreError(
                f"a local store needs an absolute folder path, got {uri!r}",
                "pass --path /absolute/folder (or file:///absolute/folder)",
            )
        native = os.path.normpath(native)
        return native, native

    @classmethod
    def to_uri(cls, native: str) -> str:
        return native

    @classmethod
    def filesystem_options(cls, options):
        return {"auto_mkdir": True, **options}

    @classmethod
    def filesystem_at(cls, root, options):
        """Every path beneath the root, reached from its descriptor without following links."""
        from artifactfs.stores.beneath import BeneathFileSystem

        return BeneathFileSystem(root)
