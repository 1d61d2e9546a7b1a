"""One duration grammar (``artifactfs.durations``) for every flag and the
pruner's policy file: the same text means the same time everywhere, and
every help names the type DURATION."""

import datetime as dt

import click
import pytest
from click.testing import CliRunner

from artifactfs.cli.main import cli
from artifactfs.cli.params import Duration
from artifactfs.durations import DurationError, format_duration, parse_duration
from artifactfs.gc.policy import PolicyError, policy_from_mapping

#: Every flag that takes a duration, and whether it needs more than zero.
#: A new duration flag must be added here (test_every_duration_flag_is_listed finds it).
FLAGS = {
    ("mount", "--refresh"): True,
    ("mount", "--timeout"): True,
    ("umount", "--timeout"): True,
    ("watch", "--settle"): False,
    ("run prune", "--older-than"): False,
    ("fsck", "--grace"): False,
    ("fsck", "--stuck-after"): False,
    ("gc daemon", "--every"): True,
    ("gc daemon", "--lease-ttl"): True,
    **{(command, flag): False
       for command in ("gc", "gc daemon", "artifact prune")
       for flag in ("--grace", "--orphan-grace", "--sweep-delay", "--runs-older-than")},
}

#: The decided cases: text -> seconds, or None where it is refused (everywhere).
CASES = {
    "500ms": 0.5, "1d": 86400, "1h30m": 5400, ".5": 0.5, "0": 0, "90": 90, "1.5h": 5400, "2w": 14 * 86400,
    "1H": None, "30m1h": None, "1m1m": None, "10 m": None, "-1s": None, "": None, "1x": None, "h": None,
}

#: Option names that smell of a time: each must be a DURATION.
TIME_WORDS = ("grace", "delay", "older", "every", "timeout", "refresh", "settle", "ttl", "after", "interval")
#: ... except these, which are no duration.
NOT_DURATIONS = {("artifact list", "--after"): "a name", ("watch", "--folder-complete"): "closed or a file name"}


def _commands(group: click.Group, prefix: str = ""):
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        path = f"{prefix} {name}".strip()
        if isinstance(command, click.Group):
            yield from _commands(command, path)
        yield path, command


def _options():
    for path, command in _commands(cli):
        for param in command.params:
            if isinstance(param, click.Option):
                yield path, max(param.opts, key=len), param, command


def _option(path: str, flag: str):
    for found_path, found_flag, param, command in _options():
        if (found_path, found_flag) == (path, flag):
            return param, command
    raise AssertionError(f"no option {flag} on `artifactfs {path}`")


def test_every_duration_flag_is_listed():
    found = {(path, flag) for path, flag, param, _ in _options() if isinstance(param.type, Duration)}
    assert found == set(FLAGS)
    timely = {(path, flag) for path, flag, param, _ in _options()
              if any(word in flag for word in TIME_WORDS) and not param.is_flag and (path, flag) not in NOT_DURATIONS}
    assert timely <= found, f"time-like flags not typed DURATION: {timely - found}"


@pytest.mark.parametrize("path, flag", sorted(FLAGS))
def test_every_duration_flag_reads_the_one_grammar(path, flag):
    param, command = _option(path, flag)
    ctx = click.Context(command, info_name=path)
    assert param.hidden or f"{flag} DURATION" in command.get_help(ctx)
    for text, seconds in CASES.items():
        if seconds is None or (seconds == 0 and FLAGS[path, flag]):
            with pytest.raises(click.BadParameter) as caught:
                param.type_cast_value(ctx, text)
            assert getattr(caught.value, "hint", None), (flag, text)  # the fix is named
            continue
        value = param.type_cast_value(ctx, text)
        got = value.total_seconds() if isinstance(value, dt.timedelta) else value
        assert got == pytest.approx(seconds), (flag, text)


@pytest.mark.parametrize("key", ["grace", "orphan_grace", "sweep_delay", "runs_older_than"])
def test_the_policy_file_reads_the_same_grammar(key):
    for text, seconds in CASES.items():
        if seconds is None:
            with pytest.raises(PolicyError, match=key):
                policy_from_mapping({key: text})
        else:
            assert getattr(policy_from_mapping({key: text}), key).total_seconds() == pytest.approx(seconds)


@pytest.mark.parametrize("text, seconds", [("24h", 86400), ("10m", 600), ("30d", 2592000), ("0", 0), ("90s", 90),
                                           ("1h30m", 5400), ("2w", 1209600), ("15", 15), ("1.5h", 5400),
                                           (" 5s ", 5), ("1.", 1), (".5h", 1800), ("1d12h", 129600)])
def test_parse_duration(text, seconds):
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "h", "10x", "-1h", "1h-", "abc", "10 m", "1h 30m", "1M", "ms", "1s1h", "5.s.", "."])
def test_parse_duration_refuses(text):
    with pytest.raises(DurationError):
        parse_duration(text)


def test_an_upper_case_unit_is_refused_with_the_fix():
    with pytest.raises(DurationError, match="lower case") as caught:
        parse_duration("1H")
    assert "'1h'" in caught.value.hint


def test_a_refused_duration_on_the_command_line_is_one_line_with_a_hint():
    result = CliRunner().invoke(cli, ["run", "prune", "--older-than", "1H", "--dry-run"])
    assert result.exit_code == 2
    assert "--older-than" in result.output and "lower case" in result.output and "'1h'" in result.output


@pytest.mark.parametrize("text", ["24h", "10m", "0", "90s", "14d", "1h30m", "500ms", "2w"])
def test_format_reads_back(text):
    assert parse_duration(format_duration(parse_duration(text))) == parse_duration(text)


def test_format_is_the_shortest():
    assert [format_duration(parse_duration(t)) for t in ("24h", "10m", "0", "90s", "14d", "0.5")] == \
        ["1d", "10m", "0", "90s", "2w", "500ms"]
