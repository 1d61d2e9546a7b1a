"""The ``artifactfs`` command: parses, prints, and calls the layers below.

Every error reaches the user as one readable line (plus a hint), usage
errors included; ``--debug`` shows the traceback. Subcommands are imported
only when they run (``cli.lazy``), so ``--help`` and ``--version`` start in
a few tens of milliseconds.
"""

from __future__ import annotations

import gc
import logging
import os
import sys
import traceback

import click

from artifactfs import __version__
from artifactfs.cli.lazy import LazyGroup, usage_error

# name -> (module:attribute, its one-line help); tests/test_cli.py checks both.
COMMANDS = {
    "store": ("artifactfs.cli.store:store_group", "Manage artifact stores (local folders, S3, GCS, Azure, plugins)."),
    "artifact": ("artifactfs.cli.artifact:artifact_group", "Inspect and manage artifacts and their versions."),
    "pipeline": ("artifactfs.cli.runs:pipeline_group", "Pipelines that have run."),
    "run": ("artifactfs.cli.runs:run_group", "Pipeline runs: list, show, delete."),
    "watch": ("artifactfs.cli.watch:watch_command", "Register each new checkpoint file or folder directly under "
              "FOLDER as the next version of --name, once it is complete: its writer closed it and its format "
              "checks pass (quiet time alone never is)."),
    "migrate": ("artifactfs.cli.migrate:migrate_command", "Copy versions' payloads into store --to, verify sizes and "
                "digests against their manifests, then re-point each version in one transaction."),
    "lineage": ("artifactfs.cli.lineage:lineage_command",
                "Draw the lineage of a version: artifacts and the step runs that made or read them."),
    "mount": ("artifactfs.cli.mount:mount_command", "Mount artifacts and pipeline runs read-only at MOUNTPOINT."),
    "umount": ("artifactfs.cli.mount:umount_command", "Unmount an artifactfs mount (its daemon exits)."),
    "gc": ("artifactfs.cli.gc:gc_group", "Remove artifact versions nothing references, and orphan payloads."),
    "fsck": ("artifactfs.cli.gc:fsck_command",
             "Check that the index and the stores agree; report, and with --repair fix what is safe."),
    "info": ("artifactfs.cli.info:info_command", "Show the index, home, config and stores in use, and what chose each."),
    "ui": ("artifactfs.cli.ui:ui_command",
           "Serve a read-only web view of runs, artifacts and lineage, with a JSON API under /api/v1/."),
}


