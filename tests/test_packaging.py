"""What installing artifactfs into one's own environment needs (README,
"Install"): only the `mount` extra compiles anything (pyfuse3 ships no
wheel), so an install without it needs no compiler, and artifactfs without
pyfuse3 and trio does everything but mount, which says how to install it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
COMPILED = {"pyfuse3"}  # built from source on install: needs libfuse3-dev, pkg-config and a C compiler
MOUNT_ONLY = {"pyfuse3", "trio"}  # what the mount needs and nothing else may import


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower()


def _project() -> dict:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def test_only_the_mount_extra_needs_a_compiler():
    project = _project()
    extras = project["optional-dependencies"]
    assert not COMPILED & {_name(r) for r in project["dependencies"]}, project["dependencies"]
    for extra, requirements in extras.items():
        names = {_name(r) for r in requirements}
        if extra == "mount":
            assert COMPILED <= names
            continue
        assert not COMPILED & names, f"extra {extra!r} needs a compiler: {requirements}"
        # Extras built from others (all, test, dev) bring the mount only by naming it.
        for other in re.findall(r"artifactfs\[([^\]]+)\]", " ".join(requirements)):
            if "mount" in other.split(","):
                assert extra in ("all", "test", "dev"), f"extra {extra!r} pulls in the mount: {requirements}"


# Run in a fresh process: imports of pyfuse3 and trio fail there, as in an
# install without the `mount` extra.
EVERYTHING_BUT_MOUNT = """
import sys

class NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, NotInstalled())

import click
from click.testing import CliRunner

from artifactfs import load_artifact, save_artifact
from artifactfs.cli.main import cli

save_artifact({"lr": 0.1}, "params")
assert load_artifact("params") == {"lr": 0.1}

def commands(group, path=()):
    for name in group.list_commands(click.Context(group)):
        command = group.get_command(click.Context(group), name)
        yield (*path, name)
        if isinstance(command, click.Group):
            yield from commands(command, (*path, name))

runner = CliRunner()
for path in commands(cli):  # every command loads and explains itself
    result = runner.invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, (path, result.output, result.exception)
for args in (["artifact", "list"], ["gc", "--dry-run"], ["fsck"], ["info"]):
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, (args, result.output, result.exception)
for args in (["mount", "mnt"], ["umount", "mnt"]):  # say how to install the mount
    result = runner.invoke(cli, args)
    assert result.exit_code == 1 and "pip install 'artifactfs[mount]'" in result.output, (args, result.output)
    assert "libfuse3-dev" in result.output and "Traceback" not in result.output, result.output
loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
assert not loaded, loaded
print("ok")
"""


def test_everything_but_the_mount_works_without_pyfuse3_and_trio(artifactfs_home):
    code = f"BLOCKED = {sorted(MOUNT_ONLY)!r}\n" + EVERYTHING_BUT_MOUNT
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stdout + done.stderr
