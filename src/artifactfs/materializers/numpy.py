"""NumPy arrays as ``array.npy``, readable by plain ``numpy.load``.

One ``np.save`` call streams the array into the store's writer (numpy
writes it in 16 MiB chunks, the writer hashes them on the way), so a large
array is never copied whole. Pickles are refused both ways: object arrays
belong to the cloudpickle materializer.
"""

from __future__ import annotations

import collections
import math
import warnings
from typing import Any

import numpy as np

from artifactfs.enums import ArtifactType, DType
from artifactfs.materializers.base import BaseMaterializer, MaterializerError

ARRAY_FILE = "array.npy"
#: Arrays with more elements than this get no min/max/mean in their metadata
#: (three passes over a 1 GiB array would cost more than saving it).
STATS_MAX_ELEMENTS = 10_000_000


class NumpyMaterializer(BaseMaterializer):
    """``np.ndarray`` and numpy scalars -> ``array.npy`` (``allow_pickle=False``);
    a scalar is a 0-d array on disk and loads as a scalar again."""

    ASSOCIATED_TYPES = (np.ndarray, np.generic)
    ASSOCIATED_ARTIFACT_TYPE = ArtifactType.DATA

    def save(self, data: np.ndarray | np.generic) -> None:
        if isinstance(data, np.generic):
            data = np.asarray(data)
        if data.dtype.hasobject:
            raise MaterializerError(
                f"cannot save an array of dtype {data.dtype} as .npy without pickling its Python objects",
                "convert it to a numeric or string dtype, or store it with the cloudpickle materializer "
                "(artifactfs.materializers.CloudpickleMaterializer)",
            )
        if isinstance(data, np.ma.MaskedArray):
            raise MaterializerError(
                "a .npy file cannot hold the mask of a masked array",
                "save data and mask as two arrays (e.g. a dict of arrays), or use the cloudpickle materializer",
            )
        with self.artifact_store.open(self.path(ARRAY_FILE), "wb") as f:
            np.save(f, data, allow_pickle=False)

    def load(self, data_type: type) -> np.ndarray:
        with self.artifact_store.open(self.path(ARRAY_FILE), "rb") as f:
            array = np.load(f, allow_pickle=False)
        if isinstance(data_type, type) and issubclass(data_type, np.generic) and array.ndim == 0:
            return array[()]
        return array

    def extract_metadata(self, data: np.ndarray | np.generic) -> dict[str, Any]:
        """ZenML's keys: ``shape`` (a tuple) and ``dtype`` (``DType`` of the
        scalar type); mean/std/min/max of numbers, word counts of text."""
        data = np.asarray(data)
        metadata: dict[str, Any] = {"shape": tuple(data.shape), "dtype": DType(data.dtype.type)}
        if data.size == 0 or data.size > STATS_MAX_ELEMENTS:
            return metadata
        if np.issubdtype(data.dtype, np.number) and not np.issubdtype(data.dtype, np.complexfloating):
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore", RuntimeWarning)
                for key, stat in (("mean", np.mean), ("std", np.std), ("min", np.min), ("max", np.max)):
                    value = stat(data).item()
                    if isinstance(value, int) or math.isfinite(value):  # NaN/inf cannot be recorded as JSON
                        metadata[key] = value
        elif np.issubdtype(data.dtype, np.str_):
            words = " ".join(str(item) for item in data.flat).split()
            if words:
                counts = collections.Counter(words)
                (word, count), = counts.most_common(1)
                metadata.update(unique_words=len(counts), total_words=len(words),
                                most_common_word=word, most_common_count=count)
        return metadata
