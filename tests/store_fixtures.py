"""Fixtures that hand a test a fresh, empty artifact store of each flavor,
backed by the real servers of conftest.py (registered as a pytest plugin)."""

import uuid

import pytest

import servers

FLAVORS = ["local", "s3", "gcs", "azure"]
_BUCKET = "artifactfs-test"
_made: set[tuple[int, str]] = set()


def _ensure(make, server) -> None:
    """Create the session bucket once per server (creating twice fails on some)."""
    key = (id(server), make.__name__)
    if key not in _made:
        make(server, _BUCKET)
        _made.add(key)


def _bucket(request, flavor: str):
    """(root URI, options) of a fresh prefix in the flavor's session bucket."""
    prefix = uuid.uuid4().hex[:12]
    if flavor == "local":
        root = request.getfixturevalue("tmp_path") / "store"
        root.mkdir()
        return str(root), {}
    if flavor == "s3":
        server = request.getfixturevalue("moto_server")
        _ensure(servers.s3_bucket, server)
        return f"s3://{_BUCKET}/{prefix}", server.options
    if flavor == "gcs":
        server = request.getfixturevalue("gcs_server")
        _ensure(servers.gcs_bucket, server)
        return f"gs://{_BUCKET}/{prefix}", server.options
    server = request.getfixturevalue("azurite_server")
    _ensure(servers.azure_container, server)
    return f"az://{_BUCKET}/{prefix}", server.options


@pytest.fixture(params=FLAVORS)
def store_flavor(request):
    return request.param


@pytest.fixture
def flavor_store(request, store_flavor):
    """An ``ArtifactStore`` (not registered in any index) with an empty root."""
    from artifactfs.stores import ArtifactStore, get_flavor, split_secrets

    root, options = _bucket(request, store_flavor)
    flavor = get_flavor(store_flavor)
    public, secret = split_secrets(flavor, options)
    return ArtifactStore(f"test-{store_flavor}", flavor, root, public, secret)


@pytest.fixture
def registered_store(request, store_flavor, artifactfs_home):
    """A store of each flavor registered (and made active) in a fresh index."""
    from artifactfs.api import register_store, set_active_store

    root, options = _bucket(request, store_flavor)
    store = register_store(f"test-{store_flavor}", store_flavor, root, dict(options))
    set_active_store(store.name)
    return store
