"""Checkpoints from training loops: :class:`CheckpointRegistrar` registers
each checkpoint file or folder as the next version of one artifact, with its
step, epoch and metrics as metadata.

Usable from any loop::

    registrar = CheckpointRegistrar("resnet-ckpt")
    for epoch in range(10):
        ...
        torch.save(model.state_dict(), path := f"{store_dir}/epoch={epoch}.pt")
        registrar.register(path, epoch=epoch, metrics={"val_loss": loss})

Inside a step run every checkpoint is also linked as an output of the step,
all under the artifact's name (``outputs[NAME]`` lists them, as ZenML's
output lists do).
PyTorch Lightning users take :class:`artifactfs.checkpoints.lightning.ArtifactfsModelCheckpoint`
(importable only when Lightning is installed).

A checkpoint is registered only when it is complete (``checkpoints.complete``
owns the rule: no writer holds it open, a folder has its completion signal,
formats that say where they end are whole); anything else raises
:class:`IncompleteCheckpointError`.

A registrar is also the ``register(path, metadata)`` callable that
``artifactfs.watch.Watcher`` expects: the ``artifactfs watch`` command wires
the two together, so that ``watch`` needs nothing from the API layer.

This module sits at the pipelines level: it builds on ``api`` only.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from typing import Any

from artifactfs.api.artifacts import ArtifactVersion, register_artifact
from artifactfs.api.stores import store_for_uri
from artifactfs.checkpoints.complete import CLOSED, folder_marker, incomplete_reason
from artifactfs.errors import ArtifactfsError
from artifactfs.index.artifacts import check_name


class IncompleteCheckpointError(ArtifactfsError):
    """A checkpoint was handed over before its writer finished it."""


class CheckpointRegistrar:
    """Registers checkpoints as versions of ``name``.

    Args:
        name: the artifact every checkpoint becomes a version of.
        copy: copy each checkpoint into the active store (or ``store``)
            instead of adopting it in place; needed when the checkpoints are
            not inside a registered store, and advisable when the trainer
            deletes or rewrites old checkpoints (an adopted file that is
            deleted later is reported by ``artifactfs fsck``).
        tags: tags put on every version.
        store: the store copies go to (with ``copy``); default: the active one.
        metadata: extra metadata put on every version.
        folder_complete: when a checkpoint folder is complete: ``"closed"``
            (every file in it closed by its writer; the default) or the name
            of a file the trainer writes last into each folder (a marker such
            as ``COMPLETE``, or the framework's own last file): a folder
            without it is not registered.
    """

    def __init__(
        self,
        name: str,
        copy: bool = False,
        tags: Iterable[str] = (),
        store: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        folder_complete: str = CLOSED,
    ) -> None:
        self.name = check_name(name)
        self.folder_complete = folder_complete
        self.marker = folder_marker(folder_complete)
        self.copy = bool(copy)
        self.tags = [tags] if isinstance(tags, str) else list(tags)
        self.store = store
        self.metadata = dict(metadata or {})

    def __repr__(self) -> str:
        return f"CheckpointRegistrar({self.name!r}, copy={self.copy})"

    def register(
        self,
        path: str | os.PathLike,
        step: int | None = None,
        epoch: int | None = None,
        metrics: Mapping[str, Any] | None = None,
        copy: bool | None = None,
    ) -> ArtifactVersion:
        """Register one checkpoint (a file or a folder) as the next version.

        ``copy`` overrides the registrar's own choice for this checkpoint: a
        copy goes to ``store``, or else the store holding ``path``.

        Raises:
            IncompleteCheckpointError: a writer still holds it open, a folder
                lacks its completion signal, or its format says it is cut short.
        """
        local = os.path.abspath(os.fspath(path))
        # Only a local file or folder can be checked; register_artifact names a missing path or a remote URI.
        checkable = "://" not in os.fspath(path) and os.path.lexists(local)
        reason = incomplete_reason(local, self.marker) if checkable else None
        if reason is not None:
            raise IncompleteCheckpointError(
                f"checkpoint {os.fspath(path)} is not complete: {reason}",
                "register it once the trainer has finished writing it",
            )
        copy = self.copy if copy is None else bool(copy)
        store = self.store
        if copy and not self.copy and store is None:  # a rewritten in-place checkpoint: keep it beside the original
            holder = store_for_uri(local)
            store = holder.name if holder is not None else None
        metadata = {**self.metadata, **{_key(k): _plain(v) for k, v in (metrics or {}).items()}}
        for key, value in (("step", step), ("epoch", epoch)):
            if value is not None:
                metadata[key] = _counter(key, value)
        version = register_artifact(
            path, self.name, tags=self.tags, metadata=metadata, copy=copy, store=store
        )
        return version

    def __call__(self, path: str, metadata: Mapping[str, Any], copy: bool = False) -> ArtifactVersion:
        """The ``register(path, metadata, copy)`` callable of ``artifactfs.watch``:
        ``step`` and ``epoch`` parsed from the name become those fields, any
        other value a metric; ``copy``: register a copy even when adopting in
        place (the watcher asks so for a checkpoint rewritten after it was
        registered in place)."""
        rest = dict(metadata)
        return self.register(path, step=rest.pop("step", None), epoch=rest.pop("epoch", None), metrics=rest,
                             copy=True if copy else None)

    def check_folder(self, folder: str | os.PathLike) -> None:
        """Refuse to watch a folder whose checkpoints could not be adopted in place."""
        path = os.path.abspath(os.path.expanduser(os.fspath(folder)))
        if not os.path.isdir(path):
            raise ArtifactfsError(f"{path} is not a folder", "create it first, or pass the folder checkpoints go to")
        if self.copy:
            return
        store = store_for_uri(path)
        if store is None:
            raise ArtifactfsError(
                f"{path} is not inside any registered store, so its checkpoints cannot be adopted in place",
                "pass --copy to copy each checkpoint into the active store, or register a store whose root "
                "holds it: `artifactfs store register NAME --flavor local --path DIR`",
            )
        if not store.is_local:
            raise ArtifactfsError(f"{path} lies in the non-local store {store.name!r}", "watch a local folder")


def _counter(key: str, value: Any) -> int:
    value = _plain(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (isinstance(value, float) and (
            not math.isfinite(value) or value != int(value))):
        raise ArtifactfsError(f"{key} must be a whole number, got {value!r}")
    return int(value)


def _key(key: Any) -> str:
    """Metric names like ``val/loss`` become ``val.loss`` (metadata keys hold no slash)."""
    return str(key).replace("/", ".").replace("\\", ".").strip() or "metric"


def _plain(value: Any) -> Any:
    """Tensors and numpy scalars as Python numbers; containers element-wise."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    item = getattr(value, "item", None)
    if callable(item):
        try:
            return _plain(item())
        except (TypeError, ValueError, RuntimeError):
            pass
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return _plain(tolist())
    return str(value)


__all__ = ["CheckpointRegistrar", "IncompleteCheckpointError"]
