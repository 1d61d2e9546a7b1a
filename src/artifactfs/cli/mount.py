"""``artifactfs mount`` / ``artifactfs umount``: mount the index as a
read-only file tree (in the background by default), show the mounts,
unmount them."""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

import click

from artifactfs.cli.output import console, error_line, escape, table
from artifactfs.cli.params import POSITIVE_SECONDS
from artifactfs.errors import ArtifactfsError, ConfigError

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b?)\s*$", re.I)


def parse_size(text: str) -> int:
    """``20G``, ``512M``, ``1.5GiB``, ``1000000`` -> bytes (binary units)."""
    match = _SIZE.match(str(text))
    if not match:
        raise click.BadParameter(f"{text!r} is not a size like 20G, 512M or 1000000")
    number, unit = float(match[1]), match[2].lower()
    return int(number * 1024 ** "_kmgtp".index(unit)) if unit else int(number)


def _size_option(ctx, param, value):
    return parse_size(value)


@click.command("mount")
@click.argument("mountpoint", required=False, type=click.Path(file_okay=False))
@click.option("--foreground", "-f", is_flag=True, help="Serve in this process until unmounted or interrupted.")
@click.option("--cache-dir", type=click.Path(file_okay=False), help="Cache of remote stores [default: <cache dir>/mount].")
@click.option("--cache-size", default="20G", show_default=True, callback=_size_option,
              help="Bound of the on-disk cache (files that are open are never evicted).")
@click.option("--allow-other", is_flag=True, help="Let other users read the mount (needs user_allow_other when not root).")
@click.option("--refresh", default="1s", show_default=True, type=POSITIVE_SECONDS,
              help="How often to look for new runs and versions.")
@click.option("--timeout", default="30s", show_default=True, type=POSITIVE_SECONDS,
              help="How long a read may wait on a store before it fails with EIO.")
@click.option("--status", is_flag=True, help="List the artifactfs mounts of this machine and exit.")
@click.option("--clean-dead", is_flag=True,
              help="Clean up a dead artifactfs mount left at MOUNTPOINT (its daemon was killed), then mount.")
@click.option("--verbose", "-v", is_flag=True, help="Log debug details.")
@click.option("--local-reads", type=click.Choice(["auto", "inline", "thread"]), default="auto", hidden=True)
@click.option("--read-ahead-kb", type=int, default=4096, hidden=True)
@click.option("--log-file", type=click.Path(dir_okay=False),
              help="Where the background daemon logs [default: <data dir>/logs/mount-<mountpoint>.log].")
