#!/usr/bin/env bash
# Screenshots of the dashboard on the demo data, at 1280 and 390 px wide, into
# docs/screenshots (or $1). Needs Debian's chromium and chromium-driver.
#
#   bash benches/screenshots.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
out="$(realpath -m "${1:-docs/screenshots}")"
work="$(mktemp -d)"
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT

cargo build --quiet
cargo build --quiet --example screenshots
target="${CARGO_TARGET_DIR:-$PWD/target}"
bin="$target/debug/mailcast"
root="$PWD"

cd "$work"
"$bin" demo > demo.out
# The automations' templates first: loading an automation checks they are stored.
for dir in "$root"/templates/*/; do
    [ -f "${dir}subject.txt" ] && "$bin" template load "${dir%/}" > /dev/null
done
"$bin" automation load "$root/automations" > /dev/null
password="$(sed -n 's/.*with password \([^ ]*\).*/\1/p' demo.out)"
login="$(sed -n 's/.*sign in as \([^ ]*\) with.*/\1/p' demo.out)"
port=18080
"$bin" serve --listen "127.0.0.1:$port" > serve.log 2>&1 &
server=$!
for _ in $(seq 1 50); do
    curl -sf "http://127.0.0.1:$port/healthz" > /dev/null && break
    sleep 0.2
done

mkdir -p "$out"
"$target/debug/examples/screenshots" "http://127.0.0.1:$port" "$login" "$password" "$out"
