#!/usr/bin/env bash
# Install everything the suite needs (Debian packages, Azurite, and a
# virtual environment .venv-test built from pyproject.toml with the pinned
# set in constraints.txt), then run pytest with that environment's Python,
# never the system's. Extra arguments go to pytest; the exit code is pytest's (after ruff and
# mypy on src/ pass: a lint or type error stops the run).
# .venv-test is built from scratch when it is missing (a fresh clone, CI) or
# when pyproject.toml or the constraints file changed; otherwise it is reused
# and only artifactfs is reinstalled (scripts/venv.sh).
#   ARTIFACTFS_CONSTRAINTS=constraints-lowest.txt  test at the lowest allowed versions
#   ARTIFACTFS_FRESH_VENV=1                        rebuild the environment from scratch anyway
#   ARTIFACTFS_TEST_WORKERS=N                      N parallel pytest workers (default: one per core)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install-test-deps.sh
constraints=${ARTIFACTFS_CONSTRAINTS:-constraints.txt}
venv=.venv-test
[[ $constraints == constraints.txt ]] || venv=.venv-test-$(basename "$constraints" .txt)
bash scripts/venv.sh "$venv" test "$constraints"
export PATH="$PWD/$venv/bin:$PATH"
"$venv/bin/python" -m pip list --format=freeze 2>/dev/null | grep -iE '^(trio|pyfuse3|sqlalchemy|fsspec|s3fs|gcsfs|adlfs|pandas|numpy)==' | tr '\n' ' '
echo
# Lint and type-check the package first (rules in pyproject.toml [tool.ruff], [tool.mypy]).
"$venv/bin/python" -m ruff check src
"$venv/bin/python" -m mypy
# One pytest-xdist worker per core (each starts its own servers); a test file runs whole, in
# one worker (`--dist loadfile`, in pyproject's addopts so a plain `pytest -n 2` does the same).
# Arguments after these win: `-n 0` runs in this process.
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider --durations=15 \
    -n "${ARTIFACTFS_TEST_WORKERS:-auto}" "$@"
