"""``artifactfs watch DIR --name NAME``: register every new checkpoint in DIR.

Wires the two layers together: ``artifactfs.watch.Watcher`` decides when a
checkpoint is complete, ``artifactfs.checkpoints.CheckpointRegistrar``
registers it through the artifact API.
"""

from __future__ import annotations

import logging
import signal
import threading

import click

from artifactfs.checkpoints import CheckpointRegistrar
from artifactfs.cli.output import console, err_console, escape
from artifactfs.cli.params import SECONDS
from artifactfs.watch import Ledger, Watcher

class _ConsoleHandler(logging.Handler):
    """The watcher's log lines on the console: info plain, problems in colour."""

    def emit(self, record: logging.LogRecord) -> None:
        message = self.format(record)
        if record.levelno >= logging.ERROR:
            err_console.print(f"[bold red]error:[/] {escape(message)}", markup=True, soft_wrap=True)
        elif record.levelno >= logging.WARNING:
            err_console.print(f"[yellow]warning:[/] {escape(message)}", markup=True, soft_wrap=True)
        else:
            console.print(message, highlight=False, soft_wrap=True)


def _console_logging() -> None:
    logger = logging.getLogger("artifactfs.watch")
    if not any(isinstance(h, _ConsoleHandler) for h in logger.handlers):
        logger.addHandler(_ConsoleHandler())
    logger.setLevel(logging.INFO)


@click.command("watch")
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option("--name", "-n", required=True, help="Artifact every checkpoint becomes a version of.")
@click.option("--pattern", "-p", default="*", show_default=True,
              help="Shell pattern a checkpoint's name must match (e.g. '*.ckpt').")
@click.option("--settle", default="5s", show_default=True, type=SECONDS,
              help="How long a checkpoint whose writer's close was not seen (found at start, lost events) "
                   "must be quiet. Never enough alone: a checkpoint is complete when no process has it open "
                   "for writing and its format checks pass.")
@click.option("--folder-complete", "folder_complete", default="closed", show_default=True, metavar="closed|FILE",
              help="When a checkpoint folder is complete: 'closed' (every file in it closed by its writer and "
                   "quiet for --settle), or the name of a file the trainer writes last into each folder "
                   "(a marker such as COMPLETE, or the framework's own last file). Use a marker when the "
                   "trainer pauses between files longer than --settle.")
@click.option("--copy", is_flag=True,
              help="Copy each checkpoint into the active store (needed when FOLDER is in no store).")
@click.option("--store", help="Store to copy into (with --copy).")
@click.option("--tag", "-t", "tags", multiple=True, help="Tag put on every version (repeatable).")
@click.option("--once", is_flag=True, help="Register what is complete now and exit, instead of watching.")
def watch_command(folder: str, name: str, pattern: str, settle: float, folder_complete: str, copy: bool,
                  store: str | None, tags: tuple[str, ...], once: bool) -> None:
    """Register each new checkpoint file or folder directly under FOLDER as the
    next version of --name, once it is complete: its writer closed it and its
    format checks pass (quiet time alone never is). A checkpoint that changes
    after it was registered (last.ckpt rewritten, best.ckpt replaced) is
    registered again, as a copy. Restarting registers nothing twice and
    catches up on what appeared or changed meanwhile. Stop with Ctrl-C."""
    registrar = CheckpointRegistrar(name, copy=copy, tags=tags, store=store, folder_complete=folder_complete)
    registrar.check_folder(folder)
    watcher = Watcher(folder, registrar, Ledger(name), pattern=pattern, settle=settle, warn_changes=not copy)
    _console_logging()
    if once:
        watcher.catch_up()
    else:
        how = "copying into the store" if copy else "adopting in place"
        done = "every file closed" if folder_complete == "closed" else f"a {folder_complete} file in it"
        console.print(f"Watching {watcher.folder} for {pattern!r} ({how}, settle {settle:g} s, a folder is "
                      f"complete with {done}); Ctrl-C stops.", highlight=False)
        _stop_on_signals(watcher)
        watcher.run()
    stats = watcher.stats
    incomplete = f", {len(stats.incomplete)} incomplete (not registered)" if stats.incomplete else ""
    console.print(f"{len(stats.registered)} registered, {len(stats.skipped)} already registered, "
                  f"{len(stats.failed)} failed{incomplete}.", highlight=False)
    if stats.failed:
        raise click.exceptions.Exit(1)


def _stop_on_signals(watcher: Watcher) -> None:
    """SIGINT/SIGTERM finish the registration under way, then stop."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: watcher.stop())
