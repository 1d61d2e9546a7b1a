"""pandas DataFrames and Series as ``data.parquet`` (pyarrow), readable by
any Parquet reader; the index is kept (as pandas metadata or as columns,
the way pyarrow does it).

A Series is written as a one-column table; the schema metadata key
``artifactfs`` (``{"kind": "series", "name": <JSON-encoded name>}``) makes it
load as a Series with its name. The visualizations are ZenML's ``describe.csv``
and ``sample.csv`` under the visualization folder.
"""

from __future__ import annotations

import json
import math
import posixpath
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from artifactfs.enums import ArtifactType, DType, VisualizationType
from artifactfs.materializers.base import BaseMaterializer, MaterializerError
from artifactfs.materializers.builtin import decode, encode, is_jsonable

PARQUET_FILE = "data.parquet"
DESCRIBE_FILE = "describe.csv"
SAMPLE_FILE = "sample.csv"
SAMPLE_ROWS = 10
_META_KEY = b"artifactfs"
_SERIES_COLUMN = "values"
#: Metadata keeps per-column facts for this many columns at most.
METADATA_MAX_COLUMNS = 50
_STATS = ("mean", "std", "min", "max")


def _series_name(name: Any) -> Any:
    if isinstance(name, np.generic):
        name = name.item()
    if not is_jsonable(name, top=False):
        raise MaterializerError(
            f"the Series name {name!r} ({type(name).__name__}) cannot be recorded",
            "rename the Series (series.rename('...')) or use the cloudpickle materializer",
        )
    return name


class PandasMaterializer(BaseMaterializer):
    """``pd.DataFrame`` and ``pd.Series`` -> ``data.parquet``."""

    ASSOCIATED_TYPES = (pd.DataFrame, pd.Series)
    ASSOCIATED_ARTIFACT_TYPE = ArtifactType.DATA

    def save(self, data: pd.DataFrame | pd.Series) -> None:
        extra = {"kind": "dataframe"}
        if isinstance(data, pd.Series):
            extra = {"kind": "series", "name": encode(_series_name(data.name))}
            data = data.to_frame(name=data.name if isinstance(data.name, str) else _SERIES_COLUMN)
        try:
            table = pa.Table.from_pandas(data)
        except (pa.ArrowException, TypeError, ValueError) as exc:
            raise MaterializerError(
                f"pyarrow cannot store this DataFrame as Parquet: {exc}",
                "give columns of mixed Python objects one type, or use the cloudpickle materializer",
            ) from exc
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), _META_KEY: json.dumps(extra)})
        with self.artifact_store.open(self.path(PARQUET_FILE), "wb") as f:
            pq.write_table(table, f)

    def load(self, data_type: type) -> pd.DataFrame | pd.Series:
        with self.artifact_store.open(self.path(PARQUET_FILE), "rb") as f:
            table = pq.read_table(f)
        extra = json.loads((table.schema.metadata or {}).get(_META_KEY, b"{}"))
        frame = table.to_pandas()
        if extra.get("kind") == "series":
            series = frame.iloc[:, 0]
            series.name = decode(extra.get("name"))
            return series
        return frame

    def extract_metadata(self, data: pd.DataFrame | pd.Series) -> dict[str, Any]:
        """ZenML's keys: ``shape`` (a tuple); for a Series ``dtype`` and its
        mean/std/min/max; for a DataFrame ``dtype`` and each statistic per
        numeric column (at most METADATA_MAX_COLUMNS columns)."""
        metadata: dict[str, Any] = {"shape": tuple(data.shape)}
        if isinstance(data, pd.Series):
            metadata["dtype"] = DType(data.dtype.type)
            if len(data) and pd.api.types.is_numeric_dtype(data.dtype) and not pd.api.types.is_bool_dtype(data.dtype):
                for stat in _STATS:
                    value = _plain(getattr(data, stat)())
                    if value is not None:  # NaN (std of one value) is left out
                        metadata[stat] = value
            return metadata
        frame = data.iloc[:, :METADATA_MAX_COLUMNS] if data.columns.is_unique else data.iloc[:, :0]
        metadata["dtype"] = {str(c): DType(t.type) for c, t in frame.dtypes.items()}
        numeric = frame.select_dtypes("number")
        for stat in _STATS:
            values = getattr(numeric, stat)() if len(numeric) else pd.Series(dtype=float)
            metadata[stat] = {str(c): _plain(v) for c, v in values.items()}
        return metadata

    def save_visualizations(self, data: pd.DataFrame | pd.Series) -> dict[str, VisualizationType]:
        """ZenML's two CSVs: ``describe.csv`` (statistics) and ``sample.csv``
        (the first rows), beside the payload."""
        folder = self.visualization_folder
        describe, sample = posixpath.join(folder, DESCRIBE_FILE), posixpath.join(folder, SAMPLE_FILE)
        statistics, rows = data.describe().to_csv(), data.head(SAMPLE_ROWS).to_csv()  # before any file exists
        with self.artifact_store.open(describe, "w", encoding="utf-8") as f:
            f.write(statistics)
        with self.artifact_store.open(sample, "w", encoding="utf-8") as f:
            f.write(rows)
        return {describe: VisualizationType.CSV, sample: VisualizationType.CSV}


def _plain(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None
