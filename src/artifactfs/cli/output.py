"""Console output shared by the CLI commands: one rich console, tables, and
errors as one readable line."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table

console = Console()
err_console = Console(stderr=True)


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> Table:
    result = Table(title=title, header_style="bold", title_justify="left")
    for i, column in enumerate(columns):
        # The first column names the row: keep it whole, let the others wrap.
        result.add_column(column, no_wrap=i == 0, overflow="fold")
    for row in rows:
        result.add_row(*("" if cell is None else str(cell) for cell in row))
    return result


def human_bytes(n: int | float | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def error_line(message: str, hint: str | None = None) -> None:
    # Messages are plain text: "pip install 'artifactfs[s3]'" must not lose "[s3]" as markup.
    err_console.print(f"[bold red]Error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    if hint:
        err_console.print(f"[dim]Hint: {escape(hint)}[/]", highlight=False, soft_wrap=True)
