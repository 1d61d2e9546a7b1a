"""The ``s3`` flavor: Amazon S3 and S3-compatible servers through s3fs."""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from artifactfs.stores.flavor import Flavor, stream_on_loop

if TYPE_CHECKING:
    import fsspec


class S3Flavor(Flavor):
    name = "s3"
    schemes = ("s3", "s3a")
    protocol = "s3"
    module = "s3fs"
    extra = "s3"
    secret_options = frozenset({"key", "secret", "token"})
    machine_options = frozenset({"profile"})
    env_credentials = {"key": "AWS_ACCESS_KEY_ID", "secret": "AWS_SECRET_ACCESS_KEY", "token": "AWS_SESSION_TOKEN"}
    # A store that is down must fail in seconds, not after botocore's long defaults.
    default_options = {
        "config_kwargs": {"connect_timeout": 5, "read_timeout": 60, "retries": {"max_attempts": 2}},
        "use_listings_cache": False,
    }
    option_help = {
        "endpoint_url": "URL of an S3-compatible server (MinIO, moto, Ceph)",
        "region": "bucket region, e.g. eu-west-1",
        "profile": "AWS profile from ~/.aws/credentials",
        "key / secret / token": "credentials (secret: kept out of the index)",
        "client_kwargs / config_kwargs": "JSON objects passed to botocore",
    }

    @classmethod
    def filesystem_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        options = dict(options)
        region = options.pop("region", None)
        if region:
            options["client_kwargs"] = {**options.get("client_kwargs", {}), "region_name": region}
        return options

    streams_ranges = True

    @classmethod
    def stream_range(cls, fs: fsspec.AbstractFileSystem, native: str, start: int, end: int,
                     chunk: int) -> Generator[bytes, None, None]:
        # One GetObject through s3fs's own botocore client (``set_session``),
        # its body read as it arrives; errors translated as s3fs does.
        from botocore.exceptions import ClientError
        from s3fs.errors import translate_boto_error

        bucket, key, version_id = fs.split_path(native)
        extra = {**fs.req_kw, **({"VersionId": version_id} if version_id else {})}

        async def open_body() -> Any:
            client = await fs.set_session()
            try:
                response = await client.get_object(Bucket=bucket, Key=key, Range=f"bytes={start}-{end - 1}", **extra)
            except ClientError as exc:
                raise translate_boto_error(exc) from exc
            return response["Body"]

        async def read(body: Any, nbytes: int) -> bytes:
            return await body.read(nbytes)

        async def close(body: Any) -> None:
            body.close()  # on the loop, which owns the connection (aiobotocore 2.x has no ``aclose``)

        return stream_on_loop(fs.loop, open_body, read, close, chunk)

    @classmethod
    def prepare(cls, fs: fsspec.AbstractFileSystem) -> None:
        # s3fs builds its botocore client on the first request (measured:
        # 0.13-0.2 s of CPU, 10-20% of a 256 MiB first read on moto);
        # ``connect`` builds it now without sending anything.
        fs.connect()
