"""What a step returns: output names and types read from its return
annotation, artifact names with placeholders, and run-time type checks.

    -> int                               one output named "output"
    -> Annotated[int, "score"]           one output named "score"
    -> Tuple[int, Annotated[str, "s"]]   two outputs: "output_0" and "s"
    -> Annotated[int, ArtifactConfig(name="score", tags=[...])]   ZenML's config
    -> tuple / Tuple[int, ...]           one output holding a tuple
    -> None                              no output
"""

from __future__ import annotations

import datetime as dt
import inspect
import string
import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Union, get_args, get_origin

from artifactfs.errors import ArtifactfsError
from artifactfs.pipelines.config import ArtifactConfig

SINGLE_OUTPUT = "output"


class StepDefinitionError(ArtifactfsError, TypeError):
    """A step or pipeline is defined or called in a way that cannot run."""


@dataclass(frozen=True)
class OutputSpec:
    name: str  # may hold {placeholders}
    annotation: Any
    named: bool  # named with Annotated: the name is the artifact name
    config: ArtifactConfig | None = None


def parse_outputs(func) -> list[OutputSpec]:
    """The outputs a step function declares by its return annotation (none for ``-> None``)."""
    hints = typing.get_type_hints(func, include_extras=True)
    if "return" not in hints:
        return [OutputSpec(SINGLE_OUTPUT, Any, False)]
    annotation = hints["return"]
    if annotation is None or annotation is type(None):
        return []
    if _is_multi_output(annotation):
        specs = [_spec(arg, f"output_{i}") for i, arg in enumerate(get_args(annotation))]
    else:
        specs = [_spec(annotation, SINGLE_OUTPUT)]
    names = [s.name for s in specs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise StepDefinitionError(
            f"step {func.__name__!r} has duplicate output names: {', '.join(duplicates)}",
            "give each output its own name with Annotated[T, 'name']",
        )
    return specs


def _is_multi_output(annotation: Any) -> bool:
    if get_origin(annotation) is not tuple:
        return False
    args = get_args(annotation)
    return bool(args) and args[-1] is not Ellipsis and args != ((),)


def _spec(annotation: Any, default_name: str) -> OutputSpec:
    if get_origin(annotation) is Annotated:
        base, *extras = get_args(annotation)
        config = next((e for e in extras if isinstance(e, ArtifactConfig)), None)
        names = [e for e in extras if isinstance(e, str)] or ([config.name] if config and config.name else [])
        if names:
            return OutputSpec(names[0], base, True, config)
        return OutputSpec(default_name, base, False, config)
    return OutputSpec(default_name, annotation, False)


# -- placeholders in names --------------------------------------------------------------


class NameTemplateError(StepDefinitionError, ValueError):
    """A run or output name template ``str.format`` cannot fill: a lone
    brace, or a placeholder that is not a plain name. A ``ValueError``, as
    ZenML's name formatting raises."""


def placeholders(template: str) -> set[str]:
    """The ``{placeholder}`` names in a run or output name template; a
    template that is not one (``run}1``, ``{}``, ``{date.year}``) is refused
    with what to write instead."""
    try:
        fields = [(field, spec, conversion) for _, field, spec, conversion in string.Formatter().parse(template)
                  if field is not None]
    except ValueError as exc:
        raise NameTemplateError(f"name template {template!r} is not valid: {exc}",
                                "write {{ and }} for a literal brace; a placeholder is {name}") from None
    for field, spec, conversion in fields:
        if not field.isidentifier() or spec or conversion:
            raise NameTemplateError(f"name template {template!r} has the placeholder {{{field}}}, which is not a name",
                                    "a placeholder is {name}, e.g. {date}, {time} or a key of substitutions; "
                                    "write {{ and }} for a literal brace")
    return {field for field, _, _ in fields}


def substitution_values(start: dt.datetime, custom: dict[str, str]) -> dict[str, str]:
    """The values output names may use: ``date`` and ``time`` of the run's start, and the custom ones."""
    return {"date": start.strftime("%Y_%m_%d"), "time": start.strftime("%H_%M_%S_%f"), **custom}


class MissingSubstitutionError(StepDefinitionError, KeyError, RuntimeError):
    """A name's placeholder has no value: refused before the run starts.
    ZenML's message; a ``KeyError`` as ZenML's name formatting raises, and
    a ``RuntimeError`` as ZenML 0.98's failed run surfaces it."""

    def __str__(self) -> str:  # KeyError would quote the message
        return Exception.__str__(self)


def fill(template: str, values: dict[str, str], where: str) -> str:
    """``template`` with its placeholders filled; a placeholder with no value is refused, naming ``where``."""
    missing = sorted(placeholders(template) - set(values))
    if missing:
        # ZenML's wording first: code written against it matches on it
        raise MissingSubstitutionError(
            f"Could not format the name template `{template}`. Missing key: {missing[0]!r} "
            f"({where}: no value for placeholder(s) {', '.join(missing)})",
            "pass them with .with_options(substitutions={...}) on the step or pipeline",
        )
    return template.format(**values)


def cache_name(template: str, values: dict[str, str]) -> str:
    """An output's name as the cache key sees it: the custom values filled
    in, ``{date}`` and ``{time}`` left as they are, so a cached run of a
    dated output finds the earlier one (ZenML keeps the cached names)."""
    return template.format(**{key: values[key] if key not in ("date", "time") else "{" + key + "}"
                              for key in placeholders(template) if key in values})


# -- run-time type checks ----------------------------------------------------------------


def matches(value: Any, annotation: Any) -> bool:
    """A practical isinstance for annotations: Any, None, unions, generics by
    their origin, Annotated by its base, int accepted for float."""
    if annotation is Any or annotation is inspect.Parameter.empty or isinstance(annotation, typing.TypeVar):
        return True
    if annotation is None or annotation is type(None):
        return value is None
    origin = get_origin(annotation)
    if origin is Annotated:
        return matches(value, get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        return any(matches(value, arg) for arg in get_args(annotation))
    if origin is typing.Literal:
        return value in get_args(annotation)
    if origin is not None:
        return isinstance(origin, type) and isinstance(value, origin)
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return True
    if isinstance(annotation, type):
        return isinstance(value, annotation)
    return True  # forward references and exotic typing constructs are not checked


def type_label(annotation: Any) -> str:
    """A readable name of a type annotation (``int``, ``list[str]``)."""
    if isinstance(annotation, type):
        return annotation.__qualname__
    return str(annotation).replace("typing.", "")
