#!/usr/bin/env bash
# Compiles the generated Kotlin bindings with the JetBrains compiler and runs the Kotlin field
# suite (mobile-bridge/kotlin/FieldTest.kt) on the JVM against the real server binary.
#
# Sets up what it needs on a fresh machine: the npm package `kotlin-compiler` (into a cache
# directory, not the repository) and Debian's `libjna-java`; uses the machine's JDK. Reuses the
# bindings and server binary when `test-python.sh` built them in the same run
# (INSPECT_BINDINGS_FRESH=1, set by scripts/test.sh).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
root="$(cd "$here/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
cd "$root"

cache="${XDG_CACHE_HOME:-$HOME/.cache}/inspect-kotlin"
kotlinc="$cache/node_modules/kotlin-compiler/bin/kotlinc"
if [[ ! -x "$kotlinc" ]]; then
  mkdir -p "$cache"
  npm install --prefix "$cache" --no-audit --no-fund --silent kotlin-compiler@2.4.20
fi
jna=/usr/share/java/jna.jar
if [[ ! -f "$jna" ]]; then
  if ! apt-get install -y -qq libjna-java >/dev/null 2>&1; then
    apt-get update -qq >/dev/null
    apt-get install -y -qq libjna-java >/dev/null
  fi
fi
command -v java >/dev/null || { echo "test-kotlin: no JDK on this machine" >&2; exit 1; }

# scripts/test.sh sets INSPECT_BINDINGS_FRESH after test-python.sh has built both.
if [[ -z "${INSPECT_BINDINGS_FRESH:-}" ]]; then
  cargo build -p server --bin server
  "$here/scripts/bindings.sh"
fi
lib_dir="$target/debug"

work="$(mktemp -d)"
trap 'kill "${server_pid:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT
server="$work/server-bin"
cp "$target/debug/server" "$server"
data="$work/server"
mkdir -p "$data"
admin() { "$server" --data-dir "$data" admin "$@" 2>/dev/null | grep -oE '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}' | head -1; }
township="$(admin create-township --name 城东街道)"
agency="$(admin create-agency --name 安邦安全咨询有限公司)"
# The unified social credit code carries its GB 32100 check character.
enterprise="$(admin create-enterprise --name 宏达机械厂 --uscc 91330100MA2AAAAA1E \
  --address '工业路 8 号' --township "$township" --industry 机械)"
admin create-contract --agency "$agency" --enterprise "$enterprise" \
  --start 2020-01-01 --end 2099-12-31 --filed >/dev/null || true
for u in inspector:inspector:$agency inspector2:inspector:$agency inspector3:inspector:$agency \
         manager:enterprise_manager:$enterprise; do
  IFS=: read -r name role org <<<"$u"
  admin create-user --username "$name" --password 'correct horse battery' --role "$role" --org "$org" >/dev/null || true
done
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$server" --data-dir "$data" --bind "127.0.0.1:$port" serve >/dev/null 2>"$data/server.log" &
server_pid=$!
python3 - "$port" <<'PY'
import sys, time, urllib.request, urllib.error
for _ in range(400):
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/api/v1/openapi.json", timeout=1)
        break
    except urllib.error.HTTPError:
        break
    except OSError:
        time.sleep(0.05)
PY

# Every exported item has its Kotlin and Swift binding (the Python bindings of the same run list them).
python3 "$here/scripts/check-bindings.py" "$here/bindings"

"$kotlinc" "$here/bindings/kotlin/uniffi/mobile_bridge/mobile_bridge.kt" "$here/kotlin/FieldTest.kt" \
  -cp "$jna" -d "$work/field.jar" -nowarn 2>&1 | grep -v '^warning:' || true
[[ -f "$work/field.jar" ]] || { echo "test-kotlin: the Kotlin bindings did not compile" >&2; exit 1; }
java -Djna.library.path="$lib_dir" -cp "$work/field.jar:$jna:$cache/node_modules/kotlin-compiler/lib/kotlin-stdlib.jar" \
  FieldTestKt "http://127.0.0.1:$port" "$enterprise" "$work/phones"
