"""README.md runs as written: every ```bash and ```python block is run, in
order, in one fresh home folder, as a reader would run them one after the
other (the mount ones mount for real), and then all of them once more in the
same home. A block preceded by
``<!-- not run: REASON -->`` is skipped with that reason and counted; one
preceded by ``<!-- serves: URL ... -->`` holds servers: each line runs until
URL answers, then is stopped. The
command table names every command and option, and every link stays inside
the repository."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import click
import pytest

from artifactfs.cli.main import cli

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
RUN_LANGUAGES = {"bash", "python"}
LANGUAGES = RUN_LANGUAGES | {"text"}  # text: tables, trees and sample output, not commands
NOT_RUN = re.compile(r"^<!--\s*not run:\s*(?P<reason>.+?)\s*-->$")
SERVES = re.compile(r"^<!--\s*serves:\s*(?P<url>\S+)")
FENCE = re.compile(r"^```(?P<language>\S*)\s*$")
BLOCK_TIMEOUT = 300


@dataclass(frozen=True)
class Block:
    line: int
    language: str
    code: str
    not_run: str | None  # the reason, when marked
    serves: str | None = None  # the address its servers answer on

    @property
    def id(self) -> str:
        return f"line{self.line}-{self.language}"


def readme_blocks(text: str) -> list[Block]:
    lines = text.splitlines()
    blocks, i = [], 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        before = next((lines[j].strip() for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        marker, serves = NOT_RUN.match(before), SERVES.match(before)
        blocks.append(Block(i + 1, fence["language"], "\n".join(lines[i + 1:end]) + "\n",
                            marker["reason"] if marker else None, serves["url"] if serves else None))
        i = end + 1
    return blocks


BLOCKS = readme_blocks(README.read_text())
RUNNABLE = [b for b in BLOCKS if b.language in RUN_LANGUAGES]


@pytest.fixture(scope="module")
def reader(tmp_path_factory):
    """A new user's machine: an empty home folder (so artifactfs uses its
    default folders under ~), a working folder, and this suite's artifactfs
    and python first on PATH."""
    root = tmp_path_factory.mktemp("readme")
    home, work = root / "home", root / "work"
    home.mkdir()
    work.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ARTIFACTFS_", "XDG_")) and k not in ("DEMO_HOME", "VIRTUAL_ENV")}
    env.update(HOME=str(home), PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
               DEMO_HOME=str(root / "demo"), COLUMNS="200", GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT="false")
    env["DEMO_SKIP_INSTALL"] = "1"  # demo.sh: this suite's environment, built by the same scripts/venv.sh
    yield {"home": home, "work": work, "env": env, "failed": []}
    _unmount_below(root)


def _unmount_below(root: Path) -> None:
    """Never leave a mount behind, even when a block failed half-way."""
    with open("/proc/mounts") as f:
        points = [line.split()[1] for line in f]
    for point in points:
        if point.startswith(str(root)):
            subprocess.run(["fusermount3", "-u", "-z", point], check=False)


# Every block runs twice, in the same home: a reader reruns a block, or the
# whole page, and nothing may fail because it already ran (issue 22, item 9).
ROUNDS = [(round_, block) for round_ in (1, 2) for block in RUNNABLE]


@pytest.mark.parametrize("round_, block", ROUNDS, ids=[f"round{r}-{b.id}" for r, b in ROUNDS])
def test_block(round_: int, block: Block, reader):
    if block.not_run:
        pytest.skip(f"README marks it not run: {block.not_run}")
    if reader["failed"]:
        pytest.skip(f"an earlier block failed (README line {reader['failed'][0]}); this one builds on it")
    # Set-up blocks run scripts of the clone, from the clone's folder (as the README says);
    # the others in the reader's own working folder.
    cwd = REPO if "scripts/" in block.code else reader["work"]
    if block.serves:
        for line in filter(None, (ln.split("#")[0].strip() for ln in block.code.splitlines())):
            _serve_until_it_answers(line, block.serves, cwd, reader["env"])
        return
    if block.language == "bash":
        argv = ["bash", "-euo", "pipefail", "-c", block.code]
    else:
        script = reader["work"] / f"readme_line{block.line}.py"
        script.write_text(block.code)
        argv = [sys.executable, str(script)]
    result = subprocess.run(argv, cwd=cwd, env=reader["env"], capture_output=True, text=True,
                            timeout=BLOCK_TIMEOUT, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        reader["failed"].append(block.line)
    assert result.returncode == 0, (f"README line {block.line} ({block.language}) exited {result.returncode}\n"
                                    f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}")
    assert "Traceback" not in result.stderr, result.stderr


def _serve_until_it_answers(command: str, url: str, cwd: Path, env: dict) -> None:
    server = subprocess.Popen(["bash", "-c", f"exec {command}"], cwd=cwd, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except urllib.error.HTTPError:
                break  # an answer (401 without the token is one)
            except OSError:
                assert server.poll() is None, f"{command!r} exited: {server.stdout.read()}"
                assert time.monotonic() < deadline, f"{command!r} never answered at {url}"
                time.sleep(0.2)  # polling a server that is starting: nothing to force
    finally:
        os.killpg(server.pid, signal.SIGINT)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def test_every_block_is_run_or_says_why():
    unknown = [(b.line, b.language) for b in BLOCKS if b.language not in LANGUAGES]
    assert not unknown, f"fenced blocks need a language ({', '.join(sorted(LANGUAGES))}): {unknown}"
    skipped = [b for b in RUNNABLE if b.not_run]
    assert all(b.not_run for b in skipped)
    run = len(RUNNABLE) - len(skipped)
    print(f"README: {run} blocks run, {len(skipped)} not run: " + "; ".join(f"line {b.line}: {b.not_run}"
                                                                          for b in skipped))
    assert run > 2 * len(skipped), "most of the README must run"


def test_readme_examples_read_what_the_mount_shows():
    """The walk-through copies `latest` with cp -rL (cp -r copies the link, which dangles)."""
    text = README.read_text()
    assert "cp -r ~/artifacts/artifacts/classifier/latest " not in text
    assert "cp -rL ~/artifacts/artifacts/classifier/latest ./restored" in text


def _leaf_commands(group: click.Group, path=()):
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if isinstance(command, click.Group):
            if command.invoke_without_command:
                yield (*path, name), command
            yield from _leaf_commands(command, (*path, name))
        else:
            yield (*path, name), command


def _table_lines(text: str) -> dict[str, str]:
    """The command table: 'artifactfs <path>' -> its text (continuation lines joined)."""
    table = next(b.code for b in readme_blocks(text) if b.language == "text" and "artifactfs init" in b.code)
    entries, current = {}, None
    for line in table.splitlines():
        if line.startswith("artifactfs "):
            current = line
            entries[line] = line
        elif current is not None and line.startswith(" "):
            entries[current] += " " + line.strip()
    return entries


def test_command_table_lists_every_command_and_option():
    entries = _table_lines(README.read_text())
    missing = []
    for path, command in _leaf_commands(cli):
        prefix = "artifactfs " + " ".join(path)
        lines = [text for line, text in entries.items() if line == prefix or line.startswith(prefix + " ")
                 and not any(line.startswith(f"{prefix} {sub}") for sub in getattr(command, "commands", {}))]
        if not lines:
            missing.append(prefix)
            continue
        text = " ".join(lines)
        same = re.search(r"same as (artifactfs [a-z -]+)$", text)
        if same:
            assert same[1].strip() in entries or any(k.startswith(same[1].strip()) for k in entries), text
            continue
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                if not any(re.search(rf"(?<![\w-]){re.escape(opt)}(?![\w-])", text)
                           for opt in param.opts + param.secondary_opts):
                    missing.append(f"{prefix} {max(param.opts, key=len)}")
    assert not missing, f"the README's command table lacks: {missing}"


def test_links_stay_inside_the_repository():
    text = README.read_text()
    assert not re.search(r"(?<![.\w])\.\./", text), "the README points outside the repository"
    for target in re.findall(r"\]\(([^)#\s]+)\)", text):
        if "://" not in target:
            assert (REPO / target).exists(), f"the README links to {target}, which is not in the repository"
    assert (REPO / "docs" / "DESIGN.md").is_file()
