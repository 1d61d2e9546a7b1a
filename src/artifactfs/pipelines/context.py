"""``get_step_context()``: what a running step may ask and tell about
itself, with ZenML's names (``add_output_metadata``, ``add_output_tags``,
``pipeline_run``, ``step_run`` ...). The state lives in
``api.context.StepRunContext``; this is its face for step code."""

from __future__ import annotations

from typing import Any

from artifactfs.api.context import StepRunContext, current_step_run
from artifactfs.api.metadata import _output_name, _to_output
from artifactfs.api.runs import OutputVersions, PipelineRunView, PipelineView, StepRunView, get_pipeline_run


class StepContext:
    def __init__(self, state: StepRunContext) -> None:
        self._state = state

    # the names earlier artifactfs code reads
    @property
    def pipeline(self) -> PipelineView:
        """The pipeline (``.name``, ``.id``); also its name as a ``str``."""
        return PipelineView(self._state.pipeline)

    @property
    def run(self) -> str:
        """The name of the running pipeline run."""
        return self._state.run

    @property
    def step(self) -> str:
        """The name of the running step (its invocation name)."""
        return self._state.step

    @property
    def step_run_id(self) -> int:
        """The index id of the running step run."""
        return self._state.step_run_id

    @property
    def step_run_uuid(self) -> str:
        """The id of the running step run."""
        return self._state.step_run_uuid

    @property
    def step_name(self) -> str:
        """The name of the running step (ZenML's ``step_name``)."""
        return self._state.step

    @property
    def pipeline_run(self) -> PipelineRunView:
        """The running pipeline run, read from the index."""
        return get_pipeline_run(self._state.run)

    @property
    def step_run(self) -> StepRunView:
        """The running step run, read from the index."""
        return self.pipeline_run.steps[self._state.step]

    @property
    def inputs(self) -> dict[str, OutputVersions]:
        """The versions this step run reads, by input name: a list under each (ZenML 0.98's), which
        also stands for its version when it holds one (``inputs["x"].load()``)."""
        return dict(self.step_run.inputs)

    def add_output_metadata(self, metadata: dict[str, Any], output_name: str | None = None) -> None:
        """Metadata for an output (the only one when no name is given), stored
        with it when the step returns."""
        _to_output(self._state, _output_name(self._state, output_name), metadata)

    def get_output_metadata(self, output_name: str | None = None) -> dict[str, Any]:
        """The metadata asked for so far for an output (``output_name``: needed when the step has several)."""
        return dict(self._state.output_metadata.get(_output_name(self._state, output_name), {}))

    def add_output_tags(self, tags: list[str], output_name: str | None = None) -> None:
        """Tag an output when it is saved (``output_name``: needed when the step has several)."""
        name = _output_name(self._state, output_name)
        self._state.output_tags.setdefault(name, []).extend(t for t in tags if t not in self._state.output_tags[name])

    def remove_output_tags(self, tags: list[str], output_name: str | None = None) -> None:
        """Take back tags asked for an output."""
        name = _output_name(self._state, output_name)
        self._state.output_tags[name] = [t for t in self._state.output_tags.get(name, []) if t not in tags]

    def get_output_tags(self, output_name: str | None = None) -> list[str]:
        """The tags asked for so far for an output."""
        return list(self._state.output_tags.get(_output_name(self._state, output_name), []))


def get_step_context() -> StepContext:
    """The step run the calling code runs in; a RuntimeError elsewhere (as in ZenML)."""
    state = current_step_run()
    if state is None:
        raise RuntimeError("get_step_context() is only available inside a running step")
    return StepContext(state)
