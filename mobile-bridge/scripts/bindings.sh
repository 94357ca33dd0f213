#!/usr/bin/env bash
# Builds the mobile-bridge cdylib and generates Python, Kotlin and Swift bindings from it in
# library mode into mobile-bridge/bindings/{python,kotlin,swift} (gitignored).
# Usage: scripts/bindings.sh [--release]
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
root="$(cd "$here/.." && pwd)"
profile=debug
flags=()
if [[ "${1:-}" == "--release" ]]; then profile=release; flags=(--release); fi
target="${CARGO_TARGET_DIR:-$root/target}"
cd "$root"
cargo build "${flags[@]}" -p mobile-bridge --lib
cargo build -p uniffi-bindgen
lib="$target/$profile/libmobile_bridge.so"
[[ -f "$lib" ]] || lib="$target/$profile/libmobile_bridge.dylib"
out="$here/bindings"
rm -rf "$out"
for lang in python kotlin swift; do
  "$target/debug/uniffi-bindgen" generate --library "$lib" --language "$lang" --out-dir "$out/$lang" --no-format
done
# Python loads the library from beside the module.
cp "$lib" "$out/python/"
echo "bindings in $out"
