#!/usr/bin/env bash
# Builds the server and the bridge, generates the Python bindings and runs the field scenario
# suite (mobile-bridge/python) against the real server binary.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
root="$(cd "$here/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
cd "$root"
cargo build -p server --bin server
"$here/scripts/bindings.sh"
python3 -m pytest --version >/dev/null 2>&1 || python3 -m pip install --quiet pytest
# A private copy: the target dir may be shared with builds of other branches.
server_copy="$(mktemp -d)/server"
cp "$target/debug/server" "$server_copy"
export INSPECT_SERVER_BIN="$server_copy"
export PYTHONPATH="$here/bindings/python${PYTHONPATH:+:$PYTHONPATH}"
exec python3 -m pytest -q "$here/python" "$@"
