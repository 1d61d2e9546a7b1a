"""Lineage of versions as plain rows for users and the CLI."""

from __future__ import annotations

from artifactfs.api.artifacts import ArtifactVersion
from artifactfs.index import get_index
from artifactfs.index.lineage import version_links


def links_of(version: ArtifactVersion) -> list[tuple[str, str, str, str, str]]:
    """``(direction, pipeline, run, step, name)`` for every step run that
    produced (output) or read (input) the version."""
    with get_index().read() as session:
        return [(l.direction, l.pipeline, l.run, l.step, l.name) for l in version_links(session, version._pk)]
