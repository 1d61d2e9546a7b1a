#!/usr/bin/env bash
# Install what the tests and benchmarks need outside Python: Debian packages
# and Azurite (npm). Idempotent; run as root on Debian bookworm. The Python
# side is a fresh virtual environment made by scripts/venv.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/apt.sh

APT_PACKAGES=(fuse3 libfuse3-dev pkg-config postgresql pgbouncer rclone s3fs graphviz fio attr psmisc chromium faketime)
command -v node >/dev/null 2>&1 || APT_PACKAGES+=(nodejs)
command -v npm >/dev/null 2>&1 || APT_PACKAGES+=(npm)

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    installed "$pkg" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    echo "install-test-deps: apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt_get update -q
    apt_get install -y -q --no-install-recommends "${missing[@]}"
fi

AZURITE=tools/azurite
if [[ -x $AZURITE/node_modules/.bin/azurite-blob ]] && npm ls --prefix "$AZURITE" >/dev/null 2>&1; then
    echo "install-test-deps: Azurite already installed"
else
    echo "install-test-deps: npm ci (Azurite)"
    npm ci --prefix "$AZURITE" --no-audit --no-fund
fi
