"""``Client``: queries over the index for users and notebooks."""

from __future__ import annotations

from artifactfs.api import runs
from artifactfs.api.artifacts import ArtifactVersion, get_artifact_version
from artifactfs.api.runs import PipelineRunView
from artifactfs.api.stores import get_store
from artifactfs.index import artifacts as rows
from artifactfs.index import get_index
from artifactfs.index.artifacts import ArtifactSummary
from artifactfs.stores.base import ArtifactStore


class Client:
    """Read access to everything the index records."""

    def get_store(self, name: str | None = None) -> ArtifactStore:
        return get_store(name)

    def get_artifact_version(self, name_or_id: str, version: str | int | None = None) -> ArtifactVersion:
        return get_artifact_version(name_or_id, version)

    def list_artifact_versions(
        self, name: str | None = None, tag: str | None = None, limit: int | None = None
    ) -> list[ArtifactVersion]:
        """Live versions, newest first."""
        with get_index().read() as session:
            return [ArtifactVersion.from_row(r) for r in rows.list_versions(session, name, tag, limit)]

    def list_artifacts(self) -> list[ArtifactSummary]:
        with get_index().read() as session:
            return rows.list_artifacts(session)

    def get_pipeline_run(self, name_or_id: str) -> PipelineRunView:
        return runs.get_pipeline_run(name_or_id)

    def list_pipeline_runs(self, pipeline: str | None = None, limit: int | None = None) -> list[PipelineRunView]:
        """Runs, newest first."""
        return runs.list_pipeline_runs(pipeline, limit)

    def delete_pipeline_run(self, name_or_id: str) -> PipelineRunView:
        """Remove a run's rows; its artifacts stay until the pruner finds them unreferenced."""
        return runs.delete_pipeline_run(name_or_id)
