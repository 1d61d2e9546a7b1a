"""``@step``: a function whose return values become artifact versions.

Called inside a ``@pipeline`` function, a step does not run: it records an
invocation and returns placeholders (``StepOutput``) that later steps take
as inputs. Called anywhere else, it is the plain function.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from artifactfs.pipelines.outputs import OutputSpec, parse_outputs
from artifactfs.pipelines.trace import current_trace


@dataclass(frozen=True)
class StepOutput:
    """A placeholder for one output of a step invocation in a pipeline being traced."""

    invocation: str
    output: str

    def __repr__(self) -> str:
        return f"<output {self.output!r} of step {self.invocation!r}>"


class Step:
    def __init__(
        self,
        func: Callable,
        name: str | None = None,
        enable_cache: bool | None = None,
        substitutions: dict[str, str] | None = None,
    ) -> None:
        functools.update_wrapper(self, func)
        self.entrypoint = func
        self.name = name or func.__name__
        self.enable_cache = enable_cache
        self.substitutions = dict(substitutions or {})
        self.signature = inspect.signature(func)
        self.outputs: list[OutputSpec] = parse_outputs(func)

    def __repr__(self) -> str:
        return f"<step {self.name}>"

    def with_options(
        self,
        enable_cache: bool | None = None,
        substitutions: dict[str, str] | None = None,
        name: str | None = None,
    ) -> Step:
        """A copy with other options; the original is unchanged."""
        clone = copy.copy(self)
        if enable_cache is not None:
            clone.enable_cache = enable_cache
        if substitutions:
            clone.substitutions = {**self.substitutions, **substitutions}
        if name:
            clone.name = name
        return clone

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        trace = current_trace()
        if trace is None:
            return self.entrypoint(*args, **kwargs)
        invocation = trace.add(self, args, kwargs)
        placeholders = tuple(StepOutput(invocation, spec.name) for spec in self.outputs)
        if len(placeholders) == 1:
            return placeholders[0]
        return placeholders or None

    @functools.cached_property
    def code_hash(self) -> str:
        """sha256 of the function's source (its bytecode when no source exists)."""
        try:
            code = inspect.getsource(self.entrypoint).encode()
        except (OSError, TypeError):
            func_code = self.entrypoint.__code__
            code = func_code.co_code + repr(func_code.co_consts).encode()
        return hashlib.sha256(code).hexdigest()


def step(
    func: Callable | None = None,
    *,
    name: str | None = None,
    enable_cache: bool | None = None,
    substitutions: dict[str, str] | None = None,
):
    """Decorator, with or without arguments: ``@step`` or ``@step(enable_cache=False)``."""

    def wrap(f: Callable) -> Step:
        return Step(f, name=name, enable_cache=enable_cache, substitutions=substitutions)

    return wrap(func) if func is not None else wrap
