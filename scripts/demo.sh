#!/usr/bin/env bash
# The main job on the embedded default (local store + SQLite), from a fresh
# machine: install, run the example pipeline twice (the second run is
# cached), save and load artifacts, register a checkpoint folder, mount the
# index and read it with ls/find/du/cp/numpy, and show what the pruner would
# remove (dry run).
# Everything lives under $DEMO_HOME (default: a fresh temporary folder, which
# the demo names at the end with how to look at it and how to remove it).
# Running it again with the same DEMO_HOME works.
# DEMO_SKIP_INSTALL=1 uses the artifactfs and python already first on PATH
# instead of installing .venv (the README test runs the demo so, in the
# suite's own environment, built by the same scripts/venv.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ ${DEMO_SKIP_INSTALL:-0} != 1 ]]; then
    bash scripts/install.sh
    # The project's own environment: artifactfs and python below are .venv's.
    source .venv/bin/activate
fi

export ARTIFACTFS_HOME="${DEMO_HOME:-$(mktemp -d /tmp/artifactfs-demo.XXXXXX)}"
export COLUMNS="${COLUMNS:-120}"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "init: the index (SQLite) and the default local store"
artifactfs init
artifactfs store register scratch --flavor local --path "$ARTIFACTFS_HOME/scratch"
artifactfs store list

step "fileio: write and list a file in the scratch store"
python3 - <<'PY'
import os
from artifactfs import fileio, io_utils
root = os.path.join(os.environ["ARTIFACTFS_HOME"], "scratch")
io_utils.write_file_contents_as_string(f"{root}/notes/hello.txt", "hello from fileio\n")
print(fileio.listdir(f"{root}/notes"), fileio.size(f"{root}/notes"), "bytes")
PY

step "the example pipeline, twice (the second run comes from the cache)"
python3 examples/training_pipeline.py
python3 examples/training_pipeline.py
artifactfs run list
artifactfs run show "$(python3 -c 'from artifactfs import Client; print(Client().list_pipeline_runs(limit=1)[0].name)')"

step "save and load artifacts from Python"
python3 - <<'PY'
import numpy as np
from artifactfs import load_artifact, save_artifact
save_artifact({"lr": 0.01, "batch_size": 32}, "hyperparameters", tags=["baseline"])
save_artifact(np.eye(3), "identity")
print("loaded:", load_artifact("hyperparameters"), load_artifact("identity").shape)
PY

step "register a training checkpoint folder in place"
CKPT="$ARTIFACTFS_HOME/data/store/checkpoints/epoch=3-step=300"
if [[ ! -e $CKPT ]]; then  # a rerun in the same DEMO_HOME: registered already (a folder belongs to one version)
    mkdir -p "$CKPT/optimizer"
    head -c 200000 /dev/urandom > "$CKPT/model.bin"
    head -c 50000 /dev/urandom > "$CKPT/optimizer/state.bin"
    echo '{"epoch": 3, "step": 300}' > "$CKPT/meta.json"
    artifactfs artifact register "$CKPT" --name classifier-checkpoint --tag best
fi
artifactfs artifact list
artifactfs artifact show classifier-checkpoint

step "mount everything read-only and read it with ordinary tools"
MNT="$ARTIFACTFS_HOME/mnt"
mkdir -p "$MNT"
artifactfs mount "$MNT"
trap 'artifactfs umount "$MNT" 2>/dev/null || true' EXIT
ls "$MNT" "$MNT/pipelines/training_pipeline"
find "$MNT/artifacts/classifier-checkpoint" | sort
ls -l "$MNT/artifacts/classifier-checkpoint/"
du -sh "$MNT/artifacts/classifier-checkpoint/latest/"
rm -rf "$ARTIFACTFS_HOME/restored"
cp -r "$MNT/artifacts/classifier-checkpoint/latest/" "$ARTIFACTFS_HOME/restored"
cmp "$CKPT/model.bin" "$ARTIFACTFS_HOME/restored/model.bin" && echo "copied out through the mount: identical bytes"
python3 -c "import numpy, sys; print('numpy.load through the mount:', numpy.load(sys.argv[1]))" \
    "$MNT/artifacts/model_weights/latest/array.npy"
python3 - "$MNT/artifacts/model_weights/1" <<'PY'
import os, sys
for name in os.listxattr(sys.argv[1])[:6]:  # lineage as extended attributes
    print(f"{name} = {os.getxattr(sys.argv[1], name).decode()}")
PY
artifactfs umount "$MNT"
trap - EXIT

step "what the pruner would remove: a dry run, nothing is deleted"
python3 - <<'PY'
from artifactfs import save_artifact
save_artifact({"lr": 0.02, "batch_size": 32}, "hyperparameters")  # supersedes version 1, which nothing references
PY
# --grace 0: versions of any age qualify; payload folders without a row only after 24 h.
artifactfs gc --dry-run --grace 0 --orphan-grace 24h

step "done: everything of this demo is in $ARTIFACTFS_HOME"
cat <<EOF
Look at it again with (the demo's index, stores and mount folder live there):
    export ARTIFACTFS_HOME=$ARTIFACTFS_HOME
    $(command -v artifactfs) artifact list
    $(command -v artifactfs) mount $MNT    # then: artifactfs umount $MNT
Remove it with:
    rm -rf $ARTIFACTFS_HOME
EOF
