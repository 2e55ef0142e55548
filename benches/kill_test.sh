#!/usr/bin/env bash
# Kill test: three PostgreSQL workers share one campaign (20,000 recipients by default);
# two of them are killed with SIGKILL while sending, one after the other, and restarted
# at once. The campaign must end with nobody mailed twice and nobody unaccounted for, and
# each kill may leave at most --concurrency deliveries `unknown` (handed to SMTP, no
# reply recorded): what a killed worker had claimed but not handed goes back and is sent
# later by someone else. Figures and their reading: README "Crash safety".
#
# smtp-sink (Postfix) receives everything on loopback and writes each message to a file,
# so the script counts what really arrived, per recipient. The ledger is read with psql.
#
# Usage:
#   benches/kill_test.sh [--recipients 20000] [--workers 3] [--concurrency 8]
#                        [--lease-seconds 5] [--kill-at 0.25,0.5] [--port 2527]
#                        [--work DIR] [--pg URL] [--pg-db NAME] [--bin PATH] [--runs 1]
#   --kill-at   the share of the audience sent when each kill happens (one per kill; the
#               first worker is killed first, then the second)
#   --bin       use this mailcast binary instead of building target/release/mailcast
#
# Needs: cargo (unless --bin), psql, a PostgreSQL server (trust auth); installs postfix
# (for smtp-sink) with apt-get when missing, without starting its daemon.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=20000
WORKERS=3
CONCURRENCY=8
LEASE=5
KILL_AT=0.25,0.5
PORT=2527
WORK=/tmp/mailcast-killtest
PG=postgres://postgres@127.0.0.1:5432
PG_DB=mailcast_killtest
BIN=
RUNS=1

while [ $# -gt 0 ]; do
    case "$1" in
        --recipients) N=$2; shift 2 ;;
        --workers) WORKERS=$2; shift 2 ;;
        --concurrency) CONCURRENCY=$2; shift 2 ;;
        --lease-seconds) LEASE=$2; shift 2 ;;
        --kill-at) KILL_AT=$2; shift 2 ;;
        --port) PORT=$2; shift 2 ;;
        --work) WORK=$2; shift 2 ;;
        --pg) PG=${2%/}; shift 2 ;;
        --pg-db) PG_DB=$2; shift 2 ;;
        --bin) BIN=$2; shift 2 ;;
        --runs) RUNS=$2; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

mkdir -p "$WORK"
LOG=$WORK/killtest.log
DB=$PG/$PG_DB
export PGOPTIONS="-c client_min_messages=warning" NO_COLOR=1 RUST_LOG=mailcast=info,apalis=warn,sqlx=warn
say() { printf '[%s] %s\n' "$(date +%T)" "$*" | tee -a "$LOG" >&2; }
die() { say "FAILED: $*"; exit 1; }
sql() { psql -qAt "$DB" -c "$1"; }

PIDS=()
SINK_PID=
cleanup() {
    set +e
    for pid in "${PIDS[@]}" $SINK_PID; do
        kill -KILL "$pid" 2>/dev/null
    done
    psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $PG_DB" >/dev/null 2>&1
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ ! -x /usr/sbin/smtp-sink ]; then
    say "installing postfix (for smtp-sink); its daemon is not started"
    created=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && created=1
    fi
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections 2>/dev/null || true
    timeout 900 apt-get update -qq >>"$LOG" 2>&1
    DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -q postfix >>"$LOG" 2>&1
    [ "$created" = 1 ] && rm -f /usr/sbin/policy-rc.d
fi
command -v psql >/dev/null || die "psql is required"
if [ -z "$BIN" ]; then
    say "building mailcast (release)"
    (cd "$ROOT" && timeout 3600 cargo build --release --bin mailcast) >>"$LOG" 2>&1 || die "cargo build failed, see $LOG"
    BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/mailcast
fi
MC=$WORK/mailcast
cp "$BIN" "$MC"

FX=$WORK/fixtures-$N
if [ ! -s "$FX/recipients.csv" ]; then
    say "generating $N recipients"
    "$MC" fixtures generate --recipients "$N" --out "$FX" --now 2026-11-20T00:00:00Z >>"$LOG"
    rm -f "$FX/events.jsonl"
fi

prepare_database() {
    psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $PG_DB" >/dev/null
    psql -q "$PG/postgres" -c "CREATE DATABASE $PG_DB" >/dev/null
    DATABASE_URL=$DB "$MC" import recipients "$FX/recipients.csv" >>"$LOG"
    DATABASE_URL=$DB "$MC" template load "$ROOT/templates/weekly-picks" >>"$LOG"
    DATABASE_URL=$DB "$MC" campaign create killtest --template weekly-picks \
        --from-email news@shop.example.com --from-name Northwind >>"$LOG"
}

