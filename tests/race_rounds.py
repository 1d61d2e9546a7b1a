"""One round of the pipeline race that R1 (``tests/test_gc_races.py``) and
the soak (``bench/soak.py``) run beside a looping pruner: maybe save a new
``data`` version, run a pipeline that links a recent one as its input, run
a pipeline whose steps are often cached, check that everything each run
links loads (with verification) while the run exists, then delete the
previous round's runs so their versions become unreferenced."""

from __future__ import annotations

import random
import traceback
import uuid

from artifactfs import Client, pipeline, save_artifact, step
from artifactfs.errors import NotFoundError
from artifactfs.index.pipelines import VersionNotLiveError


@step
def consume(data: dict) -> dict:
    return {"seen": data["i"]}


@step
def make(k: int) -> dict:
    return {"k": k, "pad": "x" * 200}


@step
def use(made: dict) -> int:
    return made["k"]


@pipeline
def consume_pipe(version: str):
    consume(Client().get_artifact_version("data", version))


@pipeline
def cached_pipe(k: int):
    use(make(k=k))


def new_stats() -> dict:
    return {"rounds": 0, "runs": 0, "linked_runs": 0, "refused": 0, "cached_steps": 0, "real_steps": 0,
            "loads": 0, "problems": [], "failures": []}


def verify_run(run, stats: dict) -> None:
    """Everything a run links must load, for as long as the run exists: the pruner never takes it."""
    for s in run.steps.values():
        for v in list(s.inputs.values()) + list(s.outputs.values()):
            try:
                v.load(verify=True)
                stats["loads"] += 1
            except Exception as exc:  # noqa: BLE001 - any failure here is a loss
                stats["problems"].append(f"run {run.name} links {v}: {type(exc).__name__}: {exc}"[:500])


def race_round(previous: list[str], stats: dict) -> list[str]:
    """One round; returns the names of this round's runs (deleted by the next)."""
    stats["rounds"] += 1
    mine: list[str] = []
    try:
        if random.random() < 0.5:
            save_artifact({"i": random.randrange(10**6)}, "data")
        versions = Client().list_artifact_versions("data", limit=8)
        if versions:
            name = f"c-{uuid.uuid4().hex[:12]}"
            mine.append(name)
            try:
                run = consume_pipe.with_options(run_name=name)(random.choice(versions).version)
                stats["runs"] += 1
                stats["linked_runs"] += 1
                verify_run(run, stats)
            except (VersionNotLiveError, NotFoundError):
                stats["refused"] += 1  # the pruner condemned it before the link: a clean refusal
        name = f"k-{uuid.uuid4().hex[:12]}"
        mine.append(name)
        run = cached_pipe.with_options(run_name=name)(random.randrange(3))
        stats["runs"] += 1
        verify_run(run, stats)
        for s in run.steps.values():
            stats["cached_steps" if s.is_cached else "real_steps"] += 1
    except Exception:  # noqa: BLE001
        stats["failures"].append(traceback.format_exc()[-3000:])
    for old in previous:  # the previous round's runs go: their versions become unreferenced
        try:
            Client().delete_pipeline_run(old)
        except NotFoundError:
            pass
    return mine
