"""Which step run (if any) the current code runs in.

The pipeline runner sets it; the artifact API reads it so that a
``load_artifact`` inside a step is recorded as an input and a
``save_artifact`` inside a step as an output of that step run.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class StepRunContext:
    step_run_id: int
    step_run_uuid: str
    pipeline: str
    run: str
    step: str
    #: output name -> metadata / tags asked for while the step runs
    #: (``get_step_context().add_output_metadata``, ``log_metadata``), applied
    #: when the outputs are committed.
    output_metadata: dict[str, dict[str, Any]] = field(default_factory=dict)
    output_tags: dict[str, list[str]] = field(default_factory=dict)
    #: output names in order (for ``log_artifact_metadata`` without a name)
    output_names: tuple[str, ...] = ()
    #: run when the step ends, success or not (temporary folders)
    cleanups: list[Callable[[], None]] = field(default_factory=list)


_current: ContextVar[StepRunContext | None] = ContextVar("artifactfs_step_run", default=None)


def current_step_run() -> StepRunContext | None:
    """The step run the calling code runs in, or None outside a step."""
    return _current.get()


@contextmanager
def inside_step_run(context: StepRunContext) -> Iterator[StepRunContext]:
    """Run the block as part of step run ``context``; its cleanups run when it ends."""
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)
        for cleanup in context.cleanups:
            cleanup()


def remove_after_step(folder: str) -> None:
    """Remove a scratch folder when the running step ends (outside a step:
    the caller's to remove, as in ZenML)."""
    context = current_step_run()
    if context is not None:
        context.cleanups.append(lambda: shutil.rmtree(folder, ignore_errors=True))


# -- a pipeline function being traced ------------------------------------------------
# While ``@pipeline`` traces its function, ``Client().get_artifact_version``
# must not resolve yet (ZenML's late materialization): a version made by an
# earlier step of the same run does not exist at trace time. The pipelines
# layer sets this flag; the artifact API then hands out a lazy reference.

_tracing: ContextVar[bool] = ContextVar("artifactfs_tracing", default=False)


def pipeline_tracing() -> bool:
    """Whether a ``@pipeline`` function is being traced now (lookups then stay lazy)."""
    return _tracing.get()


@contextmanager
def tracing_pipeline() -> Iterator[None]:
    """Mark the block as the tracing of a pipeline function."""
    token = _tracing.set(True)
    try:
        yield
    finally:
        _tracing.reset(token)
