#!/usr/bin/env bash
# Re-resolve the newest dependencies pyproject.toml allows and write them to
# constraints.txt. Pins botocore's boto3 to the version aiobotocore (from
# s3fs) accepts, which spares pip's resolver its long backtracking. Run the
# suite afterwards (bash scripts/test.sh) before committing the new set.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m venv "$tmp/venv"
pip=("$tmp/venv/bin/python" -m pip install -q --no-input)
"${pip[@]}" s3fs gcsfs adlfs
botocore=$("$tmp/venv/bin/python" -c "import botocore; print(botocore.__version__)")
echo "boto3==$botocore" > "$tmp/boto.txt"
"${pip[@]}" -c "$tmp/boto.txt" '.[test]'
{
    sed -n '1,/^# Regenerate/p' constraints.txt
    "$tmp/venv/bin/python" -m pip freeze --exclude-editable | grep -v '^artifactfs'
} > "$tmp/constraints.txt"
mv "$tmp/constraints.txt" constraints.txt
echo "constraints.txt: $(grep -vc '^#' constraints.txt) pinned packages"
