"""Fault-injection points for crash tests: ``ARTIFACTFS_FAULT=<point>`` makes
the process kill itself with SIGKILL when it reaches that point, as a power
cut or the OOM killer would. Unset, a point costs one dict lookup."""

from __future__ import annotations

import os
import signal


def fault_point(name: str) -> None:
    if os.environ.get("ARTIFACTFS_FAULT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
