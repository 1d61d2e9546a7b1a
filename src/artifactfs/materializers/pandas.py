"""pandas DataFrames and Series as ``data.parquet`` (pyarrow), readable by
any Parquet reader; the index is kept (as pandas metadata or as columns,
the way pyarrow does it).

A Series is written as a one-column table; the schema metadata key
``artifactfs`` (``{"kind": "series", "name": <JSON-encoded name>}``) makes it
load as a Series with its name. The visualization is ``preview.csv`` (the
first 100 rows) under the visualization folder.
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

from artifactfs.materializers.base import BaseMaterializer, MaterializerError
from artifactfs.materializers.builtin import decode, encode, is_jsonable

PARQUET_FILE = "data.parquet"
PREVIEW_FILE = "preview.csv"
PREVIEW_ROWS = 100
_META_KEY = b"artifactfs"
_SERIES_COLUMN = "values"
#: Metadata keeps per-column facts for this many columns at most.
METADATA_MAX_COLUMNS = 50
_STATS = ("count", "mean", "std", "min", "max")


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
        frame = data.to_frame() if isinstance(data, pd.Series) else data
        columns = frame.columns[:METADATA_MAX_COLUMNS]
        metadata: dict[str, Any] = {
            "shape": list(data.shape),
            "columns": [str(c) for c in columns],
            "dtypes": {str(c): str(frame[c].dtype) for c in columns if frame.columns.is_unique},
        }
        numeric = frame[columns].select_dtypes("number") if frame.columns.is_unique else frame.iloc[:, :0]
        if len(frame) and numeric.shape[1]:
            described = numeric.describe().loc[list(_STATS)]
            metadata["describe"] = {
                str(col): {stat: _plain(described.at[stat, col]) for stat in _STATS} for col in described.columns
            }
        return metadata

    def save_visualizations(self, data: pd.DataFrame | pd.Series) -> dict[str, str]:
        if not self.visualization_uri:
            return {}
        uri = posixpath.join(self.visualization_uri, PREVIEW_FILE)
        with self.artifact_store.open(uri, "w", encoding="utf-8") as f:
            f.write(data.head(PREVIEW_ROWS).to_csv())
        return {uri: "csv"}


def _plain(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None
