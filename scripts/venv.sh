#!/usr/bin/env bash
# Build a virtual environment and install artifactfs into it from
# pyproject.toml with the pinned, tested set of dependencies.
#   bash scripts/venv.sh DIR EXTRAS [CONSTRAINTS]
# The environment is built from scratch (DIR removed first, so nothing from
# an earlier install or the system Python leaks in) unless DIR holds a
# stamp of the same Python, extras, pyproject.toml and constraints file:
# then only artifactfs itself is reinstalled (seconds instead of minutes).
# A fresh clone (CI) has no DIR, so it always builds from scratch.
# ARTIFACTFS_FRESH_VENV=1 (or deleting DIR) forces a rebuild.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

venv=${1:?usage: venv.sh DIR EXTRAS [CONSTRAINTS]}
extras=${2:?usage: venv.sh DIR EXTRAS [CONSTRAINTS]}
constraints=${3:-constraints.txt}
python=${ARTIFACTFS_PYTHON:-python3}
stamp_file=$venv/.artifactfs-stamp
pip=(env PIP_DISABLE_PIP_VERSION_CHECK=1 "$venv/bin/python" -m pip install -q --no-input -c "$constraints")

stamp=$({ "$python" --version; echo "extras=$extras"; cat pyproject.toml "$constraints" scripts/venv.sh; } 2>&1 | sha256sum | cut -c1-16)
if [[ ${ARTIFACTFS_FRESH_VENV:-0} != 1 && -f $stamp_file && $(cat "$stamp_file") == "$stamp" ]] \
    && "$venv/bin/python" -c "import artifactfs" 2>/dev/null; then
    echo "venv: reusing $venv (pyproject.toml and $constraints unchanged; ARTIFACTFS_FRESH_VENV=1 rebuilds it)"
    # Not editable: reinstall the project alone, so the environment holds this tree's code.
    "${pip[@]}" --no-deps --force-reinstall .
    exit 0
fi
echo "venv: creating $venv with $("$python" --version) and installing .[$extras] -c $constraints"
rm -rf "$venv"
"$python" -m venv "$venv"
# Not editable: the suite tests what a user installs (package data included),
# never the source tree or the system's site-packages.
"${pip[@]}" ".[$extras]"
echo "$stamp" > "$stamp_file"
