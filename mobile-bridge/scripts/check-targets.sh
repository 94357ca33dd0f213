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
# iOS: the bridge links the SQLite that iOS ships (docs/adr/0006-phone-sqlite.md), so the only C
# is ring (rustls' crypto). ring's include/ring-core/base.h includes <TargetConditionals.h>, an
# Apple SDK header of TARGET_OS_* macros. Without the SDK (no xcrun, no SDKROOT) the script
# writes a stand-in SDK under target/ios-standin-sdk: its own TargetConditionals.h with the
# macros of an iOS device, and the aarch64 glibc headers for the C library, then compiles with
# clang `--target=arm64-apple-ios`. Again a compile check only: the objects are Mach-O for the
# phone's CPU but were compiled against stand-in headers and are never linked or shipped.
#
# With the NDK (ANDROID_NDK_HOME or CC_aarch64_linux_android set) its compiler is used instead.
# Installs clang, llvm and libc6-dev-arm64-cross with apt-get when they are missing.
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
status=0

# clang, llvm-ar and the aarch64 glibc headers (the stand-in C library for both phones).
need_clang() {
  if ! command -v clang >/dev/null || ! command -v llvm-ar >/dev/null \
    || [ ! -d /usr/aarch64-linux-gnu/include ]; then
    echo "== installing clang, llvm-ar and the aarch64 glibc headers (stand-in sysroot)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      clang llvm libc6-dev-arm64-cross >/dev/null || return 1
  fi
}

android() {
  local t=aarch64-linux-android
  if [ -z "${CC_aarch64_linux_android:-}" ] && [ -z "${ANDROID_NDK_HOME:-}" ]; then
    need_clang || return 1
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
    need_clang || return 1
    local sdk="$root/target/ios-standin-sdk"
    mkdir -p "$sdk/usr/include"
    cat >"$sdk/usr/include/TargetConditionals.h" <<'HEADER'
/* Stand-in written by mobile-bridge/scripts/check-targets.sh for a compile check only:
   the TARGET_OS_* macros of an iOS device (arm64), not the simulator. */
#define TARGET_OS_MAC 1
#define TARGET_OS_OSX 0
#define TARGET_OS_IPHONE 1
#define TARGET_OS_IOS 1
#define TARGET_OS_TV 0
#define TARGET_OS_WATCH 0
#define TARGET_OS_VISION 0
#define TARGET_OS_MACCATALYST 0
#define TARGET_OS_SIMULATOR 0
#define TARGET_OS_EMBEDDED 1
#define TARGET_CPU_ARM64 1
#define TARGET_CPU_X86_64 0
#define TARGET_RT_64_BIT 1
#define TARGET_RT_LITTLE_ENDIAN 1
HEADER
    export SDKROOT="$sdk"
    export CC_aarch64_apple_ios=clang
    export AR_aarch64_apple_ios=llvm-ar
    # Darwin clang predefines __nonnull as a nullability keyword; glibc uses it as a macro.
    export CFLAGS_aarch64_apple_ios="-isystem /usr/aarch64-linux-gnu/include -U__nonnull"
    echo "== $t: C compiled with clang against a stand-in SDK (compile check only)"
  fi
  # The system SQLite on Apple platforms (ADR 0006): the amalgamation must not be in this build.
  if cargo tree -p mobile-bridge --target "$t" -e features -i libsqlite3-sys 2>/dev/null \
    | grep -q '"bundled'; then
    echo "== $t: libsqlite3-sys is built with \"bundled\"; iOS must link the system SQLite"
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
