"""Smoke tests: each real server works with the real client library."""

import hashlib
import os
import uuid

import sqlalchemy as sa

import servers

PAYLOAD = bytes(range(256)) * 4  # 1 KiB, every byte value
BIG = os.urandom(12 * 1024 * 1024 + 123)  # three 5 MiB parts: multipart / resumable upload


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def _roundtrip(fs, root: str) -> None:
    """Write, list, read whole, read a range, and stream a multi-part object."""
    path = f"{root}/dir/object.bin"
    fs.pipe_file(path, PAYLOAD)
    fs.invalidate_cache()
    assert fs.ls(f"{root}/dir", detail=False) == [path]
    assert fs.info(path)["size"] == len(PAYLOAD)
    assert fs.cat_file(path) == PAYLOAD
    assert fs.cat_file(path, start=10, end=20) == PAYLOAD[10:20]
    size = fs.info(path)["size"]
    assert fs.cat_file(path, start=size - 7, end=size) == PAYLOAD[-7:]

    big = f"{root}/big.bin"
    with fs.open(big, "wb", block_size=5 * 1024 * 1024) as f:
        for i in range(0, len(BIG), 1024 * 1024):
            f.write(BIG[i : i + 1024 * 1024])
    fs.invalidate_cache()
    assert fs.info(big)["size"] == len(BIG)
    assert hashlib.sha256(fs.cat_file(big)).digest() == hashlib.sha256(BIG).digest()
    assert fs.cat_file(big, start=len(BIG) - 100, end=len(BIG)) == BIG[-100:]


def test_s3_on_moto(moto_server):
    bucket = _name("bkt")
    fs = servers.s3_bucket(moto_server, bucket)
    _roundtrip(fs, bucket)


def test_moto_reset_empties_the_server():
    # Its own server: a reset of the shared one would wipe other tests' buckets.
    with servers.start_moto() as moto_server:
        bucket = _name("gone")
        fs = servers.s3_bucket(moto_server, bucket)
        fs.pipe_file(f"{bucket}/x", b"x")
        moto_server.reset()
        fresh = servers.s3_bucket(moto_server, _name("after"))
        assert bucket not in fresh.ls("", detail=False, refresh=True)


def test_azure_blob_on_azurite(azurite_server):
    container = _name("ctr")
    fs = servers.azure_container(azurite_server, container)
    _roundtrip(fs, container)


def test_gcs_on_fake_gcs_server(gcs_server):
    bucket = _name("bkt")
    fs = servers.gcs_bucket(gcs_server, bucket)
    _roundtrip(fs, bucket)


def test_postgres_select_one(postgres_server):
    engine = sa.create_engine(postgres_server.url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1
    finally:
        engine.dispose()


def test_postgres_create_database(postgres_server):
    name = _name("db").replace("-", "_")
    url = postgres_server.create_database(name)
    assert url.endswith(f"/{name}")
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT current_database()")).scalar_one() == name
    finally:
        engine.dispose()


def test_kill_and_restart_on_the_same_port(gcs_server):
    """A store that is down refuses connections; restart brings it back on its port."""
    with servers.start_fake_gcs() as server:
        port, pid = server.port, server.pid
        fs = servers.gcs_bucket(server, "bucket")
        fs.pipe_file("bucket/a", b"a")
        server.kill()
        assert not server.running
        assert not servers.http_answers(server.endpoint_url)
        server.restart()
        assert server.port == port and server.pid != pid
        fresh = servers.gcs_bucket(server, "again")  # in-memory data is gone; bucket creation works
        fresh.pipe_file("again/b", b"b")
        assert fresh.cat_file("again/b") == b"b"


def test_postgres_survives_kill_and_restart(postgres_server):
    with servers.start_postgres() as server:
        engine = sa.create_engine(server.url)
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE t (x int)"))
            conn.execute(sa.text("INSERT INTO t VALUES (42)"))
        engine.dispose()
        server.kill()
        assert not server.is_ready()
        server.restart()
        engine = sa.create_engine(server.url)
        try:
            with engine.connect() as conn:
                assert conn.execute(sa.text("SELECT x FROM t")).scalar_one() == 42
        finally:
            engine.dispose()
