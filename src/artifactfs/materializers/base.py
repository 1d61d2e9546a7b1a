"""The materializer contract and the registry that picks one for a type.

A materializer turns one Python object into files in one version folder and
back. It writes only through ``self.artifact_store`` (paths joined to
``self.uri``), which records size and hash of every file as it is written.

Subclasses that set ``ASSOCIATED_TYPES`` register themselves (unless
``SKIP_REGISTRATION``); :func:`register_materializer` does the same as a
decorator, optionally for more types. Lookup walks the data type's MRO, so
a materializer for ``dict`` also serves subclasses of dict. As in ZenML, the
first materializer registered for a type stays its default: a user's
materializer for ``int`` is used where asked for (``materializer=`` on a
save, ``output_materializers`` on a step), never silently everywhere.

The class API is ZenML's (``validate_save_type_compatibility``,
``can_load_type``, ``extract_full_metadata``, ``get_temporary_directory``,
a constructor that needs only the URI), so ZenML materializers run as they
are.
"""

from __future__ import annotations

import builtins
import contextlib
import importlib
import posixpath
import shutil
import tempfile
import types
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from artifactfs.enums import ArtifactType, StorageSize
from artifactfs.errors import ArtifactfsError
from artifactfs.stores.layout import viz_folder

if TYPE_CHECKING:
    from artifactfs.stores.base import ArtifactStore

#: Visualization kinds a materializer may produce.
VISUALIZATION_TYPES = ("csv", "html", "image", "markdown", "json")


class MaterializerError(ArtifactfsError, TypeError):
    """A value cannot be turned into files, or files back into a value."""


class MaterializerInterfaceError(MaterializerError):
    """A materializer class is defined wrongly (ZenML's name)."""


#: Set by the api layer (above this one): ``store_for(uri)`` finds the store
#: holding a URI among the process's opened stores (plain local files outside
#: every store included); ``after_step(folder)`` removes a scratch folder when
#: the running step ends.
_hooks: dict[str, Callable[[str], Any] | None] = {"store_for": None, "after_step": None}


def set_api_hooks(store_for: Callable[[str], ArtifactStore], after_step: Callable[[str], None]) -> None:
    _hooks.update(store_for=store_for, after_step=after_step)


