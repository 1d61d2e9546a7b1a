"""``@pipeline``: a function that wires steps together; calling it traces
the step calls, checks everything that can be checked, then runs the steps
locally in order (``runner.run_pipeline``)."""

from __future__ import annotations

import copy
import functools
import inspect
import json
import warnings
from collections.abc import Callable
from typing import Any

from artifactfs.api.runs import PipelineRunView, PipelineView
from artifactfs.enums import ExecutionMode
from artifactfs.index.artifacts import check_name
from artifactfs.index.tags import as_tags
from artifactfs.pipelines.outputs import StepDefinitionError
from artifactfs.pipelines.runner import RunOptions, run_pipeline
from artifactfs.pipelines.trace import tracing


#: ZenML pipeline options for remote orchestration; accepted, ignored locally.
IGNORED_OPTIONS = frozenset({"settings", "extra", "model", "on_failure", "on_success",
                             "enable_artifact_metadata", "enable_artifact_visualization", "enable_step_logs",
                             "config_path", "schedule", "build", "parameters"})
#: ZenML options deprecated in 0.98 and without effect there: accepted with a warning.
DEPRECATED_OPTIONS = frozenset({"unlisted"})
_OPTIONS = {"enable_cache", "substitutions", "run_name", "store", "name", "execution_mode", "quiet", "tags"}


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
        tags: Any = None,
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
        self.tags = as_tags(tags)  # each run's tags; cascade=True ones also go on its output versions

    def __repr__(self) -> str:
        return f"<pipeline {self.name}>"

    @property
    def model(self) -> PipelineView:
        """ZenML's ``my_pipeline.model``: the pipeline's recorded runs (``.runs``, ``.last_run``)."""
        return PipelineView(self.name)

    @property
    def last_run(self) -> PipelineRunView:
        """The pipeline's newest run."""
        return self.model.last_run

    def with_options(self, **options: Any) -> Pipeline:
        """A copy with other options (see :meth:`configure`); this pipeline is unchanged."""
        clone = copy.copy(self)
        clone.substitutions = dict(self.substitutions)
        return clone.configure(**options)

    def configure(self, **options: Any) -> Pipeline:
        """Change this pipeline's options in place, as ZenML does, and return
        it: enable_cache, substitutions (merged), run_name, store, name,
        execution_mode, quiet. ZenML's orchestration options are ignored."""
        _check_options(options)
        for key, value in options.items():
            if key not in _OPTIONS:
                continue
            if key == "substitutions":
                value = {**self.substitutions, **(value or {})}
            if key == "execution_mode":
                value = ExecutionMode(value)
            if key == "tags":  # added to the pipeline's, as ZenML merges them
                value = [*self.tags, *(t for t in as_tags(value) if t not in self.tags)]
            setattr(self, key, value)
        return self

    def __call__(self, *args: Any, **kwargs: Any) -> PipelineRunView:
        parameters = self._parameters(args, kwargs)
        with tracing() as trace:
            self.entrypoint(*args, **kwargs)
        if not trace.invocations:
            raise StepDefinitionError(f"pipeline {self.name!r} calls no step", "call @step functions inside it")
        options = RunOptions(
            pipeline=self.name, run_name=self.run_name, enable_cache=self.enable_cache,
            substitutions=self.substitutions, store=self.store, quiet=self.quiet, tags=list(self.tags),
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


def _check_options(options: dict[str, Any], allowed: frozenset[str] = frozenset(_OPTIONS)) -> None:
    """Refuse unknown options; warn about deprecated ones."""
    unknown = set(options) - allowed - IGNORED_OPTIONS - DEPRECATED_OPTIONS
    if unknown:
        raise StepDefinitionError(f"unknown pipeline option(s): {', '.join(sorted(unknown))}")
    for key in sorted(DEPRECATED_OPTIONS & set(options)):
        warnings.warn(f"pipeline option {key!r} is deprecated in ZenML and has no effect", DeprecationWarning,
                      stacklevel=3)


def pipeline(
    func: Callable | None = None,
    *,
    name: str | None = None,
    enable_cache: bool = True,
    substitutions: dict[str, str] | None = None,
    execution_mode: ExecutionMode | str = ExecutionMode.CONTINUE_ON_FAILURE,
    quiet: bool = False,
    tags: Any = None,
    **options: Any,
):
    """Decorator, with or without arguments: ``@pipeline`` or ``@pipeline(enable_cache=False)``.

    ``execution_mode`` is accepted (ZenML's); the local runner runs steps in
    order and stops at the first failure whatever the mode.

    A run logs one line per step as it starts and ends (logger
    ``artifactfs.pipelines``, on stderr unless logging is configured);
    ``quiet=True`` turns that off. ``tags`` (names or ``Tag`` values) go on
    every run; a ``Tag(..., cascade=True)`` also on every output version."""
    _check_options(options, allowed=frozenset())

    def wrap(f: Callable) -> Pipeline:
        return Pipeline(f, name=name, enable_cache=enable_cache, substitutions=substitutions,
                        execution_mode=execution_mode, quiet=quiet, tags=tags)

    return wrap(func) if func is not None else wrap
