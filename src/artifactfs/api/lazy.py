"""A reference to an artifact version, taken inside a ``@pipeline`` function
and resolved when the step that receives it runs (ZenML's late
materialization): ``Client().get_artifact_version("x")`` in a pipeline body
finds a version that an earlier step of the same run made."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class LazyArtifactVersion:
    name_or_id: str
    version: str | None = None

    def resolve(self):
        """The version this reference names, looked up now (inside the step that uses it)."""
        from artifactfs.api.artifacts import get_artifact_version  # that module hands these out

        return get_artifact_version(self.name_or_id, self.version)

    def __getattr__(self, name: str) -> Any:
        """Reading an attribute in the pipeline body resolves at once."""
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.resolve(), name)

    def __str__(self) -> str:
        return f"{self.name_or_id}:{self.version or 'latest'} (resolved when the step runs)"


def lazy_version(name_or_id: str | uuid.UUID, version: str | None) -> LazyArtifactVersion:
    """A reference to a version, resolved when the step that receives it runs."""
    return LazyArtifactVersion(str(name_or_id), version)