class BaseMaterializer:
    #: Python types this materializer handles.
    ASSOCIATED_TYPES: ClassVar[tuple[type, ...]] = ()
    #: What the payload is (ZenML's artifact types).
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.BASE
    SKIP_REGISTRATION: ClassVar[bool] = False
    #: Loading may unpickle bytes: the API checks every payload file against
    #: its manifest first, so tampered bytes are never unpickled.
    VERIFY_ON_LOAD: ClassVar[bool] = False

    def __init__(
        self,
        uri: str,
        artifact_store: ArtifactStore | None = None,
        visualization_uri: str | None = None,
        metadata_loader: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.uri = uri
        self._artifact_store = artifact_store
        self.visualization_uri = visualization_uri
        self._metadata_loader = metadata_loader

    @property
    def artifact_store(self) -> ArtifactStore:
        """The store given, else the registered store holding ``uri`` (plain
        local files for a local path outside every store), as in ZenML
        where a materializer made with only a URI finds its store."""
        if self._artifact_store is None:
            if _hooks["store_for"] is None:
                raise MaterializerError("no store given and none can be looked up", "import artifactfs first")
            self._artifact_store = _hooks["store_for"](self.uri)
        return self._artifact_store

    @artifact_store.setter
    def artifact_store(self, store: ArtifactStore) -> None:
        self._artifact_store = store

    @property
    def recorded_metadata(self) -> dict[str, Any]:
        """When loading: the metadata recorded at save time (what
        ``extract_metadata`` returned, read from the index only if asked)."""
        return self._metadata_loader() if self._metadata_loader else {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        bad = [t for t in cls.ASSOCIATED_TYPES if not isinstance(t, type)]
        if bad:
            raise MaterializerInterfaceError(
                f"materializer {cls.__name__}: ASSOCIATED_TYPES holds {bad[0]!r}, which is not a class",
                "list classes only, e.g. ASSOCIATED_TYPES = (MyType,)",
            )
        try:
            cls.ASSOCIATED_ARTIFACT_TYPE = ArtifactType(cls.ASSOCIATED_ARTIFACT_TYPE)
        except ValueError:
            raise MaterializerInterfaceError(
                f"materializer {cls.__name__}: ASSOCIATED_ARTIFACT_TYPE {cls.ASSOCIATED_ARTIFACT_TYPE!r} "
                "is not an artifact type",
                f"use one of {', '.join(t.name for t in ArtifactType)} (artifactfs.enums.ArtifactType)",
            ) from None
        if cls.ASSOCIATED_TYPES and not cls.__dict__.get("SKIP_REGISTRATION", False):
            registry.register(cls)

    # -- helpers for subclasses ------------------------------------------------

    def path(self, *parts: str) -> str:
        """A path inside this version's folder."""
        return posixpath.join(self.uri, *parts)

    # -- the contract ------------------------------------------------------------

    def save(self, data: Any) -> None:
        """Write ``data`` beneath ``self.uri``. A subclass overrides it; this
        base does nothing, so ``super().save(data)`` is safe (as in ZenML)."""

    def load(self, data_type: type) -> Any:
        """Read the value back. A subclass overrides it; this base returns
        None, so ``super().load(data_type)`` is safe (as in ZenML)."""
        return None

    def extract_metadata(self, data: Any) -> dict[str, Any]:
        """JSON-able facts about ``data`` (shape, dtype, ...). Storage size is
        added by the caller for every materializer."""
        return {}

    def save_visualizations(self, data: Any) -> Mapping[str, str]:
        """Write visualizations under ``self.visualization_uri`` (never inside
        the payload folder); return ``{uri: kind}`` with kinds from
        ``VISUALIZATION_TYPES``."""
        return {}

    def compute_content_hash(self, data: Any) -> str | None:
        """A hash of the value itself, where one cheaper or more meaningful
        than the files' sha256 exists; ``None`` uses the payload's hash."""
        return None

    # -- ZenML's class API ------------------------------------------------------

    @classmethod
    def can_save_type(cls, data_type: type) -> bool:
        return isinstance(data_type, type) and any(issubclass(data_type, t) for t in cls.ASSOCIATED_TYPES)

    @classmethod
    def can_load_type(cls, data_type: type) -> bool:
        """A superclass of an associated type, or (a false positive ZenML
        accepts too) a subclass of one."""
        return isinstance(data_type, type) and any(
            issubclass(t, data_type) or issubclass(data_type, t) for t in cls.ASSOCIATED_TYPES
        )

    def validate_save_type_compatibility(self, data_type: type) -> None:
        if not self.can_save_type(data_type):
            raise MaterializerError(
                f"{type(self).__name__} cannot save {qualified_name(data_type)}; "
                f"it saves {', '.join(qualified_name(t) for t in self.ASSOCIATED_TYPES) or 'nothing by type'}",
                "pick another materializer, or leave materializer= out to use the registered one",
            )

    def validate_load_type_compatibility(self, data_type: type) -> None:
        if not self.can_load_type(data_type):
            raise MaterializerError(
                f"{type(self).__name__} cannot load an artifact as {qualified_name(data_type)}; "
                f"it loads {', '.join(qualified_name(t) for t in self.ASSOCIATED_TYPES) or 'nothing by type'}",
                "load it with the type it was saved as",
            )

    def extract_full_metadata(self, data: Any) -> dict[str, Any]:
        """``storage_size`` of what ``save`` wrote, plus ``extract_metadata``."""
        store = self.artifact_store
        size = store.size(self.uri) if store.exists(self.uri) else 0
        return {"storage_size": StorageSize(size), **(self.extract_metadata(data) or {})}

    @contextlib.contextmanager
    def get_temporary_directory(self, delete_at_exit: bool, delete_after_step_execution: bool = True) -> Iterator[str]:
        """A local scratch folder (for libraries that only write local files).
        Kept after the ``with`` unless ``delete_at_exit``; inside a step run it
        is removed when the step ends, outside it is the caller's to remove."""
        folder = tempfile.mkdtemp(prefix="artifactfs-")
        if delete_after_step_execution and not delete_at_exit and _hooks["after_step"] is not None:
            _hooks["after_step"](folder)
        try:
            yield folder
        finally:
            if delete_at_exit:
                shutil.rmtree(folder, ignore_errors=True)

    @property
    def visualization_folder(self) -> str:
        """Where visualizations go: beside the payload, never inside it."""
        return self.visualization_uri or viz_folder(self.uri)


class MaterializerRegistry:
    """Type -> materializer class, looked up along the MRO. The first class
    registered for a type keeps it (ZenML's rule); ``register_and_overwrite_type``
    replaces it on purpose."""

    def __init__(self) -> None:
        self.materializer_types: dict[type, type[BaseMaterializer]] = {}
        self._lazy: dict[str, str] = {}  # type import path -> module that registers it
        self.default: type[BaseMaterializer] | None = None

    def register(self, materializer: type[BaseMaterializer], *types: type) -> None:
        for data_type in types or materializer.ASSOCIATED_TYPES:
            self.materializer_types.setdefault(data_type, materializer)

    # ZenML's names, parameters included (``type_`` is the materializer class)
    def register_materializer_type(self, key: type, type_: type[BaseMaterializer]) -> None:
        self.register(type_, key)

    def register_and_overwrite_type(self, key: type, type_: type[BaseMaterializer]) -> None:
        self.materializer_types[key] = type_

    def __getitem__(self, data_type: type) -> type[BaseMaterializer]:
        from artifactfs.materializers.structured import DataclassMaterializer  # a sibling, imported late

        if self.is_registered(data_type):
            return self.lookup(data_type)
        if DataclassMaterializer.can_save_type(data_type):
            return DataclassMaterializer
        return self.get_default_materializer()

    def get_default_materializer(self) -> type[BaseMaterializer]:
        if self.default is None:
            raise MaterializerError("no default materializer is registered")
        return self.default

    def get_materializer_types(self) -> dict[type, type[BaseMaterializer]]:
        return self.materializer_types

    def register_lazy(self, type_path: str, module: str) -> None:
        """Import ``module`` (which registers its materializer) only when a
        value of the type named ``type_path`` is first looked up, so that
        importing artifactfs does not import pandas."""
        self._lazy[type_path] = module

    def _load_lazy(self, data_type: type) -> None:
        for klass in getattr(data_type, "__mro__", (data_type,)):
            # "pandas.Series" is pandas.core.series.Series before pandas 3: match the package too.
            public = f"{klass.__module__.partition('.')[0]}.{klass.__qualname__}"
            for key in (qualified_name(klass), public):
                module = self._lazy.pop(key, None)
                if module is not None:
                    importlib.import_module(module)

    def set_default(self, materializer: type[BaseMaterializer]) -> None:
        self.default = materializer

    def lookup(self, data_type: type) -> type[BaseMaterializer]:
        if self._lazy:
            self._load_lazy(data_type)
        for klass in getattr(data_type, "__mro__", (data_type,)):
            if klass in self.materializer_types and klass is not object:
                return self.materializer_types[klass]
        if self.default is None:
            raise MaterializerError(f"no materializer for type {qualified_name(data_type)}")
        return self.default

    def is_registered(self, data_type: type) -> bool:
        if self._lazy:
            self._load_lazy(data_type)
        return any(k in self.materializer_types for k in getattr(data_type, "__mro__", ()) if k is not object)


registry = MaterializerRegistry()


def register_materializer(*types: type):
    """Decorator: ``@register_materializer(MyType)`` on a BaseMaterializer subclass."""

    def decorate(cls: type[BaseMaterializer]) -> type[BaseMaterializer]:
        for data_type in types or cls.ASSOCIATED_TYPES:  # asked for by name: replaces a default
            registry.register_and_overwrite_type(data_type, cls)
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
