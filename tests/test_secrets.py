"""Secrets never leak: a password in the index URL, secrets nested in
``client_kwargs`` and credentials in an endpoint URL are planted, then every
command of the CLI is run (against real PostgreSQL and moto) and its output,
its log lines and the index itself are searched for them."""

import json
import logging
import os
import stat
import uuid

import click
import pytest
from click.testing import CliRunner
from sqlalchemy import text

import servers
from artifactfs import pipeline, save_artifact, step
from artifactfs.cli.main import cli
from artifactfs.index import get_index, reset_index_cache
from artifactfs.settings import get_settings
from artifactfs.stores import get_flavor

PG_PASSWORD = "pg-PLANTED-passw0rd"
AWS_SECRET = "aws-PLANTED-secret-key"
SESSION_TOKEN = "aws-PLANTED-session-token"
URL_SECRET = "url-PLANTED-secret"
SECRETS = (PG_PASSWORD, AWS_SECRET, SESSION_TOKEN, URL_SECRET)


def test_mask_url_and_split():
    from artifactfs.stores.secrets import mask_url, merge_secrets, redact, secret_names, split_secrets

    assert mask_url(f"postgresql+psycopg://me:{PG_PASSWORD}@db:5432/afs") == "postgresql+psycopg://me:***@db:5432/afs"
    assert mask_url("sqlite:////home/me/index.db") == "sqlite:////home/me/index.db"
    assert mask_url("postgresql://me@db/afs?password=x&sslmode=require") == "postgresql://me@db/afs?password=***&sslmode=require"
    options = {"endpoint_url": f"http://AKIA:{URL_SECRET}@minio:9000", "anon": False,
               "client_kwargs": {"region_name": "eu", "aws_secret_access_key": AWS_SECRET,
                                 "aws_session_token": SESSION_TOKEN},
               "config_kwargs": {"proxies": {"https": "http://p:pw@proxy:3128"}}}
    public, secret = split_secrets(get_flavor("s3"), options)
    assert public == {"endpoint_url": "http://minio:9000", "anon": False, "client_kwargs": {"region_name": "eu"},
                      "config_kwargs": {"proxies": {"https": "http://proxy:3128"}}}
    assert merge_secrets(public, secret) == options
    assert secret_names(secret) == ["client_kwargs.aws_secret_access_key", "client_kwargs.aws_session_token",
                                    "config_kwargs.proxies.https", "endpoint_url"]
    assert not any(s in json.dumps(public) for s in SECRETS)
    assert redact(f"cannot reach http://k:{URL_SECRET}@h/x?X-Amz-Signature=abc") == "cannot reach http://k:***@h/x?X-Amz-Signature=***"


@pytest.fixture
def planted(postgres_server, moto_server, artifactfs_home, monkeypatch):
    """An index URL with a password, and two S3 stores with secrets in client_kwargs and in endpoint_url."""
    url = postgres_server.create_database(f"t_{uuid.uuid4().hex[:16]}")
    monkeypatch.setenv("ARTIFACTFS_INDEX_URL", url.replace("://postgres@", f"://postgres:{PG_PASSWORD}@"))
    bucket = f"secrets-{uuid.uuid4().hex[:8]}"
    servers.s3_bucket(moto_server, bucket)
    factory = logging.getLogRecordFactory()
    reset_index_cache()
    yield {"bucket": bucket, "endpoint": moto_server.endpoint_url}
    reset_index_cache()
    logging.setLogRecordFactory(factory)


@step
def make(n: int = 3) -> list:
    return list(range(n))


@pipeline
def tiny(n: int = 3):
    make(n=n)


def leaf_commands(group: click.Group, prefix=()) -> set[str]:
    found = set()
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found |= leaf_commands(command, (*prefix, name))
        else:
            found.add(" ".join((*prefix, name)))
    return found


