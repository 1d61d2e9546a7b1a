"""Helpers shared by the pruner and fsck tests: the default store's root,
back-dated payload trees, version states, and a two-step pipeline."""

import datetime as dt
import os
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
    with get_index().write() as session:
        session.execute(update(VersionRow).values(created_at=utcnow() - dt.timedelta(hours=hours)))


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
