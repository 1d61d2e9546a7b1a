"""The install and test scripts: apt-get waits for another apt's lock, and
the test environment is reused while pyproject.toml and the constraints
file are unchanged (rebuilt when they change or when asked). Real bash runs
the real scripts; apt-get and the Python that builds the environment are
stand-ins on PATH that record how they were called."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _program(folder: Path, name: str, body: str) -> Path:
    path = folder / name
    path.write_text("#!/usr/bin/env bash\n" + body)
    path.chmod(0o755)
    return path


def test_apt_get_waits_for_another_apts_lock(tmp_path):
    """A fresh machine's unattended upgrades hold the lock for a while: the
    install waits and then installs; any other failure is returned at once."""
    calls = tmp_path / "calls"
    _program(tmp_path, "apt-get", f"""\
echo "$*" >> {calls}
n=$(wc -l < {calls})
if [[ $* == *broken* ]]; then echo "E: Unable to locate package broken" >&2; exit 100; fi
if ((n <= 2)); then
    echo "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (unattended-upgr)" >&2
    exit 100
fi
echo "installed"
""")
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}", "ARTIFACTFS_APT_POLL": "0.05"}
    waited = subprocess.run(["bash", "-euo", "pipefail", "-c", "source scripts/apt.sh; apt_get install -y fuse3"],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert waited.returncode == 0, waited.stderr
    assert "installed" in waited.stdout and "holds its lock; waiting" in waited.stderr
    assert calls.read_text().count("install -y fuse3") == 3
    assert "DPkg::Lock::Timeout" in calls.read_text()
    calls.unlink()
    broken = subprocess.run(["bash", "-euo", "pipefail", "-c", "source scripts/apt.sh; apt_get install broken"],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert broken.returncode == 100 and calls.read_text().count("broken") == 1


def _clone(tmp_path: Path) -> Path:
    """The files scripts/venv.sh reads, in a folder of their own."""
    clone = tmp_path / "clone"
    (clone / "scripts").mkdir(parents=True)
    for name in ("pyproject.toml", "constraints.txt", "scripts/venv.sh"):
        shutil.copy(REPO / name, clone / name)
    return clone


def test_the_test_environment_is_reused_until_its_inputs_change(tmp_path):
    log = tmp_path / "log"
    # A stand-in for python3: `-m venv DIR` makes DIR/bin/python, which logs pip calls.
    _program(tmp_path, "fake-python", f"""\
if [[ $1 == --version ]]; then echo "Python 3.11.7"; exit 0; fi
if [[ $1 == -m && $2 == venv ]]; then
    mkdir -p "$3/bin"
    echo "venv $3" >> {log}
    printf '#!/usr/bin/env bash\\n[[ $1 == -m ]] && echo "pip $*" >> {log}\\nexit 0\\n' > "$3/bin/python"
    chmod +x "$3/bin/python"
    exit 0
fi
exit 1
""")
    clone = _clone(tmp_path)
    env = {**os.environ, "ARTIFACTFS_PYTHON": str(tmp_path / "fake-python")}
    env.pop("ARTIFACTFS_FRESH_VENV", None)

    def build(**extra) -> list[str]:
        if log.exists():
            log.unlink()
        done = subprocess.run(["bash", "scripts/venv.sh", ".venv-test", "test"], cwd=clone, env={**env, **extra},
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return log.read_text().splitlines()

    first = build()
    assert first[0] == "venv .venv-test" and "--no-deps" not in first[1] and ".[test]" in first[1]
    again = build()
    assert len(again) == 1 and "--no-deps --force-reinstall ." in again[0]  # reused: the project alone
    with open(clone / "constraints.txt", "a") as f:
        f.write("tomli==2.0.1\n")
    assert build()[0] == "venv .venv-test"  # a new constraints file: from scratch
    assert len(build()) == 1
    (clone / "pyproject.toml").write_text((clone / "pyproject.toml").read_text() + "\n# changed\n")
    assert build()[0] == "venv .venv-test"
    assert build(ARTIFACTFS_FRESH_VENV="1")[0] == "venv .venv-test"  # asked for
    shutil.rmtree(clone / ".venv-test")
    assert build()[0] == "venv .venv-test"  # a fresh clone (CI) has none: from scratch
