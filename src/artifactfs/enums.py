"""ZenML's enums and metadata marker types, with ZenML's values, so code
written for ZenML compares and annotates against the same names.

Also the enums of the index's columns (``VersionState``, ``SaveType``,
``ArtifactType``, ``PayloadKind``, ``RunStatus``): they live here, at the
bottom layer, so that naming one (a materializer naming its artifact type)
loads no SQLAlchemy; ``index.models`` uses and re-exports them. The others
describe how a version was saved, what a visualization is, how a pipeline
run treats a failed step, and which metadata values are special strings or
sizes.
"""

from __future__ import annotations

import enum


class VersionState(str, enum.Enum):
    """Where a version is in its life: live (visible), condemned by the pruner, or lost with its store."""

    LIVE = "live"
    CONDEMNED = "condemned"
    # Its store was removed with --force while it was recorded there
    # (``store remove``): hidden like a condemned one, listed by fsck.
    LOST = "lost"


class SaveType(str, enum.Enum):
    """How a version came to be, as the index stores it (``ArtifactSaveType`` is ZenML's view)."""

    STEP_OUTPUT = "step_output"
    MANUAL = "manual"
    REGISTERED = "registered"
    EXTERNAL = "external"  # an ExternalArtifact's value (ZenML's ArtifactSaveType.EXTERNAL)


class ArtifactType(str, enum.Enum):
    """ZenML's artifact types (the values are ZenML's)."""

    DATA = "DataArtifact"
    MODEL = "ModelArtifact"
    DATA_ANALYSIS = "DataAnalysisArtifact"
    SCHEMA = "SchemaArtifact"
    SERVICE = "ServiceArtifact"
    STATISTICS = "StatisticsArtifact"
    BASE = "BaseArtifact"


class PayloadKind(str, enum.Enum):
    """What a version's uri names."""

    FOLDER = "folder"  # uri is a folder holding the manifest's files
    FILE = "file"  # uri is the one file (a registered file adopted in place)


class RunStatus(str, enum.Enum):
    """Where a pipeline or step run is."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CACHED = "cached"
    #: Never stored: shown for a run marked running whose process is gone (``index.liveness``).
    CRASHED = "crashed"


#: The one spelling of the states as stored in the ``artifact_version.state`` column.
LIVE, CONDEMNED, LOST = VersionState.LIVE.value, VersionState.CONDEMNED.value, VersionState.LOST.value


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


class StepRunInputArtifactType(str, enum.Enum):
    """How a step run got an input (ZenML's names and values)."""

    STEP_OUTPUT = "step_output"  # an output of an earlier step of the run
    MANUAL = "manual"  # load_artifact / get_artifact_version inside the step
    EXTERNAL = "external"  # ExternalArtifact(value=...)
    LAZY_LOADED = "lazy"  # a version looked up in the pipeline function


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
    "CONDEMNED",
    "LIVE",
    "LOST",
    "ArtifactSaveType",
    "ArtifactType",
    "PayloadKind",
    "RunStatus",
    "SaveType",
    "VersionState",
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
