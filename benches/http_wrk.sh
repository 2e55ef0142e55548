#!/usr/bin/env bash
# Click-redirect benchmark: wrk against mailcast's `GET /c/{token}` (many distinct,
# validly signed tokens) and, in the same run, against nginx answering `return 302` on
# the same machine. Checks that every click mailcast answered is stored.
#
# Usage:   benches/http_wrk.sh [sqlite|postgres]        (default: sqlite)
# Environment (all optional):
#   DURATION=10s  CONNECTIONS=64  THREADS=2  TOKENS=50000
#   PG_ADMIN_URL=postgres://postgres@127.0.0.1:5432/postgres   (postgres only)
#   MAILCAST_BIN=target/release/mailcast   (built with `cargo build --release` if absent)
#
# Traffic goes to 127.0.0.1 only; each wrk run stops after DURATION. Needs python3 and,
# for the engine, sqlite3's Python module or psql. Installs wrk and nginx-light with
# apt-get when they are missing (as root).
#
# What it prints: requests per second for nginx and for mailcast, their ratio, the
# clicks mailcast answered with 302 (its own counter), the responses wrk received, and
# the clicks stored after a graceful shutdown. Stored must equal answered; wrk may have
# received a few fewer (responses still in flight when its clock ran out, at most one
# per connection).
set -euo pipefail

ENGINE=${1:-sqlite}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
TOKENS=${TOKENS:-50000}
MAILCAST_PORT=${MAILCAST_PORT:-18181}
NGINX_PORT=${NGINX_PORT:-18182}
AGENT="Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
ROOT=$(cd "$(dirname "$0")/.." && pwd)

need() {
    command -v "$1" >/dev/null 2>&1 && return
    echo "installing $2 ..." >&2
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}
need wrk wrk
need nginx nginx-light

BIN=${MAILCAST_BIN:-$ROOT/target/release/mailcast}
if [ ! -x "$BIN" ]; then
    (cd "$ROOT" && cargo build --release --bin mailcast)
fi

WORK=$(mktemp -d /tmp/mailcast-wrk.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    if [ "$ENGINE" = postgres ] && [ -n "${PG_DB:-}" ]; then
        psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

case "$ENGINE" in
    sqlite) DATABASE="$WORK/bench.db" ;;
    postgres)
        PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
        PG_DB="mailcast_wrk_$$"
        psql "$PG_ADMIN_URL" -qc "CREATE DATABASE $PG_DB" >/dev/null
        DATABASE="${PG_ADMIN_URL%/*}/$PG_DB"
        ;;
    *) echo "engine must be sqlite or postgres" >&2; exit 2 ;;
esac

# A signing key of the benchmark's own; the server verifies with it.
SECRET=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
export MAILCAST_LINK_KEYS="7:$SECRET"
export DATABASE_URL="$DATABASE"

"$BIN" migrate >/dev/null
"$BIN" template load "$ROOT/templates/weekly-picks" >/dev/null
"$BIN" campaign create wrk-bench --template weekly-picks --from-email news@shop.example.com >/dev/null

# TOKENS stored recipients: clicks of people who do not exist (or were erased) are
# answered but not stored, so every token must name a real recipient.
python3 -c 'import sys; print("email"); [print(f"wrk{i}@example.com") for i in range(int(sys.argv[1]))]' \
    "$TOKENS" > "$WORK/recipients.csv"
"$BIN" import recipients "$WORK/recipients.csv" >/dev/null
ID_SQL="SELECT id FROM recipients ORDER BY id"
if [ "$ENGINE" = sqlite ]; then
    python3 -c 'import sqlite3,sys; [print(r[0]) for r in sqlite3.connect(sys.argv[1]).execute(sys.argv[2])]' \
        "$DATABASE" "$ID_SQL" > "$WORK/ids.txt"
else
    psql "$DATABASE" -Atc "$ID_SQL" > "$WORK/ids.txt"
fi

# The campaign's one link and a click token for each of those recipients, signed as
# src/links/token.rs does (key id, kind, varints, truncated HMAC-SHA256).
python3 - "$WORK" "$SECRET" <<'EOF' > "$WORK/link.sql"
import base64, hashlib, hmac, sys
work, secret = sys.argv[1], bytes.fromhex(sys.argv[2])
ids = [int(line) for line in open(f"{work}/ids.txt")]
url = "https://shop.example.com/sale?utm_source=mailcast"
link_id = int.from_bytes(hashlib.sha256(url.encode()).digest()[:6], "big")
def varint(n):
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)
with open(f"{work}/tokens.txt", "w") as f:
    for recipient in ids:
        payload = bytes([7, 2]) + varint(1) + varint(recipient) + varint(link_id)
        mac = hmac.new(secret, b"mailcast/link/v1" + payload, hashlib.sha256).digest()[:12]
        f.write(base64.urlsafe_b64encode(payload + mac).decode().rstrip("=") + "\n")
