#!/usr/bin/env bash
# Runs every test of the workspace. Sets up what the tests need on a fresh machine first:
# cargo-nextest, and the PostgreSQL database the PostgreSQL variants use when it is reachable.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo nextest --version >/dev/null 2>&1; then
  cargo install cargo-nextest --locked
fi

# PostgreSQL variants of the store and story tests run when TEST_DATABASE_URL is set. Default to
# the local server (trust auth, database `test`) when it answers.
if [ -z "${TEST_DATABASE_URL:-}" ]; then
  if command -v pg_isready >/dev/null 2>&1 && pg_isready -h 127.0.0.1 -p 5432 -q; then
    export TEST_DATABASE_URL="postgres://postgres@127.0.0.1:5432/test"
  elif [ -n "${CI:-}" ] && command -v pg_ctlcluster >/dev/null 2>&1; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start || true
    sleep 2
    pg_isready -h 127.0.0.1 -p 5432 -q && export TEST_DATABASE_URL="postgres://postgres@127.0.0.1:5432/test"
  fi
fi
echo "TEST_DATABASE_URL=${TEST_DATABASE_URL:-<unset: PostgreSQL variants skipped>}"

status=0
cargo nextest run --workspace --no-fail-fast "$@" || status=$?

# The phone SDK from a foreign language: Python bindings generated from the built library play the
# field against the real server binary.
bash mobile-bridge/scripts/test-python.sh || status=$?

# The same SDK from Kotlin on the JVM, as an Android app calls it: the generated bindings compiled
# with kotlinc, the Kotlin field suite against the real server (installs kotlin-compiler with npm
# and libjna-java with apt when missing; about half a minute).
INSPECT_BINDINGS_FRESH=1 bash mobile-bridge/scripts/test-kotlin.sh || status=$?

# The web pages in headless Chromium (installs chromium, a CJK font and poppler-utils when missing).
bash tests/browser/run.sh || status=$?

exit $status
