"""Materializers: Python objects <-> files in a version's folder.

Importing this package registers every built-in materializer. Pick one for
a value with :func:`materializer_for_value` (it looks at the value, e.g. a
dict of arrays needs sub-folders, a dict of numbers is one JSON file); pick
one for a type with ``registry.lookup``.
"""

from artifactfs.materializers.base import (
    VISUALIZATION_TYPES,
    BaseMaterializer,
    MaterializerError,
    MaterializerRegistry,
    import_by_name,
    qualified_name,
    register_materializer,
    registry,
)
from artifactfs.materializers.builtin import BuiltInMaterializer, BytesMaterializer
from artifactfs.materializers.cloudpickle_fallback import CloudpickleMaterializer, PythonVersionWarning
from artifactfs.materializers.containers import ContainerMaterializer, materializer_for_value
from artifactfs.materializers.numpy import NumpyMaterializer
from artifactfs.materializers.pandas import PandasMaterializer
from artifactfs.materializers.path import PathMaterializer
from artifactfs.materializers.structured import DataclassMaterializer, PydanticMaterializer

__all__ = [
    "VISUALIZATION_TYPES",
    "BaseMaterializer",
    "BuiltInMaterializer",
    "BytesMaterializer",
    "CloudpickleMaterializer",
    "ContainerMaterializer",
    "DataclassMaterializer",
    "MaterializerError",
    "MaterializerRegistry",
    "NumpyMaterializer",
    "PandasMaterializer",
    "PathMaterializer",
    "PydanticMaterializer",
    "PythonVersionWarning",
    "import_by_name",
    "materializer_for_value",
    "qualified_name",
    "register_materializer",
    "registry",
]
