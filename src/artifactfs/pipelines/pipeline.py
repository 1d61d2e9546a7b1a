"""``@pipeline``: a function that wires steps together; calling it traces
the step calls, checks everything that can be checked, then runs the steps
locally in order (``runner.run_pipeline``)."""

from __future__ import annotations

import copy
import functools
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from artifactfs.api.runs import PipelineRunView, list_pipeline_runs
from artifactfs.enums import ExecutionMode
from artifactfs.errors import NotFoundError
from artifactfs.index.artifacts import check_name
from artifactfs.pipelines.outputs import StepDefinitionError
from artifactfs.pipelines.runner import RunOptions, run_pipeline
from artifactfs.pipelines.trace import tracing


#: ZenML pipeline options for remote orchestration; accepted, ignored locally.
IGNORED_OPTIONS = frozenset({"settings", "extra", "model", "on_failure", "on_success", "tags",
                             "enable_artifact_metadata", "enable_artifact_visualization", "enable_step_logs",
                             "config_path", "schedule", "build", "parameters"})
_OPTIONS = {"enable_cache", "substitutions", "run_name", "store", "name", "execution_mode", "quiet"}


@dataclass(frozen=True)
class PipelineModel:
    """What ZenML's ``my_pipeline.model`` offers: the pipeline's recorded runs."""

    name: str

    @property
    def runs(self) -> list[PipelineRunView]:
        return list_pipeline_runs(self.name)

    @property
    def last_run(self) -> PipelineRunView:
        found = list_pipeline_runs(self.name, limit=1)
        if not found:
            raise NotFoundError(f"pipeline {self.name!r} has no runs yet", "call the pipeline first")
        return found[0]


class Pipeline:
    def __init__(
        self,
        func: Callable,
        name: str | None = None,
        enable_cache: bool = True,
        substitutions: dict[str, str] | None = None,
        run_name: str | None = None,
        store: str | None = None,
        execution_mode: ExecutionMode | str = ExecutionMode.CONTINUE_ON_FAILURE,
        quiet: bool = False,
    ) -> None:
        functools.update_wrapper(self, func)
        self.entrypoint = func
        self.name = check_name(name or func.__name__, "pipeline name")
        self.enable_cache = enable_cache
        self.substitutions = dict(substitutions or {})
        self.run_name = run_name
        self.store = store
        self.execution_mode = ExecutionMode(execution_mode)
        self.quiet = quiet  # no progress lines (artifactfs.pipelines.progress)

    def __repr__(self) -> str:
        return f"<pipeline {self.name}>"

    @property
    def model(self) -> PipelineModel:
        return PipelineModel(self.name)

    @property
    def last_run(self) -> PipelineRunView:
        return self.model.last_run

    def with_options(self, **options: Any) -> Pipeline:
        """A copy with other options: enable_cache, substitutions, run_name,
        store, name, execution_mode, quiet (ZenML's orchestration options are ignored)."""
        unknown = set(options) - _OPTIONS - IGNORED_OPTIONS
        if unknown:
            raise StepDefinitionError(f"unknown pipeline option(s): {', '.join(sorted(unknown))}")
        clone = copy.copy(self)
        for key, value in options.items():
            if key not in _OPTIONS:
                continue
            if key == "substitutions":
                value = {**self.substitutions, **(value or {})}
            if key == "execution_mode":
                value = ExecutionMode(value)
            setattr(clone, key, value)
        return clone

    configure = with_options  # ZenML configures in place; a copy serves every use here

    def __call__(self, *args: Any, **kwargs: Any) -> PipelineRunView:
        parameters = self._parameters(args, kwargs)
        with tracing() as trace:
            self.entrypoint(*args, **kwargs)
        if not trace.invocations:
            raise StepDefinitionError(f"pipeline {self.name!r} calls no step", "call @step functions inside it")
        options = RunOptions(
            pipeline=self.name, run_name=self.run_name, enable_cache=self.enable_cache,
            substitutions=self.substitutions, store=self.store, quiet=self.quiet,
        )
        return run_pipeline(trace, parameters, options)

    def _parameters(self, args: tuple, kwargs: dict) -> dict[str, Any]:
        try:
            bound = inspect.signature(self.entrypoint).bind(*args, **kwargs)
        except TypeError as exc:
            raise StepDefinitionError(f"pipeline {self.name!r} called with wrong arguments: {exc}") from exc
        bound.apply_defaults()
        for key, value in bound.arguments.items():
            try:
                json.dumps(value)
            except (TypeError, ValueError):
                raise StepDefinitionError(
                    f"pipeline parameter {key!r} is not JSON-serializable ({type(value).__name__})",
                    "pass plain values to pipelines; produce objects in a step or save them as artifacts",
                ) from None
        return dict(bound.arguments)


def pipeline(
    func: Callable | None = None,
    *,
    name: str | None = None,
    enable_cache: bool = True,
    substitutions: dict[str, str] | None = None,
    execution_mode: ExecutionMode | str = ExecutionMode.CONTINUE_ON_FAILURE,
    quiet: bool = False,
    **options: Any,
):
    """Decorator, with or without arguments: ``@pipeline`` or ``@pipeline(enable_cache=False)``.

    ``execution_mode`` is accepted (ZenML's); the local runner runs steps in
    order and stops at the first failure whatever the mode.

    A run logs one line per step as it starts and ends (logger
    ``artifactfs.pipelines``, on stderr unless logging is configured);
    ``quiet=True`` turns that off."""
    unknown = set(options) - IGNORED_OPTIONS
    if unknown:
        raise StepDefinitionError(f"unknown pipeline option(s): {', '.join(sorted(unknown))}")

    def wrap(f: Callable) -> Pipeline:
        return Pipeline(f, name=name, enable_cache=enable_cache, substitutions=substitutions,
                        execution_mode=execution_mode, quiet=quiet)

    return wrap(func) if func is not None else wrap
