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

    def add(self, step: Step, args: tuple, kwargs: dict) -> str:
        try:
            bound = step.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise StepDefinitionError(f"step {step.name!r} called with wrong arguments: {exc}") from exc
        bound.apply_defaults()
        taken = {i.name for i in self.invocations}
        name, n = step.name, 1
        while name in taken:
            n += 1
            name = f"{step.name}_{n}"
        self.invocations.append(Invocation(name, step, dict(bound.arguments)))
        return name


_current: ContextVar[Trace | None] = ContextVar("artifactfs_trace", default=None)


def current_trace() -> Trace | None:
    return _current.get()


@contextmanager
def tracing() -> Iterator[Trace]:
    trace = Trace()
    token = _current.set(trace)
    try:
        yield trace
    finally:
        _current.reset(token)
