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
"$bin" segment save lapsed 'last(purchase) > 180d ago' --description "no purchase for 6 months" > /dev/null
password="$(sed -n 's/.*with password \([^ ]*\).*/\1/p' demo.out)"
login="$(sed -n 's/.*sign in as \([^ ]*\) with.*/\1/p' demo.out)"
port=18080
"$bin" serve --listen "127.0.0.1:$port" > serve.log 2>&1 &
server=$!
for _ in $(seq 1 50); do
    curl -sf "http://127.0.0.1:$port/healthz" > /dev/null && break
    sleep 0.2
done

# Some engagement to show: a third of the messages opened, a tenth clicked, through the
# server's own tracking links (as a browser would fetch them).
python3 - "$work/outbox" "$port" <<'PY'
import email, email.policy, pathlib, re, sys, urllib.request
outbox, port = pathlib.Path(sys.argv[1]), sys.argv[2]
class Stay(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args):
        return None  # a click's redirect goes to the shop, which is not here
opener = urllib.request.build_opener(Stay())
agent = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"}
for n, path in enumerate(sorted(outbox.glob("*.eml"))):
    if n % 3:
        continue
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    html = message.get_body(("html",)).get_content()
    links = re.findall(r'(?:src|href)="https?://[^/"]+(/[oc]/[^"]+)"', html)
    for link in [l for l in links if l.startswith("/o/")][:1] + [l for l in links if l.startswith("/c/")][: 1 if n % 10 == 0 else 0]:
        request = urllib.request.Request(f"http://127.0.0.1:{port}{link}", headers=agent)
        try:
            opener.open(request, timeout=5).read()
        except Exception:
            pass
PY

mkdir -p "$out"
"$target/debug/examples/screenshots" "http://127.0.0.1:$port" "$login" "$password" "$out"
