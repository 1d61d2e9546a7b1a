"""PyTorch Lightning adapter: a ``ModelCheckpoint`` that registers every
checkpoint it saves as the next version of an artifact.

Importable only when Lightning is installed (``lightning`` or the older
``pytorch_lightning``); otherwise importing this module raises an
``ImportError`` saying so. :class:`artifactfs.checkpoints.CheckpointRegistrar`
needs neither.

    from artifactfs.checkpoints.lightning import ArtifactfsModelCheckpoint

    trainer = Trainer(callbacks=[ArtifactfsModelCheckpoint(
        artifact_name="resnet-ckpt", dirpath=store_dir, monitor="val_loss", save_top_k=3)])

Lightning deletes checkpoints that fall out of the top k. Adopted in place
(the default) such a version loses its payload and ``artifactfs fsck``
reports it; pass ``copy=True`` to keep every checkpoint in the store.
``last.ckpt`` is rewritten on every save, so it is registered only with
``register_last=True``, which needs ``copy=True``.
"""

from __future__ import annotations

from typing import Any

try:
    from lightning.pytorch.callbacks import ModelCheckpoint
except ImportError:
    try:
        from pytorch_lightning.callbacks import ModelCheckpoint
    except ImportError as exc:
        raise ImportError(
            "artifactfs.checkpoints.lightning needs PyTorch Lightning, which is not installed: "
            "`pip install lightning` (artifactfs.checkpoints.CheckpointRegistrar works without it)"
        ) from exc

from artifactfs.checkpoints import CheckpointRegistrar
from artifactfs.errors import ArtifactfsError


class ArtifactfsModelCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` plus registration of each saved checkpoint, with
    the trainer's epoch, global step and callback metrics as metadata.

    Args:
        artifact_name: the artifact every checkpoint becomes a version of.
        copy, tags, store: as for :class:`CheckpointRegistrar`.
        register_last: also register ``last.ckpt`` each time it is saved (needs ``copy``).
        *args, **kwargs: passed to ``ModelCheckpoint``.
    """

    def __init__(
        self,
        *args: Any,
        artifact_name: str,
        copy: bool = False,
        tags: tuple[str, ...] = (),
        store: str | None = None,
        register_last: bool = False,
        **kwargs: Any,
    ) -> None:
        if register_last and not copy:
            raise ArtifactfsError(
                "register_last=True needs copy=True", "last.ckpt is rewritten in place on every save"
            )
        super().__init__(*args, **kwargs)
        self.registrar = CheckpointRegistrar(artifact_name, copy=copy, tags=tags, store=store)
        self.register_last = register_last
        self.registered: list = []

    def _save_checkpoint(self, trainer: Any, filepath: str) -> None:
        super()._save_checkpoint(trainer, filepath)
        if not trainer.is_global_zero:
            return
        if filepath == getattr(self, "last_model_path", None) and not self.register_last:
            return
        metrics = {k: v for k, v in dict(trainer.callback_metrics).items() if k not in ("epoch", "step")}
        self.registered.append(
            self.registrar.register(filepath, step=trainer.global_step, epoch=trainer.current_epoch, metrics=metrics)
        )


__all__ = ["ArtifactfsModelCheckpoint"]
