"""conftest.py of the yardstick's scratch folder (copied there by run.py):
a fresh ZenML or artifactfs home per test, the fixtures ZenML's tests ask
for, and the skips run.py decided (skips.json)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

import support  # noqa: E402

SKIPS = json.loads((ROOT / "skips.json").read_text())

try:  # ZenML's property tests: timing is not what they check, and a side's
    # first index or store use (migrations, default stack) outlasts
    # hypothesis's 200 ms deadline on a busy machine; same on both sides.
    from hypothesis import settings

    settings.register_profile("zenml_yardstick", deadline=None)
    settings.load_profile("zenml_yardstick")
except ImportError:
    pass


def pytest_collection_modifyitems(items):
    for item in items:
        name = getattr(item, "originalname", None) or item.name.split("[")[0]
        if item.cls is not None:
            name = f"{item.cls.__name__}::{name}"
        reason = SKIPS.get(f"{Path(str(item.path)).name}::{name}")
        if reason:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(autouse=True)
def _fresh_home(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("home")
    if support.SIDE == "zenml":
        monkeypatch.setenv("ZENML_CONFIG_PATH", str(home / "zenml"))
        monkeypatch.setenv("ZENML_LOGGING_VERBOSITY", "ERROR")
        from zenml.client import Client
        from zenml.config.global_config import GlobalConfiguration

        GlobalConfiguration._reset_instance()
        Client._reset_instance()
    else:
        monkeypatch.setenv("ARTIFACTFS_HOME", str(home))
        for var in ("ARTIFACTFS_INDEX_URL", "ARTIFACTFS_STORE", "ARTIFACTFS_CONFIG_DIR"):
            monkeypatch.delenv(var, raising=False)
    yield
    if support.SIDE != "zenml":
        from artifactfs.index.db import reset_index_cache

        reset_index_cache()  # one engine per test's home: close it


@pytest.fixture
def clean_client():
    return support.resolve("zenml.client", "Client")()


@pytest.fixture
def connected_two_step_pipeline():
    """ZenML's fixture: ``(step_1, step_2)`` -> a pipeline feeding step_1's
    output to step_2, named ``connected_two_step_pipeline``."""
    return support.connected_two_step_pipeline


@pytest.fixture
def clean_client_with_run(clean_client):
    """A clean client after one run of ``connected_two_step_pipeline``."""
    helper = support.resolve
    support.connected_two_step_pipeline(
        step_1=helper("tests.integration.functional.conftest", "constant_int_output_test_step"),
        step_2=helper("tests.integration.functional.conftest", "int_plus_one_test_step"),
    )()
    return clean_client
