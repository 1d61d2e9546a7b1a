"""Which step run (if any) the current code runs in.

The pipeline runner sets it; the artifact API reads it so that a
``load_artifact`` inside a step is recorded as an input and a
``save_artifact`` inside a step as an output of that step run.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from collections.abc import Iterator


@dataclass(frozen=True)
class StepRunContext:
    step_run_id: int
    step_run_uuid: str
    pipeline: str
    run: str
    step: str


_current: ContextVar[StepRunContext | None] = ContextVar("artifactfs_step_run", default=None)


def current_step_run() -> StepRunContext | None:
    return _current.get()


@contextmanager
def inside_step_run(context: StepRunContext) -> Iterator[StepRunContext]:
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)