def mount_command(mountpoint, foreground, cache_dir, cache_size, allow_other, refresh, timeout, status, clean_dead,
                  verbose, local_reads, read_ahead_kb, log_file) -> None:
    """Mount artifacts and pipeline runs read-only at MOUNTPOINT.

    \b
    MOUNTPOINT/artifacts/<name>/<version>/   payload files
    MOUNTPOINT/artifacts/<name>/<version>.json, .../latest -> <newest version>
    MOUNTPOINT/pipelines/<pipeline>/<run>/<step>/<output>/
    """
    daemon = _daemon()

    if status:
        if mountpoint:
            raise click.UsageError(f"--status lists every mount and takes no MOUNTPOINT (got {mountpoint!r})")
        _print_status(daemon.list_mounts())
        return
    if not mountpoint:
        raise click.UsageError("give a MOUNTPOINT (or --status)")
    options = daemon.MountOptions(
        mountpoint=os.path.abspath(mountpoint), cache_dir=cache_dir, cache_size=cache_size,
        allow_other=allow_other, refresh=refresh, timeout=timeout, local_reads=local_reads, read_ahead_kb=read_ahead_kb,
        clean_dead=clean_dead,
    )
    if foreground:
        import logging

        daemon.configure_logging(logging.DEBUG if verbose else logging.INFO)
        daemon.run(options, log_file)
        return
    path = daemon.check_mountpoint(mountpoint, clean_dead)
    log_path = Path(os.path.abspath(log_file)) if log_file else daemon.log_path_for(path)
    argv = [sys.executable, "-m", "artifactfs.cli.mount", str(path), "--foreground",
            "--cache-size", str(cache_size), "--refresh", repr(refresh), "--timeout", repr(timeout),
            "--local-reads", local_reads, "--read-ahead-kb", str(read_ahead_kb), "--log-file", str(log_path)]
    if cache_dir:
        argv += ["--cache-dir", os.path.abspath(cache_dir)]
    if allow_other:
        argv.append("--allow-other")
    if verbose:
        argv.append("--verbose")
    started = time.monotonic()
    try:
        proc = daemon.spawn(argv, path, log_path)
    except (OSError, ConfigError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else exc.message
        raise daemon.MountError(f"cannot write the mount's log file {log_path}: {why}",
                                "pass --log-file FILE in a writable folder (and --cache-dir DIR, where the "
                                "mount keeps its cache; ARTIFACTFS_HOME moves both defaults)") from None
    try:
        daemon.wait_until_mounted(path, proc)
    except daemon.MountError as exc:
        tail = _tail(log_path)
        raise daemon.MountError(exc.message, f"see the log {log_path}" + (f":\n{tail}" if tail else "")) from None
    console.print(f"Mounted artifactfs at [bold]{escape(str(path))}[/] (pid {proc.pid}, "
                  f"{time.monotonic() - started:.1f} s).", markup=True, soft_wrap=True)
    console.print(f"Log: {log_path}", highlight=False, soft_wrap=True)
    console.print(f"Unmount with: artifactfs umount {path}", highlight=False, soft_wrap=True)


def _daemon():
    """The mount's daemon module; without the `mount` extra, an error that says how to install it."""
    try:
        from artifactfs.mount import daemon
    except ImportError as exc:
        raise ArtifactfsError(f"the mount needs packages that are not installed ({exc.name})",
                              "pip install 'artifactfs[mount]' (pyfuse3 compiles from source: first install "
                              "libfuse3-dev, pkg-config and a C compiler, e.g. apt-get install fuse3 libfuse3-dev "
                              "pkg-config gcc python3-dev)") from None
    return daemon


@click.command("umount")
@click.argument("mountpoint", type=click.Path(file_okay=False))
@click.option("--lazy", is_flag=True,
              help="Detach even while processes use the mount; they keep reading until they let go.")
@click.option("--timeout", default="30s", show_default=True, type=POSITIVE_SECONDS,
              help="How long to wait for the mount to go away.")
def umount_command(mountpoint: str, lazy: bool, timeout: float) -> None:
    """Unmount an artifactfs mount (its daemon exits).

    A mount in use is refused, naming the processes that use it, unless
    --lazy is given. A mount whose daemon was killed is cleaned up whatever uses it.
    """
    daemon = _daemon()

    done = daemon.unmount(mountpoint, timeout, lazy=lazy)
    users = "; ".join(str(user) for user in done.users)
    if done.dead:
        pid = f" (pid {done.pid})" if done.pid else ""
        console.print(f"Cleaned up the dead mount at {done.path}: its daemon{pid} was gone.",
                      highlight=False, soft_wrap=True)
        if users:
            console.print(f"Still inside it, they get errors until they leave: {users}", highlight=False,
                          soft_wrap=True)
    elif done.users:
        console.print(f"Detached {done.path} lazily; its daemon (pid {done.pid}) serves these until they let go, "
                      f"then exits: {users}", highlight=False, soft_wrap=True)
    else:
        console.print(f"Unmounted {done.path}.", highlight=False, soft_wrap=True)


def _print_status(mounts) -> None:
    if not mounts:
        console.print("No artifactfs mounts.")
        return
    rows = [
        (m.mountpoint, m.pid or "-", time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(m.started)) if m.started else "-",
         m.log_path or "-")
        for m in mounts
    ]
    console.print(table("artifactfs mounts", ["mountpoint", "pid", "since", "log"], rows))


def _tail(path, lines: int = 15) -> str:
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:]).rstrip()
    except OSError:
        return ""


def _daemon_main() -> None:
    """``python -m artifactfs.cli.mount``: how the background daemon is started.
    Once unmounted and cleaned up, it leaves without tearing down every
    imported module (a second or more of nothing, which ``umount`` waits for)."""
    import logging

    code = 0
    try:
        mount_command.main(prog_name="artifactfs mount", standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        code = exc.exit_code
    except ArtifactfsError as exc:
        error_line(exc.message, exc.hint)
        code = 1
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


__all__ = ["mount_command", "parse_size", "umount_command"]

if __name__ == "__main__":
    _daemon_main()
