"""Which flavors exist: the built-in ones (imported lazily, so a missing
extra only matters when it is used) and plugins from the entry-point group
``artifactfs.flavors``. A registered name is never silently replaced."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib.metadata import entry_points

from artifactfs.errors import StoreError, UnknownFlavorError
from artifactfs.stores.flavor import Flavor

ENTRY_POINT_GROUP = "artifactfs.flavors"

_BUILTIN = {
    "local": "artifactfs.stores.local:LocalFlavor",
    "s3": "artifactfs.stores.s3:S3Flavor",
    "gcs": "artifactfs.stores.gcs:GCSFlavor",
    "azure": "artifactfs.stores.azure:AzureFlavor",
}
_registered: dict[str, type[Flavor]] = {}


@dataclass(frozen=True)
class FlavorInfo:
    name: str
    source: str  # "built-in", "plugin <dist>", "registered"
    target: str


def _load(name: str, target: str) -> type[Flavor]:
    module, _, attr = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise StoreError(
            f"the {name} flavor ({target}) cannot be loaded: {exc}",
            "reinstall the package that provides it, or uninstall the broken plugin",
        ) from exc
    if not (isinstance(cls, type) and issubclass(cls, Flavor)):
        raise StoreError(f"{target} is not a subclass of artifactfs.stores.Flavor")
    return cls


def _plugins() -> dict[str, FlavorInfo]:
    found = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist.name if ep.dist else "?"
        found[ep.name] = FlavorInfo(ep.name, f"plugin {dist}", ep.value)
    return found


def register_flavor(cls: type[Flavor]) -> type[Flavor]:
    """Register a flavor class in this process (also usable as a decorator)."""
    if not (isinstance(cls, type) and issubclass(cls, Flavor)):
        raise StoreError(f"{cls!r} is not a subclass of artifactfs.stores.Flavor")
    if cls.name in _BUILTIN or cls.name in _plugins() or _registered.get(cls.name, cls) is not cls:
        raise StoreError(f"a flavor named {cls.name!r} already exists", "choose another name")
    _registered[cls.name] = cls
    return cls


def list_flavors() -> list[FlavorInfo]:
    infos = {name: FlavorInfo(name, "built-in", target) for name, target in _BUILTIN.items()}
    for name, info in _plugins().items():
        infos.setdefault(name, info)  # a plugin cannot shadow a built-in
    for name, cls in _registered.items():
        infos.setdefault(name, FlavorInfo(name, "registered", f"{cls.__module__}:{cls.__qualname__}"))
    return sorted(infos.values(), key=lambda i: i.name)


def get_flavor(name: str) -> type[Flavor]:
    if name in _registered:
        return _registered[name]
    target = _BUILTIN.get(name) or getattr(_plugins().get(name), "target", None)
    if target is None:
        known = ", ".join(i.name for i in list_flavors())
        raise UnknownFlavorError(
            f"unknown store flavor {name!r}",
            f"known flavors: {known}; plugins register through the entry-point group {ENTRY_POINT_GROUP!r}",
        )
    return _load(name, target)


def flavor_for_uri(uri: str) -> type[Flavor]:
    """The flavor whose schemes include the URI's scheme (no scheme: local)."""
    scheme, sep, _ = uri.partition("://")
    if not sep:
        return get_flavor("local")
    for info in list_flavors():
        try:
            cls = get_flavor(info.name)
        except StoreError:  # a broken plugin does not hide the others
            continue
        if scheme.lower() in cls.schemes:
            return cls
    raise UnknownFlavorError(f"no store flavor handles {scheme}:// URIs", "see `artifactfs store flavors`")
