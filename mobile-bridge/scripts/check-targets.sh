#!/usr/bin/env bash
# Checks that mobile-bridge compiles for Android and iOS. Linking needs the Android NDK / Xcode,
# which this machine has not; `cargo check` runs the build scripts (bundled SQLite, ring) for
# the target, so it still needs a C cross compiler for each.
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
status=0
for t in aarch64-linux-android aarch64-apple-ios; do
  if ! rustup target add "$t"; then
    echo "== $t: rustup could not add the target"; status=1; continue
  fi
  if cargo check -p mobile-bridge --lib --target "$t"; then
    echo "== $t: ok"
  else
    echo "== $t: cargo check failed"; status=1
  fi
done
echo "== OpenSSL in the tree (must be empty):"
cargo tree -p mobile-bridge -i openssl-sys 2>&1 | head -5 || true
exit $status
