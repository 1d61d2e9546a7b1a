"""The ``artifactfs`` command: parses, prints, and calls the layers below.

Every error reaches the user as one readable line (plus a hint); ``--debug``
shows the traceback.
"""

from __future__ import annotations

import sys
import traceback

import click

from artifactfs.api import init
from artifactfs.cli.artifact import artifact_group
from artifactfs.cli.gc import fsck_command, gc_group
from artifactfs.cli.lineage import lineage_command
from artifactfs.cli.migrate import migrate_command
from artifactfs.cli.mount import mount_command, umount_command
from artifactfs.cli.output import console, error_line
from artifactfs.cli.runs import pipeline_group, run_group
from artifactfs.cli.store import store_group
from artifactfs.cli.ui import ui_command
from artifactfs.cli.watch import watch_command
from artifactfs.errors import ArtifactfsError
from artifactfs.settings import get_settings
from artifactfs.stores.secrets import install_log_redaction, mask_url, redact


class ArtifactfsGroup(click.Group):
    """Turns exceptions into one line and a non-zero exit code."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except Exception as exc:
            if ctx.find_root().params.get("debug"):
                raise
            if isinstance(exc, ArtifactfsError):
                error_line(exc.message, exc.hint)
            else:
                error_line(f"{type(exc).__name__}: {exc}", "run again with --debug for the traceback")
            ctx.exit(1)


@click.group(cls=ArtifactfsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.version_option(package_name="artifactfs")
def cli(debug: bool) -> None:
    """Keep, find and read ML pipeline artifacts."""
    install_log_redaction()  # no log line of any command shows a password


@cli.command("init")
def init_command() -> None:
    """Create the index and the `default` local store (safe to run again)."""
    store = init()
    settings = get_settings()
    console.print(f"index:         {mask_url(settings.index_url)}", highlight=False)
    console.print(f"default store: {store.path}", highlight=False)
    console.print(f"active store:  {settings.active_store}", highlight=False)


for command in (
    store_group, artifact_group, pipeline_group, run_group, watch_command, migrate_command,
    lineage_command, mount_command, umount_command, gc_group, fsck_command, ui_command,
):
    cli.add_command(command)


def main() -> None:
    sys.excepthook = _print_redacted  # --debug tracebacks mask secrets too
    sys.exit(cli.main(prog_name="artifactfs", standalone_mode=True))


def _print_redacted(kind, value, tb) -> None:
    sys.stderr.write(redact("".join(traceback.format_exception(kind, value, tb))))

