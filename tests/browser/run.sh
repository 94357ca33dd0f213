#!/usr/bin/env bash
# Browser tests of the web pages: headless Chromium (Debian `chromium`) driven by playwright-core
# against a real server seeded by the `seed_e2e` binary of the tests crate. Installs what it needs
# when missing (chromium, a CJK font, poppler-utils for the PDF check), runs the Rust web tests
# (including the pdftotext check of the notice PDF) and then `node --test`. Screenshots of the
# main pages go to tests/browser/out/. Exits non-zero when any test fails.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || need+=(fonts-wqy-microhei)
command -v pdftotext >/dev/null 2>&1 || need+=(poppler-utils)
command -v node >/dev/null 2>&1 || need+=(nodejs npm)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "${need[@]}"
fi

cd "$here"
if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi

cd "$root"
cargo build -p tests --bin seed_e2e
target_dir="$(cargo metadata --format-version 1 --no-deps | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')"
export SEED_BIN="$target_dir/debug/seed_e2e"

# The notice PDF's text, checked with pdftotext (now installed), on SQLite (and PostgreSQL when
# TEST_DATABASE_URL is set).
cargo test -p tests --test web

cd "$here"
rm -rf out && mkdir -p out
node --test --test-concurrency=1 walk.test.mjs
echo "screenshots: $here/out"
