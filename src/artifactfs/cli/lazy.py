"""Click groups that import a subcommand's module only when that subcommand
runs, and the one place where usage errors become one line and a hint.

``artifactfs --help`` and ``--version`` thus import click and nothing of
the layers below (SQLAlchemy, fsspec, the API): a group lists its lazy
subcommands from a table of ``name -> (module:attribute, one-line help)``.
tests/test_cli.py checks that every line of that table matches the help of
the command it names.
"""

from __future__ import annotations

import importlib

import click


class LazyGroup(click.Group):
    """A group whose subcommands in ``lazy`` are imported on first use."""

    def __init__(self, *args, lazy: dict[str, tuple[str, str]] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.lazy))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.commands and name in self.lazy:
            module, _, attribute = self.lazy[name][0].partition(":")
            self.add_command(getattr(importlib.import_module(module), attribute), name)
        return super().get_command(ctx, name)

    def resolve_command(self, ctx: click.Context, args: list[str]):
        """click's, plus the closest command name for a typo."""
        name = args[0] if args else ""
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            from artifactfs.errors import closest_name

            suggestion = closest_name(name, self.list_commands(ctx))
            if suggestion:
                raise click.UsageError(f"no command {name!r}; did you mean {suggestion!r}?", ctx)
        return super().resolve_command(ctx, args)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Like click's, but a lazy subcommand's help comes from the table (no import)."""
        rows = []
        for name in self.list_commands(ctx):
            if name in self.commands:
                command = self.commands[name]
                if command.hidden:
                    continue
                rows.append((name, command.get_short_help_str(formatter.width - 6 - len(name))))
            else:
                rows.append((name, self.lazy[name][1]))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def usage_error(exc: click.UsageError, command_path: str = "artifactfs") -> tuple[str, str]:
    """``(message, hint)`` for a usage error: what is wrong with which option,
    and the command's usage line (or the hint the parameter type gave).
    ``command_path``: the command the arguments name, for an error click
    raised without a context (an option missing its value)."""
    ctx = exc.ctx
    message = exc.format_message()
    if isinstance(exc, click.BadParameter) and not isinstance(exc, click.MissingParameter):
        name = _param_name(exc)
        message = f"{name}: {exc.message}" if name else exc.message
        hint = getattr(exc, "hint", None)
        if hint:
            return message, hint
        if ctx is not None and name:
            return message, f"see `{ctx.command_path} --help` for {name}"
    if ctx is None:
        return message, f"see `{command_path} --help`"
    usage = " ".join([ctx.command_path, *ctx.command.collect_usage_pieces(ctx)])
    return message, f"usage: {usage} (more with `{ctx.command_path} --help`)"


def _param_name(exc: click.BadParameter) -> str | None:
    if isinstance(exc.param_hint, str):
        return exc.param_hint
    if isinstance(exc.param, click.Option):
        return max(exc.param.opts, key=len)  # --grace rather than -g
    return exc.param.human_readable_name if exc.param is not None else None


class ParamError(click.BadParameter):
    """A bad option value with a hint of what a good one looks like."""

    def __init__(self, message: str, hint: str | None = None, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.hint = hint