start_sink() {
    rm -rf "$WORK/dump" && mkdir -p "$WORK/dump" && chmod 777 "$WORK/dump"
    /usr/sbin/smtp-sink -u nobody -c -d "$WORK/dump/%H%M%S." "127.0.0.1:$PORT" 4096 >"$WORK/sink.out" 2>&1 &
    SINK_PID=$!
    for _ in $(seq 50); do
        (echo >/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && return
        sleep 0.1
    done
    die "smtp-sink did not listen on 127.0.0.1:$PORT"
}

start_worker() { # index: prints the pid
    DATABASE_URL=$DB "$MC" worker --smtp "smtp://127.0.0.1:$PORT" --concurrency "$CONCURRENCY" \
        --lease-seconds "$LEASE" >>"$WORK/worker-$1.log" 2>&1 &
    echo $!
}

sent() { sql "SELECT count(*) FROM deliveries WHERE status = 'sent'"; }

run_once() { # run
    local run=$1 audience
    prepare_database
    audience=$(sql "SELECT count(*) FROM recipients WHERE status = 'active'")
    start_sink
    rm -f "$WORK"/worker-*.log
    PIDS=()
    for i in $(seq "$WORKERS"); do PIDS+=("$(start_worker "$i")"); done
    sleep 1 # every worker polls for jobs before the campaign starts
    DATABASE_URL=$DB "$MC" campaign schedule killtest >>"$LOG"
    local k=0 killed=() at_kill=()
    for share in ${KILL_AT//,/ }; do
        local target
        target=$(awk -v n="$N" -v s="$share" 'BEGIN{printf "%d", n*s}')
        until [ "$(sent)" -ge "$target" ]; do sleep 0.02; done
        local pid=${PIDS[$k]}
        kill -KILL "$pid"
        wait "$pid" 2>/dev/null || true
        at_kill+=("$(sent)")
        killed+=("$pid")
        PIDS[$k]=$(start_worker "$((k + 1))-restarted")
        k=$((k + 1))
    done
    local deadline=$((SECONDS + 300))
    until [ "$(sql "SELECT status FROM campaigns WHERE name = 'killtest'")" = done ]; do
        [ $SECONDS -lt $deadline ] || die "the campaign did not finish in 300 s"
        sleep 0.2
    done
    for pid in "${PIDS[@]}"; do kill -INT "$pid" 2>/dev/null; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    PIDS=()
    sleep 0.5
    kill "$SINK_PID"; wait "$SINK_PID" 2>/dev/null || true; SINK_PID=

    report "$run" "$audience" "${killed[*]}" "${at_kill[*]}"
}

report() { # run audience "killed pids" "sent at each kill"
    local run=$1 audience=$2 killed=($3) at_kill=($4)
    grep -h '^X-Rcpt-Args:' "$WORK"/dump/* | sed 's/.*<\(.*\)>.*/\1/' | tr 'A-Z' 'a-z' | sort >"$WORK/received.txt"
    sql "SELECT lower(r.email), d.status FROM deliveries d JOIN recipients r ON r.id = d.recipient_id" \
        | sort >"$WORK/ledger.txt"
    local received twice statuses unknown_received lost
    received=$(wc -l <"$WORK/received.txt")
    twice=$(uniq -d "$WORK/received.txt" | wc -l)
    statuses=$(cut -d'|' -f2 "$WORK/ledger.txt" | sort | uniq -c | awk '{printf "%s%s=%s", sep, $2, $1; sep=" "}')
    # Sent in the ledger but never received, or received but neither sent nor unknown.
    lost=$(awk -F'|' '$2 == "sent" {print $1}' "$WORK/ledger.txt" | sort | comm -23 - <(uniq "$WORK/received.txt") | wc -l)
    unknown_received=$(awk -F'|' '$2 == "unknown" {print $1}' "$WORK/ledger.txt" | comm -12 - <(uniq "$WORK/received.txt") | wc -l)
    local i line
    for i in "${!killed[@]}"; do
        local name_like="mailcast-%-${killed[$i]}-%" unknown returned
        unknown=$(sql "SELECT count(*) FROM deliveries WHERE status = 'unknown' AND worker LIKE '$name_like'")
        line="run $run kill $((i + 1)): sent at kill ${at_kill[$i]}, unknown left by the killed worker $unknown (limit $CONCURRENCY)"
        say "$line"
        [ "$unknown" -le "$CONCURRENCY" ] || say "OVER THE LIMIT: $line"
    done
    returned=$(grep -ho 'handed_back=[0-9]*' "$WORK"/worker-*.log | cut -d= -f2 | awk '{s+=$1} END {print s+0}')
    say "run $run: audience $audience, ledger: $statuses; received $received messages, $twice recipients twice, $lost sent but not received, $unknown_received of the unknown were received; $returned claimed deliveries handed back after the kills"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$run" "$audience" "$statuses" "$received" "$twice" "$lost" "$returned" >>"$WORK/results.tsv"
    [ "$twice" = 0 ] || die "someone received two messages"
    [ "$lost" = 0 ] || die "a delivery recorded as sent never arrived"
}

for run in $(seq "$RUNS"); do run_once "$run"; done
