"""ZenML's structured strings (``artifactfs.types``) as the file they are:
``output.csv``, ``output.html``, ``output.md`` or ``output.json`` (ZenML's
names), which is also the version's visualization."""

from __future__ import annotations

from typing import Any

from artifactfs.enums import ArtifactType, VisualizationType
from artifactfs.materializers.base import BaseMaterializer, MaterializerError
from artifactfs.types import CSVString, HTMLString, JSONString, MarkdownString

FILES = {
    CSVString: ("output.csv", VisualizationType.CSV),
    HTMLString: ("output.html", VisualizationType.HTML),
    MarkdownString: ("output.md", VisualizationType.MARKDOWN),
    JSONString: ("output.json", VisualizationType.JSON),
}


class StructuredStringMaterializer(BaseMaterializer):
    ASSOCIATED_TYPES = tuple(FILES)
    ASSOCIATED_ARTIFACT_TYPE = ArtifactType.DATA_ANALYSIS

    def _file(self, data_type: type) -> tuple[str, VisualizationType]:
        for kind, entry in FILES.items():
            if isinstance(data_type, type) and issubclass(data_type, kind):
                return entry
        raise MaterializerError(f"{data_type!r} is not one of {', '.join(k.__name__ for k in FILES)}")

    def save(self, data: str) -> None:
        name, _ = self._file(type(data))
        with self.artifact_store.open(self.path(name), "w", encoding="utf-8") as f:
            f.write(data)

    def load(self, data_type: type) -> Any:
        name, _ = self._file(data_type)
        with self.artifact_store.open(self.path(name), "r", encoding="utf-8") as f:
            return data_type(f.read())

    def save_visualizations(self, data: str) -> dict[str, VisualizationType]:
        name, kind = self._file(type(data))
        return {self.path(name): kind}
