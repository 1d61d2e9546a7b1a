"""Which entries of a watched folder are checkpoints, and what their names
say: ``epoch=3-step=1200-val_loss=0.21.ckpt`` gives
``{"epoch": 3, "step": 1200, "val_loss": 0.21}``.

It owns name matching and name parsing only; nothing here touches a disk.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Any

#: Names a writer is still busy with, or that are not meant to be kept.
_TEMPORARY_SUFFIXES = (".tmp", ".temp", ".part", ".partial", ".lock", ".swp", "~")

# key=number pairs: Lightning names like "epoch=3-step=1200" or
# "epoch=03-val_loss=0.21"; the extension after the number is not part of it.
_PAIR = re.compile(r"(?<![A-Za-z0-9_])([A-Za-z_][A-Za-z0-9_]*)=(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)(?![0-9])")
_INTEGER_KEYS = frozenset({"epoch", "step", "global_step", "iteration", "iter", "batch"})


def is_candidate(name: str, pattern: str = "*") -> bool:
    """Whether a direct child of the watched folder named ``name`` counts as a
    checkpoint: it matches ``pattern`` and is neither hidden nor temporary."""
    if not name or name.startswith(".") or name.endswith(_TEMPORARY_SUFFIXES):
        return False
    return fnmatch.fnmatchcase(name, pattern)


def metadata_from_name(name: str) -> dict[str, Any]:
    """Numbers from ``key=NN`` parts of a checkpoint's name: ``epoch`` and
    ``step`` (and a few other counters) as integers, anything else as a float."""
    found: dict[str, Any] = {}
    for key, text in _PAIR.findall(name):
        if key in found:
            continue
        if key in _INTEGER_KEYS:
            try:
                found[key] = int(float(text)) if "." in text or "e" in text.lower() else int(text)
            except ValueError:
                continue
        else:
            found[key] = float(text)
    return found
