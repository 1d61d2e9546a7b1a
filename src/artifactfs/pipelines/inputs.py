"""What a step's arguments become, as in ZenML: an artifact reference (a step
output, a list or tuple of step outputs, a version, a lazy version, an
external value) or a parameter, validated and converted against the
parameter's annotation when the pipeline is called.

Validation uses pydantic when it is installed (ZenML's own rule: ``"3"``
for an ``int`` becomes ``3``, a dict for a pydantic model becomes the
model); pydantic is not a dependency of artifactfs, so without it a value
is checked with ``outputs.matches`` (an ``isinstance`` by annotation) and
passed unconverted. A parameter is recorded as JSON: pydantic models and
dataclasses by their fields.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
from typing import Any

from artifactfs.api.artifacts import ArtifactVersion
from artifactfs.api.lazy import LazyArtifactVersion
from artifactfs.enums import StepRunInputArtifactType
from artifactfs.pipelines.config import ExternalArtifact
from artifactfs.pipelines.outputs import StepDefinitionError, matches, type_label
from artifactfs.pipelines.step import StepOutput

#: What stands for an artifact rather than a parameter value.
ARTIFACT_TYPES = (StepOutput, ArtifactVersion, LazyArtifactVersion, ExternalArtifact)


class StepInputError(StepDefinitionError, RuntimeError):
    """A parameter does not fit its annotation (ZenML raises ``RuntimeError``)."""


def is_output_list(value: Any) -> bool:
    """A list or tuple of step outputs passed as one argument (ZenML passes
    the step a list of their values)."""
    return isinstance(value, (list, tuple)) and bool(value) and all(isinstance(v, StepOutput) for v in value)


def is_artifact(value: Any) -> bool:
    """Whether a step argument is an artifact (an output, a version, a lazy
    or external one, or a list of outputs) rather than a parameter."""
    return isinstance(value, ARTIFACT_TYPES) or is_output_list(value)


def input_type(value: Any) -> StepRunInputArtifactType:
    """How an artifact argument reaches the step, as ZenML records it."""
    if isinstance(value, ExternalArtifact):
        return StepRunInputArtifactType.EXTERNAL
    if isinstance(value, (ArtifactVersion, LazyArtifactVersion)):
        return StepRunInputArtifactType.LAZY_LOADED
    return StepRunInputArtifactType.STEP_OUTPUT


def json_form(value: Any) -> Any:
    """The value as the run records it; TypeError when it has no JSON form."""
    return json.loads(json.dumps(value, default=_encode, allow_nan=True))


def _encode(value: Any) -> Any:
    if hasattr(value, "model_dump") and callable(value.model_dump):  # a pydantic model
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serializable")


def convert(value: Any, annotation: Any, where: str, key: str) -> Any:
    """``value`` validated against ``annotation`` and converted as ZenML
    converts it; StepInputError when it does not fit."""
    if annotation is Any or annotation is inspect.Parameter.empty:
        return value
    try:
        from pydantic import ConfigDict, ValidationError, create_model
    except ImportError:  # pydantic is optional: check without converting
        if matches(value, annotation):
            return value
        raise _mismatch(value, annotation, where, key) from None
    try:
        model = create_model("StepParameter", __config__=ConfigDict(arbitrary_types_allowed=True),
                             value=(annotation, ...))
        return model(value=value).value  # type: ignore[attr-defined]  # the field made just above
    except ValidationError as exc:
        raise _mismatch(value, annotation, where, key) from exc


def _mismatch(value: Any, annotation: Any, where: str, key: str) -> StepInputError:
    return StepInputError(
        f"{where}: parameter {key!r} expects {type_label(annotation)}, got {type(value).__qualname__} {value!r:.80}",
        "pass a value of that type, or change the parameter's annotation",
    )
