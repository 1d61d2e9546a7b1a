"""``@pipeline``: a function that wires steps together; calling it traces
the step calls, checks everything that can be checked, then runs the steps
locally in order (``runner.run_pipeline``)."""

from __future__ import annotations

import copy
import functools
import inspect
import json
from collections.abc import Callable
from typing import Any

from artifactfs.api.runs import PipelineRunView
from artifactfs.index.artifacts import check_name
from artifactfs.pipelines.outputs import StepDefinitionError
from artifactfs.pipelines.runner import RunOptions, run_pipeline
from artifactfs.pipelines.trace import tracing


class Pipeline:
    def __init__(
        self,
        func: Callable,
        name: str | None = None,
        enable_cache: bool = True,
        substitutions: dict[str, str] | None = None,
        run_name: str | None = None,
        store: str | None = None,
    ) -> None:
        functools.update_wrapper(self, func)
        self.entrypoint = func
        self.name = check_name(name or func.__name__, "pipeline name")
        self.enable_cache = enable_cache
        self.substitutions = dict(substitutions or {})
        self.run_name = run_name
        self.store = store

    def __repr__(self) -> str:
        return f"<pipeline {self.name}>"

    def with_options(self, **options: Any) -> Pipeline:
        """A copy with other options: enable_cache, substitutions, run_name, store, name."""
        unknown = set(options) - {"enable_cache", "substitutions", "run_name", "store", "name"}
        if unknown:
            raise StepDefinitionError(f"unknown pipeline option(s): {', '.join(sorted(unknown))}")
        clone = copy.copy(self)
        for key, value in options.items():
            if key == "substitutions":
                value = {**self.substitutions, **(value or {})}
            setattr(clone, key, value)
        return clone

    def __call__(self, *args: Any, **kwargs: Any) -> PipelineRunView:
        parameters = self._parameters(args, kwargs)
        with tracing() as trace:
            self.entrypoint(*args, **kwargs)
        if not trace.invocations:
            raise StepDefinitionError(f"pipeline {self.name!r} calls no step", "call @step functions inside it")
        options = RunOptions(
            pipeline=self.name, run_name=self.run_name, enable_cache=self.enable_cache,
            substitutions=self.substitutions, store=self.store,
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
):
    """Decorator, with or without arguments: ``@pipeline`` or ``@pipeline(enable_cache=False)``."""

    def wrap(f: Callable) -> Pipeline:
        return Pipeline(f, name=name, enable_cache=enable_cache, substitutions=substitutions)

    return wrap(func) if func is not None else wrap
