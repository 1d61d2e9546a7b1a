"""NumPy arrays as ``array.npy``, readable by plain ``numpy.load``.

A contiguous array is written as ``np.save`` writes it to a real file: the
header (``numpy.lib.format``), then the array's own memory in one write,
which the store's writer hashes slice by slice beside the write, so a large
array is never copied. Other arrays go through ``np.save``, which streams
them in chunks. Pickles are refused both ways: object arrays belong to the
cloudpickle materializer.
"""

from __future__ import annotations

import collections
import io
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
            if not _write_contiguous(f, data):
                np.save(f, data, allow_pickle=False)

    def load(self, data_type: type) -> np.ndarray:
        with self.artifact_store.open(self.path(ARRAY_FILE), "rb") as f:
            array = np.load(f, allow_pickle=False) if np.lib.format.isfileobj(f) else _read_array(f)
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


def _write_contiguous(f, data: np.ndarray) -> bool:
    """The bytes ``np.save`` writes for a contiguous array of plain numbers,
    without its chunked copies; False for any other array (``np.save`` then)."""
    if data.dtype.names is not None or not (data.flags.c_contiguous or data.flags.f_contiguous):
        return False
    header = np.lib.format.header_data_from_array_1_0(data)
    try:
        np.lib.format.write_array_header_1_0(f, header)
    except ValueError:  # a header over 64 KiB (a huge shape): format 2.0, as np.save picks
        np.lib.format.write_array_header_2_0(f, header)
    # Memory order: F for a Fortran array (the header says so), else C.
    f.write(data.reshape(-1, order="A").view(np.uint8))
    return True


def _read_array(f) -> np.ndarray:
    """``np.load`` for a file object that is not a plain file (a verifying
    reader, a remote file), which numpy would read in 256 KiB copies: the
    header, then the array's own memory filled by ``readinto``."""
    version = np.lib.format.read_magic(f)
    if version not in ((1, 0), (2, 0)):  # 3.0 (UTF-8 field names): numpy's own reader
        return np.load(io.BytesIO(np.lib.format.magic(*version) + f.read()), allow_pickle=False)
    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran_order, dtype = read_header(f)
    if dtype.hasobject:
        raise MaterializerError("this .npy holds Python objects, which load only by unpickling",
                                "load it with numpy.load(allow_pickle=True) if you trust its origin")
    array = np.empty(shape, dtype=dtype, order="F" if fortran_order else "C")
    view = memoryview(array.reshape(-1, order="A").view(np.uint8))  # type: ignore[arg-type]  # an ndarray is a buffer
    filled = 0
    while filled < view.nbytes:
        got = f.readinto(view[filled:])
        if not got:
            raise MaterializerError(f"the .npy file ends after {filled} of its {view.nbytes} bytes of data",
                                    "the payload is damaged; run `artifactfs fsck`")
        filled += got
    return array
