#!/usr/bin/env bash
# Install artifactfs with every store and the FUSE mount into a virtual
# environment of its own, .venv in this folder (never the system Python:
# Debian's refuses, and upgrading its packages breaks other tools).
# Afterwards: .venv/bin/artifactfs, or `source .venv/bin/activate`.
# Idempotent; run as root on Debian bookworm (root only for apt-get).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/apt.sh

APT_PACKAGES=(fuse3 libfuse3-dev pkg-config python3-venv)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})) && command -v apt-get >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt_get update -q
    apt_get install -y -q --no-install-recommends "${missing[@]}"
fi

bash scripts/venv.sh .venv all
echo "installed: $(.venv/bin/artifactfs --version)  (run .venv/bin/artifactfs, or: source .venv/bin/activate)"
