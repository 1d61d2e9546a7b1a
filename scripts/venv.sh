#!/usr/bin/env bash
# Build a fresh virtual environment and install artifactfs into it from
# pyproject.toml with the pinned, tested set of dependencies.
#   bash scripts/venv.sh DIR EXTRAS [CONSTRAINTS]
# DIR is removed first (unless ARTIFACTFS_REUSE_VENV=1 and it already works),
# so nothing from an earlier install or from the system Python leaks in.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

venv=${1:?usage: venv.sh DIR EXTRAS [CONSTRAINTS]}
extras=${2:?usage: venv.sh DIR EXTRAS [CONSTRAINTS]}
constraints=${3:-constraints.txt}
python=${ARTIFACTFS_PYTHON:-python3}

if [[ ${ARTIFACTFS_REUSE_VENV:-0} == 1 && -x $venv/bin/python ]] && "$venv/bin/python" -c "import artifactfs" 2>/dev/null; then
    echo "venv: reusing $venv (ARTIFACTFS_REUSE_VENV=1)"
else
    echo "venv: creating $venv with $("$python" --version) and installing .[$extras] -c $constraints"
    rm -rf "$venv"
    "$python" -m venv "$venv"
fi
# Not editable: the suite tests what a user installs (package data included),
# never the source tree or the system's site-packages.
PIP_DISABLE_PIP_VERSION_CHECK=1 "$venv/bin/python" -m pip install -q --no-input -c "$constraints" ".[$extras]"
