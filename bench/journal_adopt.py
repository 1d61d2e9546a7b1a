"""Benchmark and check: delete the index of a store of many versions made
by many pipeline runs, rebuild it with ``artifactfs fsck --adopt``, and
check that lineage and the mount's tree come back identical.

    python bench/journal_adopt.py [--versions 10000] [--runs 500] [--keep DIR]

In a fresh ARTIFACTFS_HOME (SQLite index, local store): ``--runs`` runs of
a pipeline of chained steps (each step reads the previous step's output;
every step has two outputs), together ``--versions`` versions, with tags
and metadata on some; then ``index.db`` is deleted, ``init`` and ``fsck
--adopt`` run, and the script compares, before and after: every version
(name, version, uuid, tags, metadata, files), every step run's links, the
``artifactfs lineage`` JSON of a sample of versions, ``artifact list`` and
the whole mount tree (walked in-process, as the FUSE daemon serves it).
Prints the time to build, to adopt, and versions adopted per second; exits
1 on any difference. The suite runs it at 200 versions from 20 runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path


def build(versions: int, runs: int) -> None:
    import artifactfs
    from artifactfs import log_metadata, pipeline, step

    outputs_per_run = max(2, versions // runs)
    steps = max(1, outputs_per_run // 2)

    @step
    def first(seed: int) -> tuple[dict, dict]:
        return {"seed": seed}, {"aux": seed}

    @step
    def then(previous: dict, k: int) -> tuple[dict, dict]:
        log_metadata({"k": k}, infer_artifact=True, artifact_name="output_0")
        return {"from": previous, "k": k}, {"aux": k}

    @pipeline(enable_cache=False)
    def chain(seed: int = 0):
        out, _ = first(seed=seed)
        for k in range(1, steps):
            out, _ = then(out, k=k)

    for number in range(runs):
        run = chain.with_options(run_name=f"chain-{number}", quiet=True)(seed=number)
        if number % 10 == 0:
            some = next(iter(run.steps.values())).outputs
            version = next(iter(some.values()))
            artifactfs.get_artifact_version(version.id).add_tags(["keep", f"run-{number}"])


def snapshot(sample_every: int) -> dict:
    from click.testing import CliRunner
    from sqlalchemy import select

    import artifactfs
    from artifactfs.cli.main import cli
    from artifactfs.index import get_index
    from artifactfs.index.models import Artifact, ArtifactVersion, StepIO, StepRun
    from artifactfs.mount import inodes
    from artifactfs.mount.fs import Tree

    runner = CliRunner()
    seen: dict = {"artifact list": runner.invoke(cli, ["artifact", "list"]).output}
    with get_index().read() as session:
        labels = sorted(f"{n}:{v}" for n, v in session.execute(
            select(Artifact.name, ArtifactVersion.version).join(ArtifactVersion.artifact)))
        seen["links"] = sorted((s.uuid, io.direction, io.name, v.uuid) for io, s, v in session.execute(
            select(StepIO, StepRun, ArtifactVersion).join(StepRun, StepRun.id == StepIO.step_run_id)
            .join(ArtifactVersion, ArtifactVersion.id == StepIO.version_id)))
    for number, label in enumerate(labels):
        name, version = label.rsplit(":", 1)
        v = artifactfs.get_artifact_version(name, version)
        seen[label] = (v.id, v.tags, repr(v.metadata), v.files, v.created_at)
        if number % sample_every == 0:
            seen[f"lineage {label}"] = json.loads(runner.invoke(cli, ["lineage", label, "-f", "json"]).output)
    tree = Tree(get_index())

    def walk(inode, prefix):
        for entry, node in tree.listdir(inode):
            path = prefix + entry.decode()
            seen[f"mount {path}"] = (node.size, node.mode, tree.readlink(node.inode) if path.endswith("/latest")
                                     else None)
            if node.is_dir:
                walk(node.inode, path + "/")

    walk(inodes.ROOT, "")
    return seen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--sample", type=int, default=100, help="lineage of every N-th version (default 100)")
    parser.add_argument("--keep", help="work in this folder and keep it (default: a temporary one)")
    args = parser.parse_args()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="artifactfs-journal-"))
    os.environ["ARTIFACTFS_HOME"] = str(work / "home")
    os.environ.pop("ARTIFACTFS_INDEX_URL", None)
    os.environ.pop("ARTIFACTFS_STORE", None)
    from click.testing import CliRunner

    from artifactfs.api import stores as api_stores
    from artifactfs.cli.main import cli
    from artifactfs.index import reset_index_cache
    from artifactfs.settings import get_settings

    began = time.perf_counter()
    build(args.versions, args.runs)
    built = time.perf_counter() - began
    before = snapshot(args.sample)
    versions = sum(1 for key in before if ":" in key and not key.startswith(("lineage ", "mount ")))
    reset_index_cache()
    for path in get_settings().data_dir.glob("index.db*"):
        path.unlink()
    reset_index_cache()
    api_stores.forget_opened(None)
    runner = CliRunner()
    assert runner.invoke(cli, ["init"]).exit_code == 0
    began = time.perf_counter()
    result = runner.invoke(cli, ["fsck", "--adopt"])
    adopted = time.perf_counter() - began
    after = snapshot(args.sample)
    differ = sorted(key for key in set(before) | set(after) if before.get(key) != after.get(key))
    print(f"{versions} versions from {args.runs} runs: built in {built:.1f} s, adopted in {adopted:.1f} s "
          f"({versions / adopted:.0f} versions/s); fsck --adopt exit code {result.exit_code}")
    print(result.output.splitlines()[0] if result.output else "")
    if result.exit_code != 0 or differ:
        print(result.output[-2000:])
        for key in differ[:20]:
            print(f"DIFFERS {key}:\n  before {before.get(key)!r}\n  after  {after.get(key)!r}")
        print(f"{len(differ)} difference(s)")
        return 1
    print("identical: versions, tags, metadata, files, links, lineage sample, artifact list, mount tree")
    return 0


if __name__ == "__main__":
    sys.exit(main())
