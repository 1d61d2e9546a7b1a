"""Watched checkpoint folders: register each new checkpoint file or folder
a training loop writes, once it is complete, exactly once.

This layer sits beside ``mount`` and ``gc`` and imports only ``index`` (to
learn what is already registered) and ``watchdog``. Registering is not its
job: :class:`Watcher` calls a ``register(path, metadata)`` callable that its
caller supplies; the ``artifactfs watch`` command passes an
``artifactfs.checkpoints.CheckpointRegistrar``, which calls
``register_artifact``.
"""

from artifactfs.watch.ledger import Ledger
from artifactfs.watch.names import is_candidate, metadata_from_name
from artifactfs.watch.watcher import Register, Registered, Watcher, WatchStats

__all__ = ["Ledger", "Register", "Registered", "WatchStats", "Watcher", "is_candidate", "metadata_from_name"]