def test_no_command_prints_or_logs_a_secret(planted, tmp_path, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    bucket, endpoint = planted["bucket"], planted["endpoint"]
    client_kwargs = json.dumps({"aws_access_key_id": "testing", "aws_secret_access_key": AWS_SECRET,
                                "aws_session_token": SESSION_TOKEN})
    host = endpoint.split("://", 1)[1]
    source = tmp_path / "model.bin"
    source.write_bytes(b"weights")
    watched = tmp_path / "watched"
    watched.mkdir()
    (watched / "epoch=1.ckpt").write_bytes(b"ckpt")
    os.utime(watched / "epoch=1.ckpt", (0, 0))

    def run_id() -> str:
        return tiny().id

    commands = [
        ("init",), ("info",),
        ("store", "register", "s3", "-f", "s3", "-p", f"s3://{bucket}/a", "-o", f"endpoint_url={endpoint}",
         "-o", f"client_kwargs={client_kwargs}"),
        ("store", "register", "s3url", "-f", "s3", "-p", f"s3://{bucket}/b",
         "-o", f"endpoint_url=http://testing:{URL_SECRET}@{host}"),
        ("store", "register", "s3bad", "-f", "s3", "-p", f"s3://testing:{URL_SECRET}@{bucket}/c"),
        ("store", "list"), ("store", "describe", "s3"), ("store", "describe", "s3url"),
        ("store", "flavors"), ("store", "check", "s3"), ("store", "check", "s3url"),
        ("store", "set-active", "s3"),
        ("store", "login", "s3", "-o", f"secret={AWS_SECRET}", "-o", f"token={SESSION_TOKEN}"),
        ("store", "update", "s3url", "-o", f"token={SESSION_TOKEN}", "-o", "use_ssl=false"),
        ("store", "register", "gone", "-f", "s3", "-p", f"s3://{bucket}/gone", "-o", f"endpoint_url={endpoint}",
         "-o", f"secret={AWS_SECRET}"),
        ("store", "remove", "gone"),
        ("artifact", "register", str(source), "--name", "model", "--copy"),
        ("artifact", "list",), ("artifact", "versions", "model"), ("artifact", "show", "model", "--files"),
        ("artifact", "tag", "model:1", "best"), ("artifact", "export", "model:1", str(tmp_path / "export")),
        ("artifact", "register", str(source), "--name", "model2", "--copy", "--store", "s3url"),
        ("artifact", "prune", "--dry-run"),
        ("pipeline", "list"), ("run", "list"), ("run", "show", run_id), ("run", "prune", "--dry-run"),
        ("run", "delete", "no-such-run", "-y"),
        ("watch", str(watched), "--name", "ckpt", "--copy", "--once", "--settle", "0s"),
        ("migrate", "--to", "s3url", "--artifact", "model", "--dry-run"), ("migrate", "--to", "s3url"),
        ("lineage", "model:1"),
        ("mount", "--status"), ("umount", str(tmp_path / "not-mounted")),
        ("gc", "daemon", "--every", "1s", "--max-passes", "1", "--grace", "1h"),
        ("fsck",), ("fsck", "--adopt", "--store", "s3url"), ("store", "claim", "s3url"),
        ("ui", "--port", "0", "--token", "short"),  # refused at once; the pages it serves are read below
    ]
    missing = {c for c in leaf_commands(cli) if not any(" ".join(cmd[: len(c.split())]) == c for cmd in commands)}
    assert not missing, f"add an invocation of {sorted(missing)} to this test: every command is searched for secrets"

    runner = CliRunner()
    transcript = []
    for command in commands:
        args = [arg() if callable(arg) else arg for arg in command]
        result = runner.invoke(cli, args, catch_exceptions=True)
        transcript.append(f"$ artifactfs {args[0]} ...\n{result.output}{result.exception or ''}")  # not the args
    output = "\n".join(transcript)
    captured = capfd.readouterr()
    for secret in SECRETS:
        assert secret not in output, f"{secret} printed:\n{output}"
        assert secret not in caplog.text, f"{secret} logged"
        assert secret not in captured.out + captured.err

    # what the commands said instead
    assert "postgresql+psycopg://postgres:***@" in output
    assert ("Secret options client_kwargs.aws_access_key_id, client_kwargs.aws_secret_access_key, "
            "client_kwargs.aws_session_token saved to") in output
    assert "carries a password" in output  # a root URI with credentials is refused
    assert "1 registered" in output

    # the index holds none of them; the owner-only credentials file holds them all
    with get_index().read() as session:
        rows = session.execute(text("SELECT name, options FROM store")).all()
    assert not any(secret in json.dumps(options) for _, options in rows for secret in SECRETS)
    stored = dict(rows)
    assert stored["s3url"]["endpoint_url"] == endpoint and "client_kwargs" not in stored["s3"]
    credentials = get_settings().credentials_path
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    assert all(secret in credentials.read_text() for secret in (AWS_SECRET, SESSION_TOKEN, URL_SECRET))

    # the store works with its secrets merged back
    save_artifact({"a": 1}, "doc", store="s3")

    # the stores' journals (manifest files, remote ones too) hold none of them
    from artifactfs.api import get_store

    fs = get_store("s3").fs  # its credentials read the whole bucket: both stores' prefixes
    journals = [fs.cat_file(p).decode() for p in fs.find(bucket) if p.endswith(".manifest.json")]
    assert len(journals) >= 3 and all('"seal"' in text for text in journals)
    for secret in SECRETS:
        assert not any(secret in text for text in journals), f"{secret} in a manifest file"

    # what `artifactfs ui` serves about the index and the stores
    from web_helpers import client, serving

    from artifactfs.web import WebConfig, create_app

    with serving(create_app(WebConfig())) as base, client(base) as http:
        pages = [http.get(path).text for path in ("/stores", "/api/v1/stores")]
    assert "postgres:***@" in pages[0] and "s3url" in pages[1]
    for secret in SECRETS:
        assert not any(secret in page for page in pages), f"{secret} served"
