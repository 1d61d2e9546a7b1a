"""Helpers shared by the pruner and fsck tests: the default store's root,
back-dated payload trees, version states, a two-step pipeline, and a save
parked before its commit in another process."""

import contextlib
import datetime as dt
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from sqlalchemy import select, update

import artifactfs
from artifactfs import pipeline, step
from artifactfs.index import get_index
from artifactfs.index.models import VersionRow
from artifactfs.index.models import WriteIntent, utcnow


def root() -> Path:
    return Path(artifactfs.get_store().path)


def backdate_tree(path: Path, hours: float = 48) -> None:
    """Make a payload tree look ``hours`` old, as git's prune tests do."""
    stamp = time.time() - hours * 3600
    for folder, dirs, files in os.walk(path):
        for name in dirs + files:
            os.utime(os.path.join(folder, name), (stamp, stamp), follow_symlinks=False)
    os.utime(path, (stamp, stamp))


def backdate_all(hours: float = 48) -> None:
    """Every version as if saved ``hours`` ago: its row, and its manifest
    file (the store's journal of the row), which a save would have written so."""
    from artifactfs.api.journal import update_journals

    with get_index().write() as session:
        session.execute(update(VersionRow).values(created_at=utcnow() - dt.timedelta(hours=hours)))
        ids = list(session.scalars(select(VersionRow.id)))
    update_journals(ids)


def states() -> dict[str, str]:
    """Version uuid -> state, for every row."""
    with get_index().read() as session:
        return dict(session.execute(select(VersionRow.uuid, VersionRow.state)).all())


@step
def produce(n: int) -> dict:
    return {"n": n}


@step
def consume(data: dict) -> int:
    return data["n"] * 2


@pipeline
def chain(n: int = 1):
    consume(produce(n=n))


def backdate_intents(hours: float = 48) -> None:
    """Age every write intent, as time passing would (a killed writer's stays)."""
    with get_index().write() as session:
        session.execute(update(WriteIntent).values(started_at=utcnow() - dt.timedelta(hours=hours)))


PARKED_SAVE = textwrap.dedent(
    """
    from artifactfs import save_artifact
    v = save_artifact({"weights": list(range(1000))}, "inflight")
    print(v.id)
    """
)


@contextlib.contextmanager
def parked_save(tmp_path: Path):
    """A save of "inflight" in another process, stopped at ``before_commit``
    (payload written, no row yet) while the block runs; then it commits, and
    this checks that it did and that its version loads whole."""
    from artifactfs import Client, load_artifact

    rendezvous = tmp_path / "rendezvous"
    rendezvous.mkdir()
    env = {**os.environ, "ARTIFACTFS_PAUSE": "before_commit", "ARTIFACTFS_PAUSE_DIR": str(rendezvous)}
    saver = subprocess.Popen([sys.executable, "-c", PARKED_SAVE], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not any(rendezvous.glob("before_commit.*.reached")):
            assert saver.poll() is None, saver.communicate()
            assert time.monotonic() < deadline, "the save never reached before_commit"
            time.sleep(0.05)
        yield saver
    finally:
        (rendezvous / "before_commit.go").touch()
    out, err = saver.communicate(timeout=120)
    assert saver.returncode == 0, err
    version = Client().get_artifact_version(out.strip())
    assert load_artifact("inflight", version.version, verify=True) == {"weights": list(range(1000))}
