"""Every ZenML compatibility test runs against its own empty artifactfs home
(ZenML's tests get a fresh client the same way)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _fresh_home(tmp_path_factory, monkeypatch):
    """An empty index and default local store, kept outside ``tmp_path``
    (tests list ``tmp_path`` and expect only their own files there)."""
    home = tmp_path_factory.mktemp("artifactfs-home")
    monkeypatch.setenv("ARTIFACTFS_HOME", str(home))
    monkeypatch.delenv("ARTIFACTFS_INDEX_URL", raising=False)
    monkeypatch.delenv("ARTIFACTFS_STORE", raising=False)
    return home
