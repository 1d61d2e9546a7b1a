"""The registry's default: any picklable value as ``artifact.pkl``
(cloudpickle), with ``python_version.json`` recording the Python and
cloudpickle versions that wrote it.

Pickles are tied to the Python that made them and run code when loaded:
loading warns (:class:`PythonVersionWarning`) when the Python major.minor
differs from the recorded one, and should only be done for trusted stores.
"""

from __future__ import annotations

import json
import platform
import sys
import warnings
from typing import Any

import cloudpickle

from artifactfs.materializers.base import BaseMaterializer, MaterializerError, qualified_name, registry

PICKLE_FILE = "artifact.pkl"
VERSION_FILE = "python_version.json"


class PythonVersionWarning(UserWarning):
    """A pickle is loaded by another Python version than the one that wrote it."""


def _this_python() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


class CloudpickleMaterializer(BaseMaterializer):
    """Anything picklable -> ``artifact.pkl`` + ``python_version.json``."""
    VERIFY_ON_LOAD = True  # holds (or may hold) pickles

    def save(self, data: Any) -> None:
        try:
            with self.artifact_store.open(self.path(PICKLE_FILE), "wb") as f:
                cloudpickle.dump(data, f)
        except Exception as exc:
            if isinstance(exc, MaterializerError):
                raise
            raise MaterializerError(
                f"cannot pickle this {qualified_name(type(data))}: {exc}",
                "register a materializer for its type (artifactfs.materializers.register_materializer)",
            ) from exc
        self._save_python_version()

    def _save_python_version(self) -> None:
        versions = {
            "python": _this_python(),
            "python_full": platform.python_version(),
            "implementation": sys.implementation.name,
            "cloudpickle": cloudpickle.__version__,
        }
        with self.artifact_store.open(self.path(VERSION_FILE), "w", encoding="utf-8") as f:
            json.dump(versions, f)

    def _load_python_version(self) -> str | None:
        """The full Python version that wrote the pickle (ZenML's method)."""
        return self._saved_versions().get("python_full")

    def _saved_versions(self) -> dict[str, str]:
        try:
            with self.artifact_store.open(self.path(VERSION_FILE), "r", encoding="utf-8") as f:
                return json.load(f)
        except FileNotFoundError:
            return {}

    def load(self, data_type: type) -> Any:
        self._check_version()
        with self.artifact_store.open(self.path(PICKLE_FILE), "rb") as f:
            return cloudpickle.load(f)

    def _check_version(self) -> None:
        saved = self._saved_versions().get("python")
        if saved != _this_python():
            warnings.warn(
                f"{self.path(PICKLE_FILE)} was pickled with Python {saved or 'of unknown version'} "
                f"and is loaded with Python {_this_python()}; it may fail to load or behave differently. "
                "Load it with the same Python version, or re-save it with a portable materializer.",
                PythonVersionWarning,
                stacklevel=3,
            )

    def extract_metadata(self, data: Any) -> dict[str, Any]:
        return {}  # the versions are in python_version.json; ZenML records only the size


class Environment:
    """The part of ZenML's ``Environment`` that pickles care about."""

    @staticmethod
    def python_version() -> str:
        return platform.python_version()


registry.set_default(CloudpickleMaterializer)
