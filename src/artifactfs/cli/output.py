"""Console output shared by the CLI commands: one rich console, tables, and
errors as one readable line."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from artifactfs.units import human_bytes  # noqa: F401 - the commands import it from here

# No emoji codes: a name such as ``run:fire:1`` prints as it is, and rich's
# table of emoji names (20 ms) is never loaded.
console = Console(emoji=False)
err_console = Console(stderr=True, emoji=False)


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> Table:
    result = Table(title=title, header_style="bold", title_justify="left")
    for i, column in enumerate(columns):
        # The first column names the row: keep it whole, let the others wrap.
        result.add_column(column, no_wrap=i == 0, overflow="fold")
    for row in rows:
        result.add_row(*("" if cell is None else str(cell) for cell in row))
    return result


def error_line(message: str, hint: str | None = None) -> None:
    """One error (and its hint), passwords in URLs and other secrets masked."""
    from artifactfs.stores.secrets import redact  # (logging, urllib) only when there is an error to print

    # Messages are plain text: "pip install 'artifactfs[s3]'" must not lose "[s3]" as markup.
    err_console.print(f"[bold red]Error:[/] {escape(redact(message))}", highlight=False, soft_wrap=True)
    if hint:
        err_console.print(f"[dim]Hint: {escape(redact(hint))}[/]", highlight=False, soft_wrap=True)


def confirm(question: str, dry_run: bool = True) -> None:
    """Ask before deleting; a "no" aborts. Without a terminal (cron, CI, a
    pipe that ends), say how to go on instead of failing on end of input."""
    try:
        yes = click.confirm(question)
    except click.Abort:
        if sys.stdin is None or not sys.stdin.isatty():
            from artifactfs.errors import ArtifactfsError

            hint = "pass -y to go ahead without asking" + (", or --dry-run to only see what would go" if dry_run else "")
            raise ArtifactfsError(f"cannot ask {question!r}: there is no terminal to answer on", hint) from None
        raise
    if not yes:
        raise click.Abort()
