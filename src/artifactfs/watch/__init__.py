"""Watched checkpoint folders: register each new checkpoint file or folder
a training loop writes, once it is complete (its writer closed it and
``checkpoints.complete`` passes), once per content.

This layer sits beside ``mount`` and ``gc`` and imports ``index`` (to learn
what is already registered), ``checkpoints.complete`` (the completeness rule)
and ``watchdog``. Registering is not its job: :class:`Watcher` calls a
``register(path, metadata, copy)`` callable that its caller supplies; the ``artifactfs watch`` command passes an
``artifactfs.checkpoints.CheckpointRegistrar``, which calls
``register_artifact``.
"""

from artifactfs.watch.ledger import Ledger
from artifactfs.watch.names import is_candidate, metadata_from_name
from artifactfs.watch.watcher import Register, Registered, Watcher, WatchStats

__all__ = ["Ledger", "Register", "Registered", "WatchStats", "Watcher", "is_candidate", "metadata_from_name"]
