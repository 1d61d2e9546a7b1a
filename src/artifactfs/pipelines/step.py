"""``@step``: a function whose return values become artifact versions.

Called inside a ``@pipeline`` function, a step does not run: it records an
invocation and returns placeholders (``StepOutput``) that later steps take
as inputs. Called anywhere else, it runs as a one-step pipeline
(``pipelines.single``), as in ZenML.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from artifactfs.api.context import current_step_run
from artifactfs.materializers.base import BaseMaterializer, MaterializerError, import_by_name
from artifactfs.pipelines.outputs import OutputSpec, StepDefinitionError, parse_outputs
from artifactfs.pipelines.trace import current_trace


@dataclass(frozen=True)
class StepOutput:
    """A placeholder for one output of a step invocation in a pipeline being traced."""

    invocation: str
    output: str

    def __repr__(self) -> str:
        return f"<output {self.output!r} of step {self.invocation!r}>"

    def __iter__(self):
        # Only a step with several outputs returns a tuple to unpack.
        raise StepDefinitionError(
            f"step {self.invocation!r} has one output ({self.output!r}), which cannot be unpacked",
            "assign it to one name, or annotate the step to return Tuple[...] / several Annotated outputs",
        )


#: ZenML step options that configure remote orchestration; accepted and
#: ignored by the local runner (docs/zenml.md lists them).
IGNORED_OPTIONS = frozenset({"settings", "extra", "experiment_tracker", "step_operator", "retry", "on_failure",
                             "on_success", "model", "resources", "enable_artifact_metadata",
                             "enable_artifact_visualization", "enable_step_logs", "parameters"})


class Step:
    def __init__(
        self,
        func: Callable,
        name: str | None = None,
        enable_cache: bool | None = None,
        substitutions: dict[str, str] | None = None,
        output_materializers: Any = None,
    ) -> None:
        functools.update_wrapper(self, func)
        self.entrypoint = func
        self.name = name or func.__name__
        self.enable_cache = enable_cache
        self.substitutions = dict(substitutions or {})
        self.signature = inspect.signature(func)
        _check_parameters(self.name, self.signature)
        self.outputs: list[OutputSpec] = parse_outputs(func)
        self.output_materializers: dict[str, Any] = {}
        self._set_materializers(output_materializers)

    def __repr__(self) -> str:
        return f"<step {self.name}>"

    def _set_materializers(self, materializers: Any) -> None:
        """ZenML's ``output_materializers``: one materializer (class or import
        path) for every output, or ``{output name: materializer}``; where one
        is taken, a list or tuple of them may stand (see :meth:`materializer_for`)."""
        if materializers is None:
            return
        if not isinstance(materializers, dict):
            materializers = {spec.name: materializers for spec in self.outputs}
        unknown = sorted(set(materializers) - {spec.name for spec in self.outputs})
        if unknown:
            raise StepDefinitionError(
                f"step {self.name!r} has no output {', '.join(map(repr, unknown))} to give a materializer",
                f"its outputs are: {', '.join(s.name for s in self.outputs) or 'none'}",
            )
        resolved = {output: self._materializer_classes(output, given) for output, given in materializers.items()}
        self.output_materializers = {**self.output_materializers, **resolved}

    def _materializer_classes(self, output: str, given: Any) -> type[BaseMaterializer] | tuple:
        if isinstance(given, (list, tuple)):
            if not given:
                raise StepDefinitionError(f"an empty list of materializers for output {output!r} of step {self.name!r}",
                                          "give at least one materializer, or leave the output out")
            return tuple(self._materializer_class(output, one) for one in given)
        return self._materializer_class(output, given)

    def materializer_for(self, output: str, value: Any) -> type[BaseMaterializer] | None:
        """The materializer configured for ``output`` that saves ``value``
        (None: none configured, the registry picks). From a list, as ZenML:
        along the value's class hierarchy, the first materializer whose
        associated types hold the class, else the first that can save it."""
        given = self.output_materializers.get(output)
        if not isinstance(given, tuple):
            return given
        fallback = None
        for cls in type(value).__mro__:
            for materializer in given:
                if cls in materializer.ASSOCIATED_TYPES:
                    return materializer
                if fallback is None and materializer.can_save_type(cls):
                    fallback = materializer
        if fallback is not None:
            return fallback
        raise StepDefinitionError(
            f"step {self.name!r}: none of the materializers of output {output!r} "
            f"({', '.join(m.__name__ for m in given)}) can save a {type(value).__qualname__}",
            "add a materializer for that type to the list",
        )

    def _materializer_class(self, output: str, given: Any) -> type[BaseMaterializer]:
        """An import path is imported now, as ZenML does, so a typo fails
        where the step is defined rather than after the step has run."""
        what = f"output {output!r} of step {self.name!r}"
        if isinstance(given, str):
            try:
                given = import_by_name(given, what)
            except MaterializerError as exc:
                raise StepDefinitionError(f"materializer {given!r} for {what} cannot be imported: {exc.message}",
                                          "give the class itself or its full import path (module.Class)") from None
        if not (isinstance(given, type) and issubclass(given, BaseMaterializer)):
            raise StepDefinitionError(f"materializer for {what} is {given!r}, not a BaseMaterializer subclass",
                                      "give a BaseMaterializer subclass or its import path")
        return given

    def configure(
        self,
        enable_cache: bool | None = None,
        substitutions: dict[str, str] | None = None,
        name: str | None = None,
        output_materializers: Any = None,
        **options: Any,
    ) -> Step:
        """Change this step's options in place (ZenML's ``configure``); returns the step."""
        unknown = sorted(set(options) - IGNORED_OPTIONS)
        if unknown:
            raise StepDefinitionError(f"unknown step option(s): {', '.join(unknown)}",
                                      "use enable_cache, substitutions, name or output_materializers")
        if enable_cache is not None:
            self.enable_cache = enable_cache
        if substitutions:
            self.substitutions = {**self.substitutions, **substitutions}
        if name:
            self.name = name
        self._set_materializers(output_materializers)
        return self

    def with_options(self, **options: Any) -> Step:
        """A copy with other options (see :meth:`configure`); the original is unchanged."""
        clone = copy.copy(self)
        clone.substitutions = dict(self.substitutions)
        clone.output_materializers = dict(self.output_materializers)
        return clone.configure(**options)

    def __call__(self, *args: Any, after: Any = None, id: str | None = None, **kwargs: Any) -> Any:  # noqa: A002
        """Inside a pipeline function: an invocation; ``after=`` (a step, its
        name or a list of them) orders it after steps already called,
        ``id=`` names the invocation (ZenML's keywords). Inside a running
        step: the function, its arguments validated. Anywhere else, as in
        ZenML: a recorded one-step run, which returns the outputs' values
        (``step.entrypoint(...)`` is the bare function)."""
        trace = current_trace()
        if trace is None:
            # pipelines.single builds on Pipeline, which builds on this module
            from artifactfs.pipelines.single import run_single_step, validated

            if current_step_run() is not None:
                return self.entrypoint(**validated(self, args, kwargs))
            return run_single_step(self, args, kwargs)
        invocation = trace.add(self, args, kwargs, after=after, name=id)
        placeholders = tuple(StepOutput(invocation, spec.name) for spec in self.outputs)
        if len(placeholders) == 1:
            return placeholders[0]
        return placeholders or None

    @functools.cached_property
    def input_types(self) -> dict[str, Any]:
        """Parameter annotations, string ones (``from __future__ import
        annotations``) resolved where their names can be found."""
        try:
            hints = typing.get_type_hints(self.entrypoint)
        except Exception:  # noqa: BLE001 - a name only the author's runtime knows
            hints = {}
        return {name: hints.get(name, p.annotation) for name, p in self.signature.parameters.items()}

    @functools.cached_property
    def code_hash(self) -> str:
        """sha256 of the function's source (its bytecode when no source exists)."""
        try:
            code = inspect.getsource(self.entrypoint).encode()
        except (OSError, TypeError):
            func_code = self.entrypoint.__code__
            code = func_code.co_code + repr(func_code.co_consts).encode()
        return hashlib.sha256(code).hexdigest()


def _check_parameters(name: str, signature: inspect.Signature) -> None:
    """Every step input needs a name (inputs are linked by name), so
    ``*args`` and ``**kwargs`` are refused, as ZenML refuses them."""
    stars = {inspect.Parameter.VAR_POSITIONAL: "*", inspect.Parameter.VAR_KEYWORD: "**"}
    variadic = [stars[p.kind] + p.name for p in signature.parameters.values() if p.kind in stars]
    if variadic:
        raise StepDefinitionError(f"step {name!r} takes {', '.join(variadic)}: step inputs must each have a name",
                                  "list every input as a named parameter")


def step(
    func: Callable | None = None,
    *,
    name: str | None = None,
    enable_cache: bool | None = None,
    substitutions: dict[str, str] | None = None,
    output_materializers: Any = None,
    **options: Any,
):
    """Decorator, with or without arguments: ``@step`` or ``@step(enable_cache=False)``."""
    unknown = sorted(set(options) - IGNORED_OPTIONS)
    if unknown:
        raise StepDefinitionError(f"unknown step option(s): {', '.join(unknown)}",
                                  "use enable_cache, substitutions, name or output_materializers")

    def wrap(f: Callable) -> Step:
        return Step(f, name=name, enable_cache=enable_cache, substitutions=substitutions,
                    output_materializers=output_materializers)

    return wrap(func) if func is not None else wrap
