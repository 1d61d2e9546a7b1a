"""Lineage queries: which step runs produced or consumed a version."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from artifactfs.index.models import Pipeline, PipelineRun, StepIO, StepRun


@dataclass(frozen=True)
class Link:
    direction: str  # "input" | "output"
    pipeline: str
    run: str
    step: str
    name: str
    step_run_uuid: str


def version_links(session: Session, version_id: int) -> list[Link]:
    query = (
        select(StepIO.direction, Pipeline.name, PipelineRun.name, StepRun.name, StepIO.name, StepRun.uuid)
        .join(StepRun, StepRun.id == StepIO.step_run_id)
        .join(PipelineRun, PipelineRun.id == StepRun.run_id)
        .join(Pipeline, Pipeline.id == PipelineRun.pipeline_id)
        .where(StepIO.version_id == version_id)
        .order_by(StepIO.direction.desc(), StepIO.id)
    )
    return [Link(*row) for row in session.execute(query)]
