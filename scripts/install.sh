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
# The systemd units in contrib/systemd call /usr/local/bin/artifactfs: as root,
# link it to this environment's (never over another program of that name).
link=/usr/local/bin/artifactfs
if [[ $(id -u) == 0 && ( ! -e $link || $(readlink "$link") == "$PWD/.venv/bin/artifactfs" ) ]]; then
    ln -sfn "$PWD/.venv/bin/artifactfs" "$link"
    echo "linked $link -> $PWD/.venv/bin/artifactfs (for contrib/systemd)"
fi
echo "installed: $(.venv/bin/artifactfs --version)  (run .venv/bin/artifactfs, or: source .venv/bin/activate)"
