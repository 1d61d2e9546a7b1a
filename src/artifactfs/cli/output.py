"""Console output shared by the CLI commands: one rich console, tables, and
errors as one readable line."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence

import click
from rich.console import Console
from rich.markup import escape  # the lines that style a word escape what they embed with it
from rich.table import Table
from rich.text import Text

from artifactfs.units import human_bytes  # noqa: F401 - the commands import it from here

# What the index holds (names, versions, tags, metadata, paths, messages) is
# printed as it is: markup, emoji codes and highlighting are off unless a line
# asks for them (``markup=True``, escaping what it embeds), so ``run:fire:1``,
# ``model[v2]`` or a value ``[/b]`` print as they are instead of turning into an
# emoji, a style or a MarkupError. (Also: rich's emoji table, 20 ms, and its
# highlighter's patterns are never loaded.)
def plain_console(**options) -> Console:
    """A console that prints what it is given as it is (see above)."""
    return Console(emoji=False, markup=False, highlight=False, **options)


console = plain_console()
err_console = plain_console(stderr=True)


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> Table:
    """A table whose title and cells are plain text (a cell may also be a
    :class:`rich.text.Text` carrying its own style, e.g. a run's status)."""
    result = Table(title=None if title is None else Text(title), header_style="bold", title_justify="left")
    for i, column in enumerate(columns):
        # The first column names the row: keep it whole, let the others wrap.
        result.add_column(column, no_wrap=i == 0, overflow="fold")
    for row in rows:
        result.add_row(*(cell if isinstance(cell, Text) else Text("" if cell is None else str(cell)) for cell in row))
    return result


def error_line(message: str, hint: str | None = None) -> None:
    """One error (and its hint), passwords in URLs and other secrets masked."""
    from artifactfs.stores.secrets import redact  # (logging, urllib) only when there is an error to print

    # Messages are plain text: "pip install 'artifactfs[s3]'" must not lose "[s3]" as markup.
    err_console.print(f"[bold red]Error:[/] {escape(redact(message))}", markup=True, soft_wrap=True)
    if hint:
        err_console.print(f"[dim]Hint: {escape(redact(hint))}[/]", markup=True, soft_wrap=True)


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
