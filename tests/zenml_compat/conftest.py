"""Fixtures ZenML's ported tests ask for, and the tests skipped with the reason.

Every test gets a fresh ARTIFACTFS_HOME (ZenML's tests get a fresh client the
same way). ``clean_client`` is that environment's ``Client``;
``clean_client_with_run`` also ran ZenML's ``connected_two_step_pipeline``
(ZenML: tests/conftest.py and tests/harness), rebuilt here with our @step.
"""

from __future__ import annotations

import pytest
from hypothesis import settings

from artifactfs import Client, pipeline, step

# A test's first fileio call creates that test's index (migrations), which
# takes longer than hypothesis's 200 ms deadline on a busy machine; timing is
# not what these property tests are about.
settings.register_profile("zenml_compat", deadline=None)
settings.load_profile("zenml_compat")

# nodeid suffix -> why the test cannot run against artifactfs. The test bodies
# stay untouched; the reasons are listed in docs/zenml.md as well.
SKIPS = {
    "test_materializer_registry.py::test_materializer_with_parameter_with_more_than_one_conflicting_baseclass":
        "ZenML-only: inspects ZenML's compiled step configuration (Step._finalize_configuration, "
        "configuration.outputs[...].materializer_source Source objects); the same choice (first class "
        "in the MRO) is asserted through artifactfs's registry in tests/zenml_compat/test_gaps.py",
    "test_base_materializer.py::test_validate_load_type_compatibility":
        "the stored copy of this test expects can_load_type to refuse a subclass, but ZenML 0.98's own "
        "BaseMaterializer.can_load_type accepts it ('false positive' clause), so ZenML 0.98 fails it too; "
        "artifactfs follows the 0.98 code",
    "test_general.py::test_debug_mode_enabled_for_tests":
        "ZenML-only: checks ZenML's own ZENML_DEBUG test-harness variable; artifactfs has no debug mode variable",
    "test_artifact_utils.py::test_parallel_artifact_creation":
        "ZenML-only: patches ZenML internals (zenml.artifacts.utils.Client and its logger) in spawned processes; "
        "artifactfs's concurrent version numbering is tested in tests/test_artifacts.py",
}


def pytest_collection_modifyitems(items):
    for item in items:
        for suffix, reason in SKIPS.items():
            if item.nodeid.endswith(suffix):
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(autouse=True)
def _fresh_home(tmp_path_factory, monkeypatch):
    """Each ported test runs against an empty index and default local store,
    kept outside ``tmp_path`` (ZenML's tests list ``tmp_path`` and expect
    only their own files there)."""
    home = tmp_path_factory.mktemp("artifactfs-home")
    monkeypatch.setenv("ARTIFACTFS_HOME", str(home))
    monkeypatch.delenv("ARTIFACTFS_INDEX_URL", raising=False)
    monkeypatch.delenv("ARTIFACTFS_STORE", raising=False)
    return home


@pytest.fixture
def clean_client() -> Client:
    return Client()


@step
def constant_int_output_test_step() -> int:
    return 7


@step
def int_plus_one_test_step(input: int) -> int:
    return input + 1


@pipeline(name="connected_two_step_pipeline")
def connected_two_step_pipeline():
    int_plus_one_test_step(constant_int_output_test_step())


@pytest.fixture
def clean_client_with_run(clean_client) -> Client:
    connected_two_step_pipeline()
    return clean_client
