#!/usr/bin/env bash
# Checks that mobile-bridge compiles for Android and iOS: `cargo check --target …` type-checks
# every Rust crate for the phone and runs the build scripts, which compile the C parts (ring for
# rustls, bundled SQLite) to objects. Nothing is linked.
#
# COMPILE CHECK ONLY. Without the Android NDK, the C parts are compiled by Debian's clang with
# `--target=aarch64-linux-android24` against Debian's aarch64 glibc headers
# (libc6-dev-arm64-cross) as a stand-in sysroot. Those headers are not the phone's SDK (bionic):
# the objects are never linked or shipped, they only show that the C compiles for the target.
# Building a library an app can load needs the NDK (cargo-ndk) or Xcode.
#
# iOS is checked only where the iOS SDK is present (xcrun, or SDKROOT pointing at an
# iPhoneOS SDK): ring's include/ring-core/base.h and SQLite's sqlite3.c include
# <TargetConditionals.h> (and SQLite <malloc/malloc.h>), which only Apple's SDK provides, so
# glibc headers cannot stand in. Without the SDK the script says so and exits non-zero.
#
# With the NDK (ANDROID_NDK_HOME or CC_aarch64_linux_android set) its compiler is used instead.
# Installs clang, llvm and libc6-dev-arm64-cross with apt-get when they are missing.
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
status=0

android() {
  local t=aarch64-linux-android
  if [ -z "${CC_aarch64_linux_android:-}" ] && [ -z "${ANDROID_NDK_HOME:-}" ]; then
    if ! command -v clang >/dev/null || ! command -v llvm-ar >/dev/null \
      || [ ! -d /usr/aarch64-linux-gnu/include ]; then
      echo "== installing clang, llvm-ar and the aarch64 glibc headers (stand-in sysroot)"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        clang llvm libc6-dev-arm64-cross >/dev/null || return 1
    fi
    export CC_aarch64_linux_android=clang
    export AR_aarch64_linux_android=llvm-ar
    export CFLAGS_aarch64_linux_android="--target=aarch64-linux-android24 -isystem /usr/aarch64-linux-gnu/include"
    echo "== $t: C compiled with clang against stand-in glibc headers (compile check only)"
  fi
  cargo check -p mobile-bridge --lib --target "$t"
}

ios() {
  local t=aarch64-apple-ios
  if [ -z "${SDKROOT:-}" ] && ! command -v xcrun >/dev/null; then
    echo "== $t: NOT CHECKED: needs the iOS SDK (xcrun or SDKROOT); ring and SQLite include"
    echo "   <TargetConditionals.h>, which only Apple's SDK has"
    return 1
  fi
  cargo check -p mobile-bridge --lib --target "$t"
}

for t in aarch64-linux-android aarch64-apple-ios; do
  if ! rustup target add "$t"; then
    echo "== $t: rustup could not add the target"; status=1; continue
  fi
  case "$t" in
    *android) android; rc=$? ;;
    *ios) ios; rc=$? ;;
  esac
  if [ "$rc" -eq 0 ]; then echo "== $t: ok"; else echo "== $t: failed or not checked"; status=1; fi
done
echo "== OpenSSL in the tree (must be empty):"
cargo tree -p mobile-bridge -i openssl-sys 2>&1 | head -5 || true
exit $status
