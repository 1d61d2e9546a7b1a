"""ZenML's enums and metadata marker types, with ZenML's values, so code
written for ZenML compares and annotates against the same names.

``ArtifactType`` is the index's own (``index.models``); the others describe
how a version was saved, what a visualization is, how a pipeline run treats
a failed step, and which metadata values are special strings or sizes.
"""

from __future__ import annotations

import enum

from artifactfs.index.models import ArtifactType


class ArtifactSaveType(str, enum.Enum):
    """How a version came to be (ZenML's names; ``PREEXISTING`` is what the
    index calls ``registered``)."""

    STEP_OUTPUT = "step_output"
    MANUAL = "manual"
    PREEXISTING = "preexisting"
    EXTERNAL = "external"

    def __str__(self) -> str:
        return self.value


#: index save_type -> ArtifactSaveType
SAVE_TYPES = {"step_output": ArtifactSaveType.STEP_OUTPUT, "manual": ArtifactSaveType.MANUAL,
              "registered": ArtifactSaveType.PREEXISTING, "external": ArtifactSaveType.EXTERNAL}


class VisualizationType(str, enum.Enum):
    CSV = "csv"
    HTML = "html"
    IMAGE = "image"
    MARKDOWN = "markdown"
    JSON = "json"

    def __str__(self) -> str:
        return self.value


class ExecutionMode(str, enum.Enum):
    """What a pipeline run does after a step fails. The local runner runs
    steps one after the other, so every mode stops at the first failure;
    the mode is recorded and accepted for compatibility."""

    FAIL_FAST = "fail_fast"
    STOP_ON_FAILURE = "stop_on_failure"
    CONTINUE_ON_FAILURE = "continue_on_failure"


class Uri(str):
    """A metadata string that is a URI."""


class Path(str):
    """A metadata string that is a path."""


class DType(str):
    """A metadata string naming a data type (ZenML writes ``str(dtype.type)``)."""


class StorageSize(int):
    """A metadata integer counting bytes."""


#: What a metadata value may be (for annotations, as ZenML's ``MetadataType``).
MetadataType = str | int | float | bool | dict | list | set | tuple

#: Every type a metadata value may have (for isinstance checks).
MetadataTypeTuple = (str, int, float, bool, dict, list, set, tuple, Uri, Path, DType, StorageSize)

__all__ = [
    "ArtifactSaveType",
    "ArtifactType",
    "DType",
    "ExecutionMode",
    "MetadataType",
    "MetadataTypeTuple",
    "Path",
    "SAVE_TYPES",
    "StorageSize",
    "Uri",
    "VisualizationType",
]
