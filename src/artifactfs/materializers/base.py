"""The materializer contract and the registry that picks one for a type.

A materializer turns one Python object into files in one version folder and
back. It writes only through ``self.artifact_store`` (paths joined to
``self.uri``), which records size and hash of every file as it is written.

Subclasses that set ``ASSOCIATED_TYPES`` register themselves (unless
``SKIP_REGISTRATION``); :func:`register_materializer` does the same as a
decorator, optionally for more types. Lookup walks the data type's MRO, so
a materializer for ``dict`` also serves subclasses of dict.
"""

from __future__ import annotations

import builtins
import importlib
import posixpath
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from artifactfs.errors import ArtifactfsError

if TYPE_CHECKING:
    from artifactfs.stores.base import ArtifactStore

#: Visualization kinds a materializer may produce.
VISUALIZATION_TYPES = ("csv", "html", "image", "markdown", "json")


class MaterializerError(ArtifactfsError, TypeError):
    """A value cannot be turned into files, or files back into a value."""


class BaseMaterializer:
    #: Python types this materializer handles.
    ASSOCIATED_TYPES: ClassVar[tuple[type, ...]] = ()
    #: What the payload is: "data", "model", "schema", "statistics", "service".
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[str] = "data"
    SKIP_REGISTRATION: ClassVar[bool] = False
    #: Loading may unpickle bytes: the API checks every payload file against
    #: its manifest first, so tampered bytes are never unpickled.
    VERIFY_ON_LOAD: ClassVar[bool] = False

    def __init__(
        self,
        uri: str,
        artifact_store: ArtifactStore,
        visualization_uri: str | None = None,
        metadata_loader: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.uri = uri
        self.artifact_store = artifact_store
        self.visualization_uri = visualization_uri
        self._metadata_loader = metadata_loader

    @property
    def recorded_metadata(self) -> dict[str, Any]:
        """When loading: the metadata recorded at save time (what
        ``extract_metadata`` returned, read from the index only if asked)."""
        return self._metadata_loader() if self._metadata_loader else {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.ASSOCIATED_TYPES and not cls.__dict__.get("SKIP_REGISTRATION", False):
            registry.register(cls)

    # -- helpers for subclasses ------------------------------------------------

    def path(self, *parts: str) -> str:
        """A path inside this version's folder."""
        return posixpath.join(self.uri, *parts)

    # -- the contract ------------------------------------------------------------

    def save(self, data: Any) -> None:
        raise NotImplementedError

    def load(self, data_type: type) -> Any:
        raise NotImplementedError

    def extract_metadata(self, data: Any) -> dict[str, Any]:
        """JSON-able facts about ``data`` (shape, dtype, ...). Storage size is
        added by the caller for every materializer."""
        return {}

    def save_visualizations(self, data: Any) -> dict[str, str]:
        """Write visualizations under ``self.visualization_uri`` (never inside
        the payload folder); return ``{uri: kind}`` with kinds from
        ``VISUALIZATION_TYPES``."""
        return {}

    def compute_content_hash(self, data: Any) -> str | None:
        """A hash of the value itself, where one cheaper or more meaningful
        than the files' sha256 exists; ``None`` uses the payload's hash."""
        return None


class MaterializerRegistry:
    """Type -> materializer class, looked up along the MRO."""

    def __init__(self) -> None:
        self._by_type: dict[type, type[BaseMaterializer]] = {}
        self._lazy: dict[str, str] = {}  # type import path -> module that registers it
        self.default: type[BaseMaterializer] | None = None

    def register(self, materializer: type[BaseMaterializer], *types: type) -> None:
        for data_type in types or materializer.ASSOCIATED_TYPES:
            self._by_type[data_type] = materializer

    def register_lazy(self, type_path: str, module: str) -> None:
        """Import ``module`` (which registers its materializer) only when a
        value of the type named ``type_path`` is first looked up, so that
        importing artifactfs does not import pandas."""
        self._lazy[type_path] = module

    def _load_lazy(self, data_type: type) -> None:
        for klass in getattr(data_type, "__mro__", (data_type,)):
            module = self._lazy.pop(qualified_name(klass), None)
            if module is not None:
                importlib.import_module(module)

    def set_default(self, materializer: type[BaseMaterializer]) -> None:
        self.default = materializer

    def lookup(self, data_type: type) -> type[BaseMaterializer]:
        if self._lazy:
            self._load_lazy(data_type)
        for klass in getattr(data_type, "__mro__", (data_type,)):
            if klass in self._by_type and klass is not object:
                return self._by_type[klass]
        if self.default is None:
            raise MaterializerError(f"no materializer for type {qualified_name(data_type)}")
        return self.default

    def is_registered(self, data_type: type) -> bool:
        if self._lazy:
            self._load_lazy(data_type)
        return any(k in self._by_type for k in getattr(data_type, "__mro__", ()) if k is not object)


registry = MaterializerRegistry()


def register_materializer(*types: type):
    """Decorator: ``@register_materializer(MyType)`` on a BaseMaterializer subclass."""

    def decorate(cls: type[BaseMaterializer]) -> type[BaseMaterializer]:
        registry.register(cls, *types)
        return cls

    return decorate


def qualified_name(obj: Any) -> str:
    """The import path of a class or function, e.g. ``numpy.ndarray``.

    Built-in types that ``builtins`` does not export (``NoneType``,
    ``function``, ...) are named by their home in ``types``, so that
    :func:`import_by_name` finds them again."""
    module, name = obj.__module__, obj.__qualname__
    if module == "builtins" and getattr(builtins, name, None) is not obj:
        for attr, value in vars(types).items():
            if value is obj:
                return f"types.{attr}"
    return f"{module}.{name}"


def import_by_name(path: str, what: str) -> Any:
    """Import ``module.attr`` (a class recorded in the index); a clear error
    naming the missing module and what needed it.

    ``attr`` may be dotted (``mod.Outer.Inner``, as :func:`qualified_name`
    writes nested classes): the longest importable module prefix is used."""
    parts = path.split(".")
    missing: ImportError | None = None
    for cut in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:cut])
        try:
            obj = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            missing = missing or exc
            if exc.name and not (module_name + ".").startswith(exc.name + "."):
                break  # the module is there but needs a package that is not
            continue  # maybe ``module_name`` ends in a class name: try shorter
        except ImportError as exc:
            missing = exc
            break
        for depth, part in enumerate(parts[cut:]):
            try:
                obj = getattr(obj, part)
            except AttributeError as exc:
                if missing is not None and depth == 0:
                    break  # ``pkg.gone.Class``: report the missing module below
                raise MaterializerError(
                    f"cannot import {path!r} needed by {what}: {'.'.join(parts[: cut + depth])!r} has no {part!r}",
                    "was the class renamed or moved since the artifact was saved?",
                ) from exc
        else:
            return obj
        break
    if missing is None:
        raise MaterializerError(f"cannot import {path!r} needed by {what}: not a dotted import path")
    name = missing.name or path
    raise MaterializerError(
        f"cannot import {path!r} needed by {what}: module {name!r} is missing",
        f"install the package that provides {name!r}, or load with a materializer that is installed",
    ) from missing
