"""Helpers shared by the mount tests: pipeline rows made directly with the
ORM (until the pipeline runner lands), a real FUSE mount in a subprocess
that is always unmounted, and small file utilities."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from artifactfs.mount.daemon import mounted_at
from artifactfs.stores.hashing import new_hasher


def file_digest(path: str | os.PathLike, algorithm: str = "blake3", chunk: int = 1 << 20) -> str:
    """The hex digest of a file, as manifests record it (new versions: BLAKE3)."""
    digest = new_hasher(algorithm)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def make_run(pipeline: str, run: str, steps: dict, status: str = "completed") -> dict:
    """Pipeline, run and step rows; ``steps`` maps a step name to its
    outputs ``{output name: api ArtifactVersion}`` (and optionally inputs
    under the key ``"<inputs>"``). Returns the row ids."""
    from sqlalchemy import select

    from artifactfs.index import bump_generation, get_index
    from artifactfs.index.models import Pipeline, PipelineRun, StepIO, StepRun

    ids: dict = {"steps": {}}
    with get_index().write() as session:
        row = session.scalar(select(Pipeline).where(Pipeline.name == pipeline))
        if row is None:
            row = Pipeline(name=pipeline)
            session.add(row)
            session.flush()
        run_row = PipelineRun(pipeline_id=row.id, name=run, status=status)
        session.add(run_row)
        session.flush()
        ids["pipeline"], ids["run"] = row.id, run_row.id
        for step, outputs in steps.items():
            step_row = StepRun(run_id=run_row.id, name=step, status=status)
            session.add(step_row)
            session.flush()
            ids["steps"][step] = step_row.id
            for name, version in outputs.items():
                if name == "<inputs>":
                    for input_name, input_version in version.items():
                        session.add(StepIO(step_run_id=step_row.id, version_id=input_version._pk,
                                           direction="input", name=input_name))
                    continue
                session.add(StepIO(step_run_id=step_row.id, version_id=version._pk, direction="output", name=name))
        bump_generation(session)
    return ids


def condemn(version) -> None:
    """Move a version to ``condemned`` as the pruner would."""
    import datetime as dt

    from sqlalchemy import update

    from artifactfs.index import bump_generation, get_index
    from artifactfs.index.models import VersionRow

    with get_index().write() as session:
        session.execute(update(VersionRow).where(VersionRow.id == version._pk).values(
            state="condemned", condemned_at=dt.datetime.now(dt.timezone.utc)))
        bump_generation(session)


# -- a real mount -------------------------------------------------------------------------


def is_mounted(path: Path) -> bool:
    return mounted_at(path) is not None


def force_unmount(path: Path) -> None:
    for args in (["fusermount3", "-u"], ["fusermount3", "-uz"]):
        if not is_mounted(path):
            return
        subprocess.run([*args, str(path)], capture_output=True, timeout=30)
        deadline = time.monotonic() + 5
        while is_mounted(path) and time.monotonic() < deadline:
            time.sleep(0.05)


@dataclass
class Mount:
    path: Path
    proc: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 20.0) -> float:
        """SIGTERM the daemon; seconds until it exited (it unmounts itself)."""
        began = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return time.monotonic() - began


def skip_without_fuse() -> None:
    if not os.path.exists("/dev/fuse") or subprocess.run(["which", "fusermount3"], capture_output=True).returncode:
        if os.environ.get("CI"):
            pytest.fail("FUSE (/dev/fuse, fusermount3) is missing")
        pytest.skip("needs /dev/fuse and fusermount3")


@contextmanager
def mounted(path: Path, *extra: str, refresh: str = "0.2s", timeout: str = "10s", cache_dir: Path | None = None,
            log_path: Path | None = None):
    """Mount the index of the current ARTIFACTFS_HOME at ``path`` in a
    foreground daemon; always unmounted and stopped at the end."""
    skip_without_fuse()
    path.mkdir(parents=True, exist_ok=True)
    log_path = log_path or path.with_name(path.name + ".log")
    cache_dir = cache_dir or path.with_name(path.name + "-cache")
    argv = [sys.executable, "-m", "artifactfs.cli.mount", str(path), "--foreground", "--refresh", refresh,
            "--timeout", timeout, "--cache-dir", str(cache_dir), *extra]
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    mount = Mount(path, proc, log_path)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"mount daemon exited with {proc.returncode}:\n{mount.log()}")
            if is_mounted(path):
                try:
                    os.stat(path / "artifacts")
                    break
                except OSError:
                    pass
            if time.monotonic() > deadline:
                raise AssertionError(f"not mounted within 30 s:\n{mount.log()}")
            time.sleep(0.05)
        yield mount
    finally:
        mount.stop()
        force_unmount(path)
        assert not is_mounted(path), f"{path} is still mounted"


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05):
    """Poll ``predicate`` until it returns something true; that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


def tree_of(root: Path) -> dict[str, str]:
    """``{relative path: "d" | "l" | size}`` of everything below ``root``."""
    found = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            full = os.path.join(folder, name)
            found[os.path.relpath(full, root)] = "l" if os.path.islink(full) else "d"
        for name in files:
            full = os.path.join(folder, name)
            found[os.path.relpath(full, root)] = "l" if os.path.islink(full) else os.lstat(full).st_size
    return found
