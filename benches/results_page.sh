#!/usr/bin/env bash
# The dashboard's campaigns list and a sent campaign's results page at 1,000,000
# recipients on PostgreSQL (README "Dashboard"): the database `benches/experiment_bench.sh
# --keep` leaves (bench-ab: 950,000 delivered, 10,000,000 events), served by `mailcast
# serve`, each page timed with curl after a warm-up request.
#
#   benches/experiment_bench.sh --keep        # once, builds mailcast_expbench
#   benches/results_page.sh [--bin PATH] [--pg-db NAME] [--runs N]
#
# The server is given 90 s after it starts before anything is timed: with a dashboard
# user it builds the recommendation model from every event in the background, which
# would compete for the cores. A user bench@example.com (admin) is created or reset.
set -euo pipefail

BIN=target/release/mailcast
PG_DB=mailcast_expbench
RUNS=5
PORT=18191
while [ $# -gt 0 ]; do
    case "$1" in
        --bin) BIN=$2; shift 2 ;;
        --pg-db) PG_DB=$2; shift 2 ;;
        --runs) RUNS=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done

URL=postgres://postgres@127.0.0.1:5432/$PG_DB
BASE=http://127.0.0.1:$PORT
WORK=$(mktemp -d)
JAR=$WORK/cookies.txt
PASSWORD=bench-password-123
echo "$PASSWORD" | "$BIN" --database "$URL" user create bench@example.com --role admin \
    --password-stdin >/dev/null
CAMPAIGN=$(psql -h 127.0.0.1 -U postgres -d "$PG_DB" -At \
    -c "SELECT id FROM campaigns WHERE name = 'bench-ab'")
[ -n "$CAMPAIGN" ] || { echo "no campaign bench-ab in $PG_DB" >&2; exit 1; }

RUST_LOG=mailcast=warn "$BIN" --database "$URL" serve --listen "127.0.0.1:$PORT" \
    --base-url "$BASE" >"$WORK/serve.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 100); do curl -sf -o /dev/null "$BASE/healthz" && break; sleep 0.2; done

token=$(curl -s -c "$JAR" "$BASE/app/login" \
    | sed -n 's/.*name="login_token" value="\([^"]*\)".*/\1/p' | sed -n 1p)
curl -s -o /dev/null -b "$JAR" -c "$JAR" --data-urlencode "email=bench@example.com" \
    --data-urlencode "password=$PASSWORD" --data-urlencode "login_token=$token" "$BASE/app/login"
sleep 90

echo "load $(cut -d' ' -f1-3 /proc/loadavg); binary $BIN; database $PG_DB"
for page in /healthz /app/campaigns "/app/campaigns/$CAMPAIGN"; do
    curl -s -o /dev/null -b "$JAR" "$BASE$page"
    printf '%-22s' "$page"
    for _ in $(seq "$RUNS"); do
        printf ' %s' "$(curl -s -o /dev/null -b "$JAR" -w '%{http_code}:%{time_total}s' "$BASE$page")"
    done
    echo
done
