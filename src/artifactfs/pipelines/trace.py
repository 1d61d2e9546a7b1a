"""Tracing a pipeline function: every step call becomes an ``Invocation``
with a unique name in the pipeline and bound arguments; the order of the
calls is a valid execution order, since a step can only take outputs of
steps called before it."""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from collections.abc import Iterator

from artifactfs.api.context import tracing_pipeline
from artifactfs.pipelines.outputs import StepDefinitionError

if TYPE_CHECKING:
    from artifactfs.pipelines.step import Step


@dataclass
class Invocation:
    name: str  # unique within the pipeline: "train", "train_2", ...
    step: Step
    arguments: dict[str, Any]  # parameter name -> StepOutput | ArtifactVersion | literal


@dataclass
class Trace:
    invocations: list[Invocation] = field(default_factory=list)

    def add(self, step: Step, args: tuple, kwargs: dict, after: Any = None, name: str | None = None) -> str:
        """Record one call of a step while the pipeline function runs; its invocation name."""
        try:
            bound = step.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise StepDefinitionError(f"step {step.name!r} called with wrong arguments: {exc}") from exc
        bound.apply_defaults()
        taken = {i.name for i in self.invocations}
        if name is not None and name in taken:
            raise StepDefinitionError(f"two step invocations have the id {name!r}", "give each its own id=")
        base, n = name or step.name, 1
        name = base
        while name in taken:
            n += 1
            name = f"{base}_{n}"
        self._check_after(name, after, taken)
        self.invocations.append(Invocation(name, step, dict(bound.arguments)))
        return name

    @staticmethod
    def _check_after(name: str, after: Any, taken: set[str]) -> None:
        """``after=`` names steps called before this one: steps run in the
        order they are called, so an earlier step already runs first; a
        later or unknown one cannot be waited for."""
        if after is None:
            return
        for item in _flatten(after):
            # a step's name, the step, or an output of its invocation (ZenML's `after=[a()]`)
            wanted = item if isinstance(item, str) else getattr(item, "invocation", getattr(item, "name", None))
            if wanted not in taken:
                raise StepDefinitionError(
                    f"step {name!r} is to run after {wanted!r}, which was not called before it in the pipeline",
                    "call that step earlier in the pipeline function (steps run in the order they are called)",
                )


def _flatten(after: Any) -> list:
    """``after=`` items; a multi-output step's tuple of outputs counts as its step."""
    if not isinstance(after, (list, tuple, set)):
        return [after]
    return [inner for item in after for inner in _flatten(item)]


_current: ContextVar[Trace | None] = ContextVar("artifactfs_trace", default=None)


def current_trace() -> Trace | None:
    """The trace of the pipeline function running now, or None."""
    return _current.get()


@contextmanager
def tracing() -> Iterator[Trace]:
    """Trace the step calls of a pipeline function run inside (artifact lookups stay lazy meanwhile)."""
    trace = Trace()
    token = _current.set(trace)
    try:
        with tracing_pipeline():  # Client().get_artifact_version(...) stays lazy meanwhile
            yield trace
    finally:
        _current.reset(token)
