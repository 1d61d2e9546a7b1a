"""Materializers: Python objects <-> files in a version's folder.

Importing this package registers every built-in materializer; the numpy and
pandas ones are imported on first use of their types. Pick one for
a value with :func:`materializer_for_value` (it looks at the value, e.g. a
dict of arrays needs sub-folders, a dict of numbers is one JSON file); pick
one for a type with ``registry.lookup``.
"""

from artifactfs.materializers.base import (
    VISUALIZATION_TYPES,
    BaseMaterializer,
    MaterializerError,
    MaterializerInterfaceError,
    MaterializerRegistry,
    import_by_name,
    qualified_name,
    register_materializer,
    registry,
)
from artifactfs.materializers.builtin import BuiltInMaterializer, BytesMaterializer, UUIDMaterializer
from artifactfs.materializers.cloudpickle_fallback import CloudpickleMaterializer, PythonVersionWarning
from artifactfs.materializers.containers import ContainerMaterializer, materializer_for_value
from artifactfs.materializers.path import PathMaterializer
from artifactfs.materializers.strings import StructuredStringMaterializer
from artifactfs.materializers.structured import DataclassMaterializer, PydanticMaterializer

_LAZY_MODULES = {
    "NumpyMaterializer": "artifactfs.materializers.numpy",
    "PandasMaterializer": "artifactfs.materializers.pandas",
}
for _type_path, _module in (
    ("numpy.ndarray", "artifactfs.materializers.numpy"),
    ("numpy.generic", "artifactfs.materializers.numpy"),
    ("pandas.DataFrame", "artifactfs.materializers.pandas"),
    ("pandas.Series", "artifactfs.materializers.pandas"),
):
    registry.register_lazy(_type_path, _module)


def __getattr__(name: str):
    """``NumpyMaterializer`` and ``PandasMaterializer``, imported on first use."""
    if name in _LAZY_MODULES:
        import importlib

        return getattr(importlib.import_module(_LAZY_MODULES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "VISUALIZATION_TYPES",
    "BaseMaterializer",
    "BuiltInMaterializer",
    "BytesMaterializer",
    "UUIDMaterializer",
    "CloudpickleMaterializer",
    "ContainerMaterializer",
    "DataclassMaterializer",
    "MaterializerError",
    "MaterializerInterfaceError",
    "MaterializerRegistry",
    "NumpyMaterializer",
    "PandasMaterializer",
    "PathMaterializer",
    "PydanticMaterializer",
    "PythonVersionWarning",
    "StructuredStringMaterializer",
    "import_by_name",
    "materializer_for_value",
    "qualified_name",
    "register_materializer",
    "registry",
]