class ArtifactfsGroup(LazyGroup):
    """Turns every exception, usage errors included, into one line and a
    non-zero exit code (2 for usage errors, as click has it, else 1)."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        args = _debug_first(sys.argv[1:] if args is None else list(args))
        completing = complete_var or f"_{(prog_name or 'artifactfs').replace('-', '_').upper()}_COMPLETE"
        if not args and completing not in os.environ:  # plain `artifactfs`: the help, once, and success
            with self.make_context(prog_name or "artifactfs", ["--help"], resilient_parsing=True) as ctx:
                click.echo(ctx.get_help())
            code = 0
            if standalone_mode:
                sys.exit(code)
            return code
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as exc:
            code = _report(*usage_error(exc, self._command_path(args)), code=exc.exit_code)
        except click.ClickException as exc:
            code = _report(exc.format_message(), None, code=exc.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            code = 1
        if not isinstance(code, int):
            code = 0  # a command's return value is not an exit code
        if standalone_mode:
            sys.exit(code)
        return code

    def _command_path(self, args: list[str]) -> str:
        """``artifactfs gc daemon`` for the arguments ``gc daemon --grace``:
        the deepest command the leading names reach."""
        path = ["artifactfs"]
        group: click.Command = self
        for arg in args:
            if arg.startswith("-"):
                continue
            command = group.get_command(click.Context(group), arg) if isinstance(group, click.Group) else None
            if command is None:
                break
            path.append(arg)
            group = command
        return " ".join(path)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except Exception as exc:
            if ctx.find_root().params.get("debug"):
                raise
            from artifactfs.errors import ArtifactfsError

            if isinstance(exc, ArtifactfsError):
                _report(exc.message, exc.hint, code=1)
            else:
                _report(f"{type(exc).__name__}: {exc}", "run again with --debug for the traceback", code=1)
            ctx.exit(1)


def _close_index() -> None:
    """Close the index's connections as the command ends, not at exit: the
    last to close folds SQLite's write-ahead log back into the index file,
    so ``index.db`` alone holds every commit (a copy of it is whole; a full
    device can still open it read only: ``index.db``)."""
    if "artifactfs.index.db" in sys.modules:  # never imported by --help or --version
        from artifactfs.index.db import reset_index_cache

        reset_index_cache()


def _debug_first(args: list[str]) -> list[str]:
    """``--debug`` is accepted anywhere on the line (``artifactfs artifact
    show x --debug``): it moves to the front, where the group reads it.
    Arguments after ``--`` are left alone."""
    end = args.index("--") if "--" in args else len(args)
    if "--debug" not in args[:end]:
        return args
    return ["--debug", *(a for a in args[:end] if a != "--debug"), *args[end:]]


def _report(message: str, hint: str | None, code: int) -> int:
    from artifactfs.cli.output import error_line  # rich: only when there is something to print

    error_line(message, hint)
    return code


@click.group("artifactfs", cls=ArtifactfsGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.version_option(__version__, prog_name="artifactfs")
def cli(debug: bool) -> None:
    """Keep, find and read ML pipeline artifacts."""
    from artifactfs.stores.secrets import install_log_redaction

    install_log_redaction()  # no log line of any command shows a password
    # psycopg warns "error ignored terminating <Pipeline ...>" about the error the
    # command reports itself, in words (index.health, index.db): once is enough.
    logging.getLogger("psycopg").setLevel(logging.ERROR)


@cli.command("init")
@click.option("--index-url", metavar="URL",
              help="Use this index from now on (any SQLAlchemy URL, e.g. postgresql+psycopg://me@db.team/artifacts): "
                   "kept in the config file, its password in the owner-only credentials file. "
                   "ARTIFACTFS_INDEX_URL, when set, still wins.")
def init_command(index_url: str | None) -> None:
    """Create the index and this machine's default local store (safe to run
    again): `default` on the index's first machine, `default-<machine id>` on
    every other one (and on another home of the same machine)."""
    from artifactfs.api import init
    from artifactfs.api.stores import active_store_name
    from artifactfs.cli.output import console
    from artifactfs.settings import get_settings, save_index_url
    from artifactfs.stores.secrets import mask_url

    if index_url:
        _check_index_url(index_url)
        save_index_url(index_url)
    store = init()
    for label, value in (("index", mask_url(get_settings().index_url)), ("default store", f"{store.name} ({store.path})"),
                         ("active store", active_store_name())):
        console.print(f"{label + ':':<15}{value}", highlight=False, soft_wrap=True)


def _check_index_url(url: str) -> None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        make_url(url)
    except ArgumentError:
        raise click.BadParameter("not a SQLAlchemy URL", param_hint="--index-url") from None


# Collect young objects after this many allocations, not CPython's 700 (see main).
YOUNG_COLLECTION_THRESHOLD = 50_000


def main() -> None:
    # A command runs for a fraction of a second, and most of what it allocates -
    # the modules, classes and functions of click, SQLAlchemy and rich - lives
    # until it exits. The collector's passes over those objects, hundreds while
    # they are imported and a full one at exit, were a fifth of `artifactfs
    # artifact list` (bench/cli_startup.py). Rarer young passes (a long-running
    # command such as `watch` or `ui` still collects, in larger batches) and a
    # frozen heap at exit skip them. Nothing may wait for that last pass
    # (Python does not promise finalizers at exit): every command commits and
    # fsyncs what it writes before it returns, and the index is closed as it
    # returns (`_close_index`). Only the `artifactfs` program's own process
    # does this: `cli` called inside another (CliRunner, a notebook) leaves
    # that process's collector and index as they were.
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD)
    sys.excepthook = _print_redacted  # --debug tracebacks mask secrets too
    try:
        cli.main(prog_name="artifactfs")
    finally:  # the process exits now (click ends it with SystemExit)
        _close_index()
        gc.freeze()  # the exit's pass over every object would find nothing left to free


def _print_redacted(kind, value, tb) -> None:
    from artifactfs.stores.secrets import redact

    sys.stderr.write(redact("".join(traceback.format_exception(kind, value, tb))))


if __name__ == "__main__":
    main()
