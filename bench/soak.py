"""Soak (issue 10, not in CI): for N minutes, on SQLite and then on
PostgreSQL, run at once

* pipelines that link recent versions as inputs, and cached re-runs;
* saves (verified right after the commit);
* loads with ``verify=True``;
* a checkpoint watcher (``artifactfs watch``) over a trainer's folder;
* a reader of a real FUSE mount (``artifactfs mount``);
* a looping pruner: ``artifactfs gc -y --grace 0 --orphan-grace 0 --keep-latest 0``,
  every third pass under libfaketime two days ahead or one day behind (its
  clock jumped; on SQLite it must refuse, on PostgreSQL the server's clock rules);
* a link-swapper: someone who can write the store keeps swapping a payload
  folder and a payload file of live versions for links to root-only files
  outside the store and back (``renameat2(RENAME_EXCHANGE)``); the mount
  must never serve those files, nothing outside the store may go, and a
  load that meets a link is refused (counted, not a loss);

then print runs, saves, loads, pruner passes and losses, which must be 0.

A loss is a committed version whose payload is missing or fails
verification while its row is live, or a version a run links (as input or
output) that fails to load while the run exists, or, at the end, a live
version that fails verification or a condemned version a run links. A load
of a version the pruner has just condemned fails cleanly with "not found":
that is the pruner's right with grace 0, not a loss.

    python bench/soak.py [--minutes 10] [--backends sqlite,postgres]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # servers.py (PostgreSQL), race_rounds.py (the pipeline race)
CLI = [sys.executable, "-c", "from artifactfs.cli.main import main; main()"]
ROLES = ("pipelines", "saves", "loads", "watcher", "mount", "pruner", "swapper")
SECRET = b"ROOT-ONLY-SECRET "  # what the swapper's links lead to


# -- the roles, each in a process of its own -------------------------------------------------


def is_live(version_id: str) -> bool:
    from artifactfs.index import get_index
    from artifactfs.index.models import ArtifactVersion
    from sqlalchemy import select

    with get_index().read() as session:
        state = session.scalar(select(ArtifactVersion.state).where(ArtifactVersion.uuid == version_id))
    return state == "live"


def check_load(version_id: str, stats: dict) -> None:
    """Load with verify; a failure of a version still live is a loss."""
    from artifactfs import load_artifact
    from artifactfs.errors import NotFoundError
    from artifactfs.stores.beneath import LinkFound

    try:
        load_artifact(version_id, verify=True)
        stats["loads"] += 1
    except NotFoundError:
        stats["pruned_meanwhile"] += 1
    except LinkFound:
        stats["link_refusals"] += 1  # met the swapper's link: refused, never followed
    except Exception as exc:  # noqa: BLE001
        if is_live(version_id):
            stats["losses"].append(f"live version {version_id}: {type(exc).__name__}: {exc}"[:500])
        else:
            stats["pruned_meanwhile"] += 1


def role_saves(stop: Path, stats: dict) -> None:
    import numpy as np

    from artifactfs import save_artifact

    while not stop.exists():
        value = np.random.default_rng().random(random.randrange(10, 20000)) if random.random() < 0.5 else \
            {"i": random.randrange(10**6), "pad": "x" * random.randrange(1000)}
        v = save_artifact(value, random.choice(["soak-a", "soak-b"]))
        stats["saves"] += 1
        check_load(v.id, stats)


def role_loads(stop: Path, stats: dict) -> None:
    from artifactfs import Client

    while not stop.exists():
        versions = [v for name in ("soak-a", "soak-b", "data", "soak-swap") for v in _versions(Client(), name)]
        if not versions:
            time.sleep(0.1)
            continue
        check_load(random.choice(versions).id, stats)


def _versions(client, name: str) -> list:
    from artifactfs.errors import NotFoundError

    try:
        return client.list_artifact_versions(name, limit=20)
    except NotFoundError:
        return []


def role_pipelines(stop: Path, stats: dict) -> None:
    from race_rounds import new_stats, race_round

    race, previous = new_stats(), []
    while not stop.exists():
        previous = race_round(previous, race)
    stats["runs"] += race["runs"]
    stats["loads"] += race["loads"]
    stats["refused_links"] += race["refused"]
    stats["losses"] += race["problems"]
    stats["errors"] += race["failures"]


def role_watcher(stop: Path, stats: dict) -> None:
    """A trainer writing checkpoints into a folder of the store, and the watcher registering them."""
    import artifactfs

    folder = Path(artifactfs.get_store().path) / "trainer" / f"ckpts-{os.getpid()}"
    folder.mkdir(parents=True)
    watcher = subprocess.Popen(CLI + ["watch", str(folder), "--name", "soak-ckpt", "--pattern", "*.ckpt",
                                      "--settle", "1s"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        epoch = 0
        while not stop.exists():
            epoch += 1
            tmp = folder / f".epoch={epoch}.ckpt.tmp"
            tmp.write_bytes(os.urandom(random.randrange(1000, 200_000)))
            tmp.rename(folder / f"epoch={epoch}.ckpt")
            stats["checkpoints"] += 1
            time.sleep(0.5)
    finally:
        watcher.terminate()
        _, err = watcher.communicate(timeout=60)
        if watcher.returncode not in (0, -15):
            stats["errors"].append(f"watcher exited {watcher.returncode}: {err.decode()[-1000:]}")


def role_mount(stop: Path, stats: dict, mountpoint: Path) -> None:
    """Read random payload files through the real FUSE mount."""
    while not stop.exists():
        root = mountpoint / "artifacts"
        try:
            names = os.listdir(root)
            files = [p for name in random.sample(names, min(3, len(names)))
                     for version in os.listdir(root / name) if version != "latest"
                     for p in (root / name / version).rglob("*") if p.is_file()]
            if not files:
                time.sleep(0.1)
                continue
            with open(random.choice(files), "rb") as f:
                while piece := f.read(1 << 20):
                    if SECRET in piece:
                        stats["losses"].append(f"the mount served a root-only file through a link ({f.name})")
            stats["mount_reads"] += 1
        except OSError:
            stats["mount_misses"] += 1  # pruned between the listing and the read: ENOENT, as a removed file


# Clocks of the pruner's passes, in turn: real, real, two days ahead, real, real, a day behind.
JUMPS = (None, None, "+2d", None, None, "-1d")


def role_pruner(stop: Path, stats: dict) -> None:
    passes = 0
    faketime = shutil.which("faketime")
    while not stop.exists():
        jump = JUMPS[passes % len(JUMPS)] if faketime else None
        passes += 1
        prefix = [faketime, "-f", jump] if jump else []
        proc = subprocess.run(prefix + CLI + ["gc", "-y", "--grace", "0", "--orphan-grace", "0", "--keep-latest", "0"],
                              capture_output=True, text=True)
        if proc.returncode == 0:
            stats["passes"] += 1
            stats["jumped_passes"] += bool(jump)
        elif "another pruner" in proc.stderr:
            stats["lease_busy"] += 1
        elif jump and "refusing to prune" in proc.stderr:
            stats["clock_refused"] += 1
        else:
            stats["errors"].append(f"gc exited {proc.returncode}: {proc.stderr[-1000:]}")


def role_swapper(stop: Path, stats: dict) -> None:
    """Swap the payload folder of one live version, and a payload file of
    another, for links to root-only files outside the store and back."""
    from link_swaps import exchange

    from artifactfs import save_artifact

    outside = Path(tempfile.mkdtemp(prefix="artifactfs-soak-outside-"))  # 0700, root's
    kept = [save_artifact({"swap": i, "pad": "x" * 200}, "soak-swap", tags=["keep"]) for i in range(2)]
    size = (Path(kept[0].uri) / "data.json").stat().st_size
    secrets = [outside / "folder" / "data.json", outside / "file.json"]
    for secret in secrets:
        secret.parent.mkdir(exist_ok=True)
        secret.write_bytes((SECRET * size)[:size])  # the payload's size: a size check alone would take it
        secret.chmod(0o600)
    pairs = [(Path(kept[0].uri), Path(kept[0].uri + ".swap"), outside / "folder"),
             (Path(kept[1].uri) / "data.json", Path(kept[1].uri) / "data.json.swap", secrets[1])]
    for _, link, target in pairs:
        link.symlink_to(target)
    try:
        while not stop.exists():
            for real, link, _ in pairs:
                exchange(real, link)  # the link takes the payload's name
            time.sleep(random.random() * 0.01)
            for real, link, _ in pairs:
                exchange(real, link)  # and the payload comes back
            stats["swaps"] += 1
            time.sleep(random.random() * 0.01)
    finally:
        for real, link, _ in pairs:
            if real.is_symlink():
                exchange(real, link)
            link.unlink()
        stats["losses"] += [f"{secret} outside the store was deleted" for secret in secrets if not secret.exists()]
        shutil.rmtree(outside, ignore_errors=True)


def run_role(role: str, stop: Path, out: Path, mountpoint: Path) -> None:
    stats = {"runs": 0, "saves": 0, "loads": 0, "passes": 0, "checkpoints": 0, "mount_reads": 0,
             "mount_misses": 0, "pruned_meanwhile": 0, "refused_links": 0, "lease_busy": 0, "swaps": 0,
             "link_refusals": 0, "jumped_passes": 0, "clock_refused": 0, "losses": [],
             "errors": []}
    random.seed(os.getpid())
    try:
        if role == "mount":
            role_mount(stop, stats, mountpoint)
        else:
            globals()[f"role_{role}"](stop, stats)
    except Exception:  # noqa: BLE001
        stats["errors"].append(traceback.format_exc()[-2000:])
    out.write_text(json.dumps(stats))


# -- one backend --------------------------------------------------------------------------


def final_check() -> dict:
    """After everything stopped: every live version verifies, no run links a condemned version."""
    from sqlalchemy import select

    from artifactfs import Client
    from artifactfs.index import get_index
    from artifactfs.index import gc as gc_rows
    from artifactfs.index.models import ArtifactVersion

    with get_index().read() as session:
        live = list(session.scalars(select(ArtifactVersion.uuid).where(ArtifactVersion.state == "live")))
        referenced = gc_rows.referenced_condemned(session)
    losses = [f"run links condemned {v.label}" for v in referenced]
    for version_id in live:
        try:
            Client().get_artifact_version(version_id).verify()
        except Exception as exc:  # noqa: BLE001
            losses.append(f"live version {version_id} fails verification: {exc}"[:500])
    return {"live_checked": len(live), "losses": losses}


def soak(backend: str, minutes: float, workdir: Path) -> dict:
    from artifactfs.index import reset_index_cache

    home = workdir / f"home-{backend}"
    env = {**os.environ, "ARTIFACTFS_HOME": str(home)}
    if env.get("PYTHONPATH"):  # the mount daemon leaves the working folder: relative entries would miss
        env["PYTHONPATH"] = os.pathsep.join(os.path.abspath(p) for p in env["PYTHONPATH"].split(os.pathsep))
    env.pop("ARTIFACTFS_STORE", None)
    env.pop("ARTIFACTFS_INDEX_URL", None)
    postgres = None
    if backend == "postgres":
        import servers

        postgres = servers.start_postgres()
        env["ARTIFACTFS_INDEX_URL"] = postgres.create_database("soak")
    os.environ.clear()
    os.environ.update(env)
    reset_index_cache()
    mountpoint = workdir / f"mnt-{backend}"
    mountpoint.mkdir()
    stop = workdir / f"stop-{backend}"
    procs = []
    try:
        subprocess.run(CLI + ["init"], check=True, capture_output=True)
        mounted = subprocess.run(CLI + ["mount", str(mountpoint)], capture_output=True, text=True, timeout=120)
        if mounted.returncode != 0:
            raise SystemExit(f"artifactfs mount failed: {mounted.stdout}{mounted.stderr}")
        me = [sys.executable, str(Path(__file__).resolve())]
        for role in ROLES:
            out = workdir / f"{backend}-{role}.json"
            procs.append((role, out, subprocess.Popen(
                me + ["--role", role, "--stop", str(stop), "--out", str(out), "--mountpoint", str(mountpoint)],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)))
        stop_at = time.monotonic() + minutes * 60
        while time.monotonic() < stop_at and all(p.poll() is None for _, _, p in procs):
            time.sleep(1)
        stop.touch()
        totals: dict = {"losses": [], "errors": []}
        for role, out, proc in procs:
            _, err = proc.communicate(timeout=600)
            if not out.exists():
                totals["errors"].append(f"{role} died ({proc.returncode}): {err.decode()[-1500:]}")
                continue
            for key, value in json.loads(out.read_text()).items():
                totals[key] = totals.get(key, 0 if not isinstance(value, list) else []) + value
        subprocess.run(CLI + ["umount", str(mountpoint)], capture_output=True, timeout=120)
        final = final_check()
        totals["losses"] += final["losses"]
        totals["live_checked"] = final["live_checked"]
        return totals
    finally:
        for _, _, proc in procs:
            if proc.poll() is None:
                proc.kill()
        from artifactfs.mount.daemon import mounted_at

        if mounted_at(mountpoint):
            subprocess.run(["fusermount3", "-u", "-z", str(mountpoint)], capture_output=True)
        reset_index_cache()
        if postgres is not None:
            postgres.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--role", choices=ROLES, help=argparse.SUPPRESS)
    parser.add_argument("--stop", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--mountpoint", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role:
        run_role(args.role, Path(args.stop), Path(args.out), Path(args.mountpoint))
        return
    workdir = Path(tempfile.mkdtemp(prefix="artifactfs-soak-"))
    failed = False
    try:
        for backend in args.backends.split(","):
            began = time.monotonic()
            totals = soak(backend, args.minutes, workdir)
            losses, errors = totals["losses"], totals["errors"]
            print(f"{backend}: {time.monotonic() - began:.0f}s: runs {totals.get('runs', 0)}, "
                  f"saves {totals.get('saves', 0)}, loads {totals.get('loads', 0)} (verified), "
                  f"passes {totals.get('passes', 0)} (clock jumped: {totals.get('jumped_passes', 0)} ran, "
                  f"{totals.get('clock_refused', 0)} refused), checkpoints {totals.get('checkpoints', 0)}, "
                  f"mount reads {totals.get('mount_reads', 0)}, pruned meanwhile {totals.get('pruned_meanwhile', 0)}, "
                  f"refused links {totals.get('refused_links', 0)}, link swaps {totals.get('swaps', 0)} "
                  f"(loads refused {totals.get('link_refusals', 0)}), live versions checked at the end "
                  f"{totals.get('live_checked', 0)}; losses {len(losses)}, errors {len(errors)}", flush=True)
            for line in (losses + errors)[:10]:
                print(f"  {line}")
            failed = failed or bool(losses or errors)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print("losses: 0 on every backend" if not failed else "LOSSES OR ERRORS (see above)")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