print(f"INSERT INTO links (campaign_id, link_id, url) VALUES (1, {link_id}, '{url}');")
EOF
if [ "$ENGINE" = sqlite ]; then
    python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.executescript(open(sys.argv[2]).read()); c.commit()' \
        "$DATABASE" "$WORK/link.sql"
else
    psql "$DATABASE" -qf "$WORK/link.sql" >/dev/null
fi

cat > "$WORK/clicks.lua" <<'EOF'
local tokens = {}
for line in io.lines(os.getenv("TOKENS_FILE")) do tokens[#tokens + 1] = line end
local i = 0
function setup(thread) thread:set("offset", math.random(#tokens)) end
function init() i = offset or 0 end
function request()
    i = i % #tokens + 1
    return wrk.format("GET", "/c/" .. tokens[i])
end
function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format("RESULT %d %d %d %.3f\n", summary.requests,
        e.status, e.connect + e.read + e.write + e.timeout, summary.duration / 1e6))
end
EOF
export TOKENS_FILE="$WORK/tokens.txt"

mkdir -p "$WORK/nginx/logs"
cat > "$WORK/nginx/nginx.conf" <<EOF
worker_processes auto;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location / { return 302 https://shop.example.com/sale?utm_source=mailcast; }
    }
}
EOF

wait_port() {
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nothing listens on port $1" >&2
    exit 1
}

# wrk's closing RESULT line: responses, status errors, socket errors, seconds.
run_wrk() {
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -H "User-Agent: $AGENT" \
        -s "$WORK/clicks.lua" "http://127.0.0.1:$1" | tee "$WORK/wrk-$1.txt" >&2
    grep '^RESULT' "$WORK/wrk-$1.txt"
}

nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -g 'daemon off;' &
PIDS+=($!)
wait_port "$NGINX_PORT"
echo "== nginx return 302 ==" >&2
read -r _ NGINX_REQ NGINX_STATUS NGINX_SOCKET NGINX_SECS < <(run_wrk "$NGINX_PORT")
kill -QUIT "${PIDS[0]}" && wait "${PIDS[0]}" 2>/dev/null || true

RUST_LOG=${RUST_LOG:-mailcast=warn} "$BIN" serve --listen "127.0.0.1:$MAILCAST_PORT" 2>"${SERVE_LOG:-$WORK/serve.log}" &
SERVE_PID=$!
PIDS+=($SERVE_PID)
wait_port "$MAILCAST_PORT"
echo "== mailcast /c/{token} ($ENGINE) ==" >&2
read -r _ MC_REQ MC_STATUS MC_SOCKET MC_SECS < <(run_wrk "$MAILCAST_PORT")
ANSWERED=$(curl -s "http://127.0.0.1:$MAILCAST_PORT/metrics" \
    | awk '/^mailcast_http_requests_total\{route="\/c\/\{token\}",status="302"\}/ {print $2}')
kill -INT "$SERVE_PID"
wait "$SERVE_PID" || true

COUNT_SQL="SELECT COUNT(*) FROM tracking_events WHERE kind = 'click'"
if [ "$ENGINE" = sqlite ]; then
    STORED=$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()[0])' "$DATABASE" "$COUNT_SQL")
else
    STORED=$(psql "$DATABASE" -Atc "$COUNT_SQL")
fi

python3 - <<EOF
nginx_rps = $NGINX_REQ / $NGINX_SECS
mc_rps = $MC_REQ / $MC_SECS
print(f"engine            $ENGINE ({'$DURATION'}, {$CONNECTIONS} connections, {$THREADS} wrk threads, {$TOKENS} tokens)")
print(f"nginx return 302  {nginx_rps:10.0f} req/s  ({$NGINX_REQ} responses, {$NGINX_STATUS} non-3xx, {$NGINX_SOCKET} socket errors)")
print(f"mailcast /c/      {mc_rps:10.0f} req/s  ({$MC_REQ} responses, {$MC_STATUS} non-3xx, {$MC_SOCKET} socket errors)")
print(f"ratio             {mc_rps / nginx_rps:10.2f}  (target >= 0.50)")
print(f"clicks answered   {${ANSWERED:-0}:10d}  (mailcast's own 302 counter)")
print(f"clicks stored     {$STORED:10d}  after graceful shutdown")
print(f"wrk received      {$MC_REQ:10d}")
ok = $STORED == ${ANSWERED:-0} and 0 <= $STORED - $MC_REQ <= $CONNECTIONS and $MC_STATUS == 0
print("every answered click stored: " + ("yes" if ok else "NO"))
raise SystemExit(0 if ok else 1)
EOF
