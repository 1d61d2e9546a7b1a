#!/usr/bin/env bash
# Install test dependencies, then run pytest; extra arguments go to pytest,
# and the exit code is pytest's.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install-test-deps.sh
exec python3 -m pytest -q "$@"
