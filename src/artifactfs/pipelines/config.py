"""What a pipeline author attaches to outputs and inputs, with ZenML's names:
``ArtifactConfig`` inside ``Annotated[...]`` return types,
``ExternalArtifact`` to pass a value that no step produced, and
``UnmaterializedArtifact`` to receive an input's version instead of its value."""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass, field
from typing import Any

from artifactfs.api.artifacts import ArtifactVersion, save_artifact
from artifactfs.enums import ArtifactSaveType
from artifactfs.errors import ArtifactfsError
from artifactfs.index.models import ArtifactType


@dataclass
class ArtifactConfig:
    """How a step output is stored: its artifact name (placeholders allowed),
    a fixed version, tags, metadata and artifact type. ``is_model_artifact``
    and ``is_deployment_artifact`` are ZenML's model-control-plane flags:
    ``is_model_artifact`` sets the type to ``ModelArtifact``, both are also
    recorded as tags; artifactfs has no model registry."""

    name: str | None = None
    version: str | int | None = None
    tags: list[str] | None = None
    run_metadata: dict[str, Any] | None = None
    artifact_type: ArtifactType | str | None = None
    is_model_artifact: bool = False
    is_deployment_artifact: bool = False

    def __post_init__(self) -> None:
        if self.artifact_type is None and self.is_model_artifact:
            self.artifact_type = ArtifactType.MODEL
        if self.artifact_type is not None:
            self.artifact_type = ArtifactType(self.artifact_type)


class ExternalArtifactError(ArtifactfsError, ValueError):
    """An ExternalArtifact asked for something it cannot do."""


@dataclass(eq=False)
class ExternalArtifact:
    """A value passed to a step inside a pipeline, saved as an artifact when
    the step runs (named ``<pipeline>::<step>::<input>``). As in ZenML 0.98,
    ``id`` / ``name`` / ``version`` are refused: pass the version itself."""

    value: Any = None
    id: Any = None
    name: str | None = None
    version: str | None = None
    materializer: Any = None
    store_artifact_metadata: bool = True
    store_artifact_visualizations: bool = True
    tags: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        given = [key for key in ("id", "name", "version") if getattr(self, key) is not None]
        if given:
            raise ExternalArtifactError(
                f"ExternalArtifact({'=..., '.join(given)}=...) is no longer supported (ZenML 0.98 refuses it too)",
                "pass Client().get_artifact_version(name_or_id, version) to the step instead",
            )

    def upload_by_value(self) -> uuid.UUID:
        """Save the value now, as ``external_<uuid>`` (ZenML's name), and
        return the new version's id."""
        return uuid.UUID(self.save(f"external_{uuid.uuid4()}").id)

    def save(self, name: str, store: Any = None) -> ArtifactVersion:
        """Save the value as ``name`` with this artifact's options."""
        return save_artifact(self.value, name, materializer=self.materializer, tags=list(self.tags),
                             extract_metadata=self.store_artifact_metadata,
                             include_visualizations=self.store_artifact_visualizations,
                             save_type=ArtifactSaveType.EXTERNAL, store=store)


@dataclass
class UnmaterializedArtifact(ArtifactVersion):
    """Annotate a step input with this to get the version (``.uri``,
    ``.files``, ``.load()``) instead of the loaded value."""

    @classmethod
    def of(cls, version: ArtifactVersion) -> UnmaterializedArtifact:
        """The unmaterialized form of a version (its fields, no value loaded)."""
        return cls(**{f.name: getattr(version, f.name) for f in dataclasses.fields(version)})
