#!/usr/bin/env bash
# Automation benchmark (issue 16, README "Automations") on PostgreSQL: how fast one
# worker moves due runs on and hands their messages to SMTP, next to a plain campaign of
# the same template in the same database; and how fast the CRM API takes events and
# how soon the runs they trigger exist.
#
# Part A, due runs (database PG_DB, default mailcast_autobench):
#   1. N recipients (--recipients, default 1,000,000) made with one INSERT … SELECT
#      generate_series (email benchN@bench.example.com, email_key, email_hash, status
#      active; country DE for the first D, US for the rest), the topic `newsletter` and
#      everyone's consent to it; the weekly-picks template (`mailcast template load`);
#      the segment `bench-due` = `country == "DE"` (the D due ones);
#   2. one automation `bench-due` ($WORK/bench-due.toml, trigger { event = "cart_add" }):
#      step 1 `if = 'country != "ZZ"'` (true for everyone), step 2 `send` weekly-picks,
#      marketing, topic newsletter; loaded with `mailcast automation load`;
#   3. one run per recipient inserted with SQL into automation_runs (ordinal 1,
#      trigger_key 'bench', status active, step 0): D (--due, default 100,000) due now,
#      the others due in 30 days; VACUUM ANALYZE;
#   4. a fresh smtp-sink on 127.0.0.1:PORT, then `mailcast worker --smtp
#      smtp://127.0.0.1:PORT [--worker-args]` under /usr/bin/time -v; the clock starts
#      when the worker is started. One psql session samples every 0.2 s how many of the D
#      runs are still due (the partial index automation_runs_due: cheap) and how many
#      deliveries of the automation's campaigns (deliveries ⋈ automation_campaigns) are
#      sent or settled, and the worker's VmRSS. "runs moved on" = time until no run is
#      due any more; "handed to SMTP" = time until D deliveries are `sent`. Afterwards
#      it checks that D runs are `ended` (by end_reason), and what smtp-sink received;
#   5. reference, same database, same worker flags, a new worker process: `mailcast
#      campaign create bench-ref --template weekly-picks --segment bench-due --topic
#      newsletter` (the same D recipients, who got the automation's message already: no
#      frequency cap is set, so it does not matter); the clock starts right before
#      `mailcast campaign schedule bench-ref` and stops when its status is `done`
#      (polled every 0.1 s): messages/s from schedule to done, as benches/send_bench.sh
#      (there the ledger is filled by one statement before sending starts; the
#      automation's grows while it sends, from empty in a fresh database: see
#      --reference-first for the other order).
#      The ratio automation runs/s ÷ campaign messages/s is reported for both figures.
#      The automation is paused during the reference (every worker runs the automation
#      engine too) and resumed after it.
#
# Part B, event ingestion (database PG_DB_b):
#   1. E recipients (--events, default 200,000: one recipient per event, so that entry
#      rules never hold a run back and the number of runs each event starts is known),
#      the topic and consents, the products of fixtures/products.csv (`mailcast import
#      products`), weekly-picks, and five automations ($WORK/b-*.toml) with event
#      triggers: cart_add (any), cart_add in category shoes (waits for a purchase, goal
#      purchase), view of SKU SH-1001, view in category outdoor, purchase of at least
#      100.00; each waits (1 d to 7 d) before it sends, so no message goes out during the
#      measurement; an API key (`mailcast api-key create`);
#   2. smtp-sink, `mailcast worker` and `mailcast serve --listen 127.0.0.1:HTTP_PORT`,
#      each under /usr/bin/time -v;
#   3. a python3 client ($WORK/events_client.py, written by this script) builds the E
#      events first (60 % view, 25 % cart_add, 15 % purchase, SKUs from
#      fixtures/products.csv, occurred_at = now, event_id ab-N) in batches of
#      --event-batch (default 1,000) and counts, with the same filters as the five
#      automations, how many runs each batch should start; then --client-threads
#      (default 4) threads, each on one keep-alive connection, POST them to /api/events
#      as fast as they get answers, recording when each batch was accepted (200);
#   4. meanwhile one psql session samples every 50 ms the number of rows of
#      automation_runs, with the server's clock. The count is kept incrementally
#      (count of ids above the largest id seen so far, added to the previous count): the
#      same number as SELECT count(*) FROM automation_runs while runs are only inserted
#      by the one worker's single statements, without a sequential scan of a growing
#      table every 50 ms on a 2-core machine; the last sample is checked against a real
#      count(*). For each batch, in order of acceptance: delay = the first sample time
#      at which the count reaches the cumulative number of runs up to that batch, minus
#      its acceptance time. Reported: events/s accepted (events ÷ first request to last
#      acceptance), median, 95th percentile and largest delay. In this reckoning a batch
#      whose runs come late (events the worker's scan passed before their transaction
#      committed wait for its sweep, 10 s behind) delays every batch accepted after it.
#
# Targets from the issue: ≥ 5,000 runs/s with memory flat (A); ≥ 10,000 events/s and a
# median delay below 1 s (B). The script reports them, it does not change them.
#
# Results: one line per figure in $WORK/results.tsv (date, label, part, sizes, figure,
# value, unit, 1-minute load at the start of that timed run), a table at the end; logs
# ($WORK/bench.log, worker-*.log, *.time, sink-*.out, samples-*.txt, batches-*.tsv) stay
# in $WORK.
#
# Usage:
#   benches/automation_bench.sh [--recipients N] [--due D] [--events E] [--parts a,b]
#                               [--event-batch 1000] [--client-threads 4] [--event-rate R]
#                               [--port 2527] [--http-port 8091] [--work DIR] [--pg URL]
#                               [--pg-db NAME] [--run-timeout S] [--label TEXT]
#                               [--bin PATH] [--no-build] [--worker-args "ARGS"] [--reference-first]
#                               [--max-load 1.5] [--lock-wait S] [--sql-log] [--pg-waits]
#   --parts         a (due runs and the campaign reference), b (event ingestion), or both
#   --reference-first  part A runs the reference campaign before the automation, so that
#                   the ledger (deliveries) already holds D rows when the automation's
#                   worker starts (its part names in results.tsv end in -ref-first)
#   --event-rate    part B's client sends at most R events/s (batches started on a
#                   schedule) instead of as fast as it can (default: as fast as it can)
#   --pg            server URL without database (default postgres://postgres@127.0.0.1:5432)
#   --pg-db         databases the script creates and drops: NAME and NAME_b
#                   (default mailcast_autobench)
#   --worker-args   more flags for both `mailcast worker` runs of part A and for part B's
#                   worker, split on spaces (e.g. "--concurrency 16")
#   --run-timeout   seconds one timed run may take before it is abandoned (default 1800)
#   --bin           use this mailcast binary instead of building target/release/mailcast
#                   (a private copy is taken, so a rebuild meanwhile changes nothing)
#   --max-load      a timed run starts only when /tmp/mailcast-bench.lock does not exist
#                   and the 1-minute load average is below this (default 1.5); the
#                   script then holds the lock through that part (set-up included) and,
#                   before each timed run within it, waits for its own set-up's load to
#                   fall below this again (up to --lock-wait, then it fails). The load is
#                   only checked before a run: machine_busy in results.tsv (all CPUs,
#                   over the timed run) shows whether something else ran meanwhile
#   --lock-wait     seconds to wait for the lock and a quiet machine (default 3600)
#   --pg-waits      DIAGNOSTIC: part A's poller also samples what the database's active
#                   sessions wait on (pg_stat_activity) every 0.2 s, summed into
#                   $WORK/waits-<label>-a-auto.txt
#   --sql-log       DIAGNOSTIC: the workers log every SQL statement with its time
#                   (sqlx::query=debug), summed per kind by benches/send/sqlx_breakdown.py
#                   into $WORK/sql-<label>-<part>.md; the logging itself costs speed
#
# Needs: cargo (unless --bin), psql, python3, /usr/bin/time, /usr/sbin/smtp-sink
# (postfix; installed with apt-get when missing, its daemon not started, as
# benches/send_bench.sh does). Only loopback traffic. Everything is bounded in time, and
# an exit trap stops smtp-sink, the worker, the server, the poller and the client, drops
# the databases and removes the lock if this script holds it.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RECIPIENTS=1000000
DUE=100000
EVENTS=200000
EVENT_BATCH=1000
EVENT_RATE=0
CLIENT_THREADS=4
PARTS=a,b
PORT=2527
HTTP_PORT=8091
WORK=/tmp/mailcast-autobench
PG=postgres://postgres@127.0.0.1:5432
PG_DB=mailcast_autobench
RUN_TIMEOUT=1800
LABEL=default
BUILD=1
BIN=
EXTRA_WORKER_ARGS=
MAX_LOAD=1.5
LOCK_WAIT=3600
QUIET_WAIT=300
SQL_LOG=0
REFERENCE_FIRST=0
PG_WAITS=0

while [ $# -gt 0 ]; do
    case "$1" in
        --recipients) RECIPIENTS=$2; shift 2 ;;
        --due) DUE=$2; shift 2 ;;
        --events) EVENTS=$2; shift 2 ;;
        --event-batch) EVENT_BATCH=$2; shift 2 ;;
        --event-rate) EVENT_RATE=$2; shift 2 ;;
        --client-threads) CLIENT_THREADS=$2; shift 2 ;;
        --parts) PARTS=$2; shift 2 ;;
        --port) PORT=$2; shift 2 ;;
        --http-port) HTTP_PORT=$2; shift 2 ;;
        --work) WORK=$2; shift 2 ;;
        --pg) PG=${2%/}; shift 2 ;;
        --pg-db) PG_DB=$2; shift 2 ;;
        --run-timeout) RUN_TIMEOUT=$2; shift 2 ;;
        --label) LABEL=$2; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --bin) BIN=$2; BUILD=0; shift 2 ;;
        --worker-args) EXTRA_WORKER_ARGS=$2; shift 2 ;;
        --max-load) MAX_LOAD=$2; shift 2 ;;
        --lock-wait) LOCK_WAIT=$2; shift 2 ;;
        --sql-log) SQL_LOG=1; shift ;;
        --reference-first) REFERENCE_FIRST=1; shift ;;
        --pg-waits) PG_WAITS=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

for n in "$RECIPIENTS" "$DUE" "$EVENTS" "$EVENT_BATCH" "$CLIENT_THREADS"; do
    [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "sizes must be positive integers, not '$n'" >&2; exit 2; }
done
[[ "$EVENT_RATE" =~ ^[0-9]+$ ]] || { echo "--event-rate must be a whole number of events/s" >&2; exit 2; }
[ "$DUE" -le "$RECIPIENTS" ] || { echo "--due ($DUE) must not exceed --recipients ($RECIPIENTS)" >&2; exit 2; }

PG_DB_B=${PG_DB}_b
A_ORDER=
[ "$REFERENCE_FIRST" = 1 ] && A_ORDER=-ref-first
A_MOVED_RATE=- A_SENT_RATE=- A_REF_RATE=- A_LOAD=-
FROM=news@shop.example.com
LOCK=/tmp/mailcast-bench.lock
mkdir -p "$WORK"
RESULTS=$WORK/results.tsv
LOG=$WORK/bench.log
STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
export PGOPTIONS="-c client_min_messages=warning" NO_COLOR=1 RUST_LOG=${RUST_LOG:-mailcast=info,apalis=warn,sqlx=warn}

WORKER_LOG_FILTER=$RUST_LOG
[ "$SQL_LOG" = 1 ] && WORKER_LOG_FILTER=$RUST_LOG,sqlx::query=debug

say() { printf '[%s] %s\n' "$(date +%T)" "$*" | tee -a "$LOG" >&2; }
die() { say "FAILED: $*"; exit 1; }

# --- cleanup ------------------------------------------------------------------------
SINK_PID=
WORKER_PID=       # the mailcast process (child of /usr/bin/time)
WORKER_TIME_PID=  # /usr/bin/time
SERVE_PID=
SERVE_TIME_PID=
POLL_PID=
CLIENT_PID=
PQ_PID=
LOCK_HELD=0
PG_USED=0
POLICY_CREATED=0
stop_pid() { # pid: SIGINT, then SIGKILL after up to 5 s
    local pid=$1 waited=0
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
    kill -INT "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null && [ $waited -lt 50 ]; do sleep 0.1; waited=$((waited + 1)); done
    kill -KILL "$pid" 2>/dev/null || true
}
cleanup() {
    set +e
    [ -n "$CLIENT_PID" ] && kill -KILL "$CLIENT_PID" 2>/dev/null
    [ -n "$POLL_PID" ] && { touch "$WORK/stop-poll"; sleep 0.2; kill "$POLL_PID" 2>/dev/null; }
    [ -n "$PQ_PID" ] && kill "$PQ_PID" 2>/dev/null
    for pid in $WORKER_PID $SERVE_PID $SINK_PID; do stop_pid "$pid"; done
    for pid in $WORKER_TIME_PID $SERVE_TIME_PID; do kill -0 "$pid" 2>/dev/null && kill "$pid" 2>/dev/null; done
    if [ "$PG_USED" = 1 ]; then
        psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1
        psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $PG_DB_B WITH (FORCE)" >/dev/null 2>&1
    fi
    [ "$POLICY_CREATED" = 1 ] && rm -f /usr/sbin/policy-rc.d
    [ "$LOCK_HELD" = 1 ] && rm -f "$LOCK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- tools --------------------------------------------------------------------------
install_postfix() {
    [ -x /usr/sbin/smtp-sink ] && return
    say "installing postfix (for smtp-sink); its daemon is not started"
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        POLICY_CREATED=1
    fi
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections 2>/dev/null || true
    timeout 900 apt-get update -qq >>"$LOG" 2>&1
    DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -q postfix >>"$LOG" 2>&1
    [ "$POLICY_CREATED" = 1 ] && rm -f /usr/sbin/policy-rc.d && POLICY_CREATED=0
    if postfix status >/dev/null 2>&1; then postfix stop >>"$LOG" 2>&1 || true; fi
}
need() { command -v "$1" >/dev/null || die "$1 is required ($2)"; }

install_postfix
need psql "apt-get install postgresql-client"
need python3 "apt-get install python3"
[ -x /usr/bin/time ] || DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -q time >>"$LOG" 2>&1
for p in "$PORT" "$HTTP_PORT"; do
    if ss -ltn 2>/dev/null | awk '{print $4}' | grep -q ":$p\$"; then
        die "port $p is already in use; pick another with --port / --http-port"
    fi
done
psql -qAt "$PG/postgres" -c "SELECT 1" >/dev/null || die "cannot reach PostgreSQL at $PG"

if [ -z "$BIN" ]; then
    if [ "$BUILD" = 1 ]; then
        say "building mailcast (release)"
        (cd "$ROOT" && timeout 3600 cargo build --release --bin mailcast) >>"$LOG" 2>&1 \
            || die "cargo build failed, see $LOG"
    fi
    BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/mailcast
fi
[ -x "$BIN" ] || die "no mailcast binary at $BIN"
cp "$BIN" "$WORK/mailcast"
MC=$WORK/mailcast
WORKER_FLAGS=(--smtp "smtp://127.0.0.1:$PORT")
# shellcheck disable=SC2206 # split on purpose: several flags in one argument
[ -n "$EXTRA_WORKER_ARGS" ] && WORKER_FLAGS+=($EXTRA_WORKER_ARGS)

# --- helpers ------------------------------------------------------------------------
load1() { cut -d' ' -f1 /proc/loadavg; }
below() { awk -v a="$1" -v b="$2" 'BEGIN{exit !(a < b)}'; }
secs_between() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", b-a}'; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN{if (s > 0) printf "%.0f", n/s; else print "-"}'; }
cpu_busy() { awk '/^cpu /{print $2+$3+$4+$7+$8, $5+$6}' /proc/stat; } # busy idle jiffies
busy_pct() { awk -v a="$1" -v b="$2" 'BEGIN{split(a,x," "); split(b,y," "); db=y[1]-x[1]; di=y[2]-x[2]; if (db+di>0) printf "%.0f", 100*db/(db+di); else print "-"}'; }
rss_mb() { awk '/^VmRSS:/{printf "%.1f", $2/1024}' "/proc/$1/status" 2>/dev/null || echo -; }
time_field() { # file field: from /usr/bin/time -v
    case "$2" in
        rss) awk -F': ' '/Maximum resident set size/{printf "%.1f", $2/1024}' "$1" ;;
        user) awk -F': ' '/User time/{print $2}' "$1" ;;
        sys) awk -F': ' '/System time/{print $2}' "$1" ;;
    esac
}

# The lock of every mailcast benchmark, and a machine quiet enough to measure on.
acquire_lock() { # what
    local deadline=$(( $(date +%s) + LOCK_WAIT )) said=0
    while :; do
        if [ ! -e "$LOCK" ] && below "$(load1)" "$MAX_LOAD"; then
            if ( set -o noclobber; echo "automation_bench pid $$ part $1 since $(date -u +%T)" >"$LOCK" ) 2>/dev/null; then
                LOCK_HELD=1
                say "lock taken for part $1 (load $(cut -d' ' -f1-3 /proc/loadavg))"
                return 0
            fi
        fi
        [ "$(date +%s)" -lt "$deadline" ] || die "no quiet machine within ${LOCK_WAIT}s (lock: $(cat "$LOCK" 2>/dev/null || echo none), load $(load1))"
        if [ $said = 0 ]; then
            say "waiting for $LOCK to go ($(cat "$LOCK" 2>/dev/null || echo 'absent')) and the load to fall below $MAX_LOAD (now $(load1))"
            said=1
        fi
        sleep 5
    done
}
release_lock() {
    if [ "$LOCK_HELD" = 1 ]; then rm -f "$LOCK"; LOCK_HELD=0; say "lock released"; fi
}
# Holding the lock: wait for this script's own set-up load (or anyone else's) to
# settle before timing; a machine that stays busy for --lock-wait fails the run.
wait_quiet() {
    local deadline=$(( $(date +%s) + LOCK_WAIT )) said=0
    while ! below "$(load1)" "$MAX_LOAD"; do
        [ "$(date +%s)" -lt "$deadline" ] || die "the load stayed at or above $MAX_LOAD for ${LOCK_WAIT}s (now $(load1))"
        if [ $said = 0 ] && [ "$(( deadline - $(date +%s) ))" -lt $(( LOCK_WAIT - QUIET_WAIT )) ]; then
            say "still waiting for the load to fall below $MAX_LOAD (now $(load1)); top: $(ps -eo pcpu,comm --sort=-pcpu | sed -n 2,4p | tr -s ' ' | tr '\n' ';')"
            said=1
        fi
        sleep 5
    done
}

start_sink() { # log file
    /usr/sbin/smtp-sink -u nobody -c -m 4096 "127.0.0.1:$PORT" 4096 >"$1" 2>&1 &
    SINK_PID=$!
    for _ in $(seq 50); do
        (echo >/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && return
        sleep 0.1
    done
    die "smtp-sink did not listen on 127.0.0.1:$PORT"
}
stop_sink() { kill "$SINK_PID" 2>/dev/null || true; wait "$SINK_PID" 2>/dev/null || true; SINK_PID=; }
sink_messages() { tr '\r' '\n' <"$1" | { grep -o 'mesg=[0-9]*' || echo mesg=0; } | tail -1 | cut -d= -f2; }

start_worker() { # url tag: the worker under /usr/bin/time -v; sets WORKER_PID, WORKER_TIME_PID
    local url=$1 tag=$2
    (
        export DATABASE_URL=$url RUST_LOG=$WORKER_LOG_FILTER
        exec /usr/bin/time -v -o "$WORK/worker-$tag.time" "$MC" worker "${WORKER_FLAGS[@]}"
    ) >"$WORK/worker-$tag.log" 2>&1 &
    WORKER_TIME_PID=$!
    WORKER_PID=
    for _ in $(seq 600); do
        [ -z "$WORKER_PID" ] && WORKER_PID=$(pgrep -P "$WORKER_TIME_PID" || true)
        [ -n "$WORKER_PID" ] && return 0
        kill -0 "$WORKER_TIME_PID" 2>/dev/null || break
        sleep 0.02
    done
    die "worker did not start, see $WORK/worker-$tag.log"
}
worker_ready() { # tag: waits (up to 60 s) for the worker's "worker started" line
    for _ in $(seq 600); do
        grep -q "worker started" "$WORK/worker-$1.log" && return 0
        kill -0 "$WORKER_PID" 2>/dev/null || break
        sleep 0.1
    done
    die "worker did not come up, see $WORK/worker-$1.log"
}
stop_worker() {
    local waited=0
    if [ -n "$WORKER_PID" ]; then
        kill -INT "$WORKER_PID" 2>/dev/null || true
        while kill -0 "$WORKER_PID" 2>/dev/null && [ $waited -lt 400 ]; do sleep 0.1; waited=$((waited + 1)); done
        kill -KILL "$WORKER_PID" 2>/dev/null || true
    fi
    wait "$WORKER_TIME_PID" 2>/dev/null || true
    WORKER_PID=; WORKER_TIME_PID=
}

# One persistent psql session (a coprocess): q SQL prints its one-line answer.
pq_open() { # url
    coproc PQ { exec psql -qAtX -v ON_ERROR_STOP=0 "$1" 2>&1; }
}
q() {
    printf '%s\n' "$1" >&"${PQ[1]}"
    local line
    IFS= read -r -t 30 line <&"${PQ[0]}" || die "no answer from psql to: $1"
    printf '%s\n' "$line"
}
pq_close() {
    [ -n "$PQ_PID" ] || return 0
    printf '\\q\n' >&"${PQ[1]}" 2>/dev/null || true
    wait "$PQ_PID" 2>/dev/null || true
    PQ_PID=
}

record() { # part figure value unit load
    [ -s "$RESULTS" ] || printf 'started\tlabel\tpart\trecipients\tdue\tevents\tfigure\tvalue\tunit\tload1_at_start\n' >"$RESULTS"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$STARTED" "$LABEL" "$1" "$RECIPIENTS" "$DUE" "$EVENTS" \
        "$2" "$3" "$4" "$5" >>"$RESULTS"
}

fresh_db() { # name
    PG_USED=1
    psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" >/dev/null
    psql -q "$PG/postgres" -c "CREATE DATABASE $1" >/dev/null
    "$MC" --database "$PG/$1" migrate >>"$LOG"
}

# N recipients benchN@<domain> (ids 1..N in a fresh database), country DE for the
# first `de`, US for the others; the topic newsletter and everyone's consent.
make_recipients() { # url n de prefix
    local url=$1 n=$2 de=$3 prefix=$4
    psql -q -v ON_ERROR_STOP=1 "$url" >>"$LOG" <<SQL
INSERT INTO topics (name, description) VALUES ('newsletter', 'bench') ON CONFLICT DO NOTHING;
INSERT INTO recipients (email, email_key, email_hash, first_name, country, created_at, updated_at, status)
SELECT e, e, encode(sha256(convert_to(e, 'UTF8')), 'hex'), 'Bench',
       CASE WHEN g <= $de THEN 'DE' ELSE 'US' END, t, t, 'active'
FROM generate_series(1, $n) g,
     LATERAL (SELECT '$prefix' || g || '@bench.example.com' AS e,
                     extract(epoch FROM now())::bigint - 86400 AS t) x
ORDER BY g;
INSERT INTO consents (recipient_id, topic_id, status, source, updated_at)
SELECT r.id, t.id, 'subscribed', 'bench', r.created_at
FROM recipients r, topics t WHERE t.name = 'newsletter';
SQL
}

# --- part A: due runs, then the campaign reference ----------------------------------
part_a() {
    local url=$PG/$PG_DB tag=$LABEL-a
    acquire_lock A
    say "A: set-up: $RECIPIENTS recipients, $DUE runs due now, $((RECIPIENTS - DUE)) due in 30 days"
    local s0 s1
    s0=$(date +%s.%N)
    fresh_db "$PG_DB"
    make_recipients "$url" "$RECIPIENTS" "$DUE" bench
    "$MC" --database "$url" template load "$ROOT/templates/weekly-picks" >>"$LOG"
    "$MC" --database "$url" segment save bench-due 'country == "DE"' --description "the due ones" >>"$LOG"
    cat >"$WORK/bench-due.toml" <<'TOML'
# automation_bench.sh part A: a condition for this one recipient, then a message.
name = "bench-due"
description = "benchmark: if, then send"
from = { email = "news@shop.example.com", name = "Northwind" }
trigger = { event = "cart_add" }

[[step]]
id = "check"
if = 'country != "ZZ"'
else = "exit"

[[step]]
id = "picks"
send = { template = "weekly-picks", kind = "marketing", topic = "newsletter" }
TOML
    "$MC" --database "$url" automation load "$WORK/bench-due.toml" >>"$LOG" 2>&1 \
        || die "automation load refused, see $LOG"
    local t_start t_due t_later
    t_start=$(( $(date +%s) - 60 ))
    t_due=$t_start
    t_later=$(( t_start + 30 * 86400 ))
    psql -q -v ON_ERROR_STOP=1 "$url" >>"$LOG" <<SQL
INSERT INTO automation_runs (automation_id, version_id, recipient_id, ordinal, trigger_key,
                             status, step, step_entered_at, due_at, started_at)
SELECT a.id, a.version_id, r.id, 1, 'bench', 'active', 0, $t_start,
       CASE WHEN r.country = 'DE' THEN $t_due ELSE $t_later END, $t_start
FROM recipients r, automations a WHERE a.name = 'bench-due' ORDER BY r.id;
VACUUM ANALYZE;
SQL
    local due_now
    due_now=$(psql -qAt "$url" -c "SELECT count(*) FROM automation_runs WHERE status = 'active' AND due_at <= $t_due")
    [ "$due_now" = "$DUE" ] || die "A: $due_now runs due, expected $DUE"
    "$MC" --database "$url" campaign create bench-ref --template weekly-picks --segment bench-due \
        --topic newsletter --from-email "$FROM" --from-name Northwind >>"$LOG"
    s1=$(date +%s.%N)
    say "A: set-up took $(secs_between "$s0" "$s1") s"

    pq_open "$url"
    if [ "$REFERENCE_FIRST" = 1 ]; then
        a_reference "$url" "$tag"
        a_automation "$url" "$tag" "$t_due"
    else
        a_automation "$url" "$tag" "$t_due"
        a_reference "$url" "$tag"
    fi
    pq_close
    local ratio_moved ratio_sent
    ratio_moved=$(awk -v a="$A_MOVED_RATE" -v b="$A_REF_RATE" 'BEGIN{if (b+0 > 0 && a+0 > 0) printf "%.2f", a/b; else print "-"}')
    ratio_sent=$(awk -v a="$A_SENT_RATE" -v b="$A_REF_RATE" 'BEGIN{if (b+0 > 0 && a+0 > 0) printf "%.2f", a/b; else print "-"}')
    record "A-ratio$A_ORDER" runs_moved_on_per_campaign_msg "$ratio_moved" ratio "$A_LOAD"
    record "A-ratio$A_ORDER" handed_to_smtp_per_campaign_msg "$ratio_sent" ratio "$A_LOAD"
    psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null
    release_lock
}

# A1: the automation's due runs (sets A_MOVED_RATE, A_SENT_RATE, A_LOAD).
a_automation() { # url tag t_due
    local url=$1 tag=$2 t_due=$3
    wait_quiet
    local load_a busy0 busy1 t0 t_moved="" t_sent="" line now remaining sent settled deadline
    load_a=$(load1)
    start_sink "$WORK/sink-$tag-auto.out"
    local samples=$WORK/samples-$tag-auto.txt
    : >"$samples"
    [ "$PG_WAITS" = 1 ] && : >"$WORK/waits-$tag-auto.raw"
    busy0=$(cpu_busy)
    t0=$(date +%s.%N)
    start_worker "$url" "$tag-auto"
    local rss_first="" rss_mid="" rss_last="" rss
    deadline=$(( $(date +%s) + RUN_TIMEOUT ))
    while :; do
        line=$(q "SELECT extract(epoch FROM clock_timestamp())::numeric(20,3),
                    (SELECT count(*) FROM automation_runs WHERE status = 'active' AND due_at <= $t_due),
                    count(*) FILTER (WHERE d.status = 'sent'),
                    count(*) FILTER (WHERE d.status NOT IN ('pending', 'sending', 'deferred'))
                  FROM deliveries d JOIN automation_campaigns ac ON ac.campaign_id = d.campaign_id;")
        IFS='|' read -r now remaining sent settled <<<"$line"
        [[ "$remaining" =~ ^[0-9]+$ ]] || die "A: unexpected answer from psql: $line"
        rss=$(rss_mb "$WORKER_PID")
        [ -z "$rss_first" ] && [ "$rss" != - ] && rss_first=$rss
        [ -z "$rss_mid" ] && [ $((DUE - remaining)) -ge $((DUE / 2)) ] && rss_mid=$rss
        [ "$rss" != - ] && rss_last=$rss
        printf '%s\t%s\t%s\t%s\t%s\n' "$now" "$((DUE - remaining))" "$sent" "$settled" "$rss" >>"$samples"
        if [ "$PG_WAITS" = 1 ]; then
            q "SELECT coalesce(string_agg(w || '=' || n, ' '), 'idle') FROM (SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU') w, count(*) n FROM pg_stat_activity WHERE datname = current_database() AND state = 'active' AND pid <> pg_backend_pid() GROUP BY 1) x;" >>"$WORK/waits-$tag-auto.raw"
        fi
        [ -z "$t_moved" ] && [ "$remaining" = 0 ] && t_moved=$now
        [ -z "$t_sent" ] && [ "$sent" -ge "$DUE" ] && t_sent=$now
        [ -n "$t_moved" ] && [ "$settled" -ge "$DUE" ] && break
        kill -0 "$WORKER_PID" 2>/dev/null || { say "A: the worker exited early, see $WORK/worker-$tag-auto.log"; break; }
        [ "$(date +%s)" -lt "$deadline" ] || { say "A: timeout after ${RUN_TIMEOUT}s"; break; }
        sleep 0.2
    done
    busy1=$(cpu_busy)
    stop_worker
    sleep 0.3
    local received
    received=$(sink_messages "$WORK/sink-$tag-auto.out")
    stop_sink
    [ -n "$t_moved" ] || die "A: the due runs were not all moved on (last sample: $line)"
    local ends failed_ledger
    ends=$(q "SELECT string_agg(coalesce(end_reason, 'active') || ' ' || n, ', ') FROM (SELECT status, end_reason, count(*) n FROM automation_runs WHERE due_at IS NULL OR due_at <= $t_due GROUP BY 1, 2 ORDER BY 1, 2) x;")
    failed_ledger=$(q "SELECT coalesce(string_agg(status || ' ' || n, ', '), 'none') FROM (SELECT d.status, count(*) n FROM deliveries d JOIN automation_campaigns ac ON ac.campaign_id = d.campaign_id GROUP BY 1 ORDER BY 1) x;")
    local ended
    ended=$(q "SELECT count(*) FROM automation_runs WHERE status = 'ended';")
    [ "$ended" = "$DUE" ] || say "WARNING A: $ended runs ended, expected $DUE ($ends)"
    [ "$received" = "$DUE" ] || say "WARNING A: smtp-sink received $received messages, expected $DUE"
    local moved_s sent_s moved_rate sent_rate auto_rss auto_user auto_sys auto_busy
    moved_s=$(secs_between "$t0" "$t_moved")
    moved_rate=$(rate "$DUE" "$moved_s")
    if [ -n "$t_sent" ]; then sent_s=$(secs_between "$t0" "$t_sent"); sent_rate=$(rate "$DUE" "$sent_s")
    else sent_s=-; sent_rate=-; say "WARNING A: never $DUE deliveries sent ($failed_ledger)"; fi
    auto_rss=$(time_field "$WORK/worker-$tag-auto.time" rss)
    auto_user=$(time_field "$WORK/worker-$tag-auto.time" user)
    auto_sys=$(time_field "$WORK/worker-$tag-auto.time" sys)
    auto_busy=$(busy_pct "$busy0" "$busy1")
    say "A automation: $DUE runs moved on in ${moved_s}s = $moved_rate runs/s; handed to SMTP in ${sent_s}s = $sent_rate runs/s; worker max RSS $auto_rss MB (samples: first $rss_first, half-way $rss_mid, last $rss_last MB), cpu ${auto_user}+${auto_sys}s, machine ${auto_busy}% busy, load at start $load_a; runs: $ends; ledger: $failed_ledger; smtp-sink: $received"
    [ "$SQL_LOG" = 1 ] && python3 "$ROOT/benches/send/sqlx_breakdown.py" "$WORK/worker-$tag-auto.log" "$moved_s" >"$WORK/sql-$tag-auto.md"
    if [ "$PG_WAITS" = 1 ]; then
        tr ' ' '\n' <"$WORK/waits-$tag-auto.raw" | awk -F= 'NF == 2 {n[$1] += $2; t += $2} END {for (k in n) printf "%6d %5.1f%%  %s\n", n[k], 100 * n[k] / t, k}' \
            | sort -rn >"$WORK/waits-$tag-auto.txt"
        say "A: database sessions sampled (active, by wait): $(head -5 "$WORK/waits-$tag-auto.txt" | tr -s ' ' | tr '\n' ';')"
    fi
    record "A-automation$A_ORDER" runs_moved_on_s "$moved_s" s "$load_a"
    record "A-automation$A_ORDER" runs_moved_on_per_s "$moved_rate" runs/s "$load_a"
    record "A-automation$A_ORDER" handed_to_smtp_s "$sent_s" s "$load_a"
    record "A-automation$A_ORDER" handed_to_smtp_per_s "$sent_rate" runs/s "$load_a"
    record "A-automation$A_ORDER" worker_max_rss "$auto_rss" MB "$load_a"
    record "A-automation$A_ORDER" worker_rss_first_mid_last "$rss_first/$rss_mid/$rss_last" MB "$load_a"
    record "A-automation$A_ORDER" worker_cpu_user_sys "$auto_user+$auto_sys" s "$load_a"
    record "A-automation$A_ORDER" machine_busy "$auto_busy" % "$load_a"
    record "A-automation$A_ORDER" smtp_sink_received "$received" messages "$load_a"
    A_MOVED_RATE=$moved_rate A_SENT_RATE=$sent_rate A_LOAD=$load_a
}

# A2: the reference campaign, same database and worker flags, a new worker (sets
# A_REF_RATE).
a_reference() { # url tag
    local url=$1 tag=$2
    wait_quiet
    local load_r status="" r0 r1 busy0 busy1 deadline received
    # Every worker also runs the automation engine: paused, the automation's due runs
    # (still there with --reference-first) stay where they are meanwhile.
    "$MC" --database "$url" automation pause bench-due >>"$LOG"
    load_r=$(load1)
    start_sink "$WORK/sink-$tag-ref.out"
    start_worker "$url" "$tag-ref"
    worker_ready "$tag-ref"
    busy0=$(cpu_busy)
    r0=$(date +%s.%N)
    "$MC" --database "$url" campaign schedule bench-ref >>"$LOG"
    deadline=$(( $(date +%s) + RUN_TIMEOUT ))
    while [ "$(date +%s)" -lt "$deadline" ]; do
        status=$(q "SELECT status FROM campaigns WHERE name = 'bench-ref';")
        case "$status" in done|expired|cancelled) break ;; esac
        kill -0 "$WORKER_PID" 2>/dev/null || break
        sleep 0.1
    done
    r1=$(date +%s.%N)
    busy1=$(cpu_busy)
    stop_worker
    sleep 0.3
    received=$(sink_messages "$WORK/sink-$tag-ref.out")
    stop_sink
    "$MC" --database "$url" automation resume bench-due >>"$LOG"
    [ "$status" = done ] || die "A: the reference campaign ended as '$status', see $WORK/worker-$tag-ref.log"
    local counts ref_sent ref_s ref_rate ref_rss ref_user ref_sys ref_busy
    counts=$("$MC" --database "$url" campaign status bench-ref | sed -n 2p)
    ref_sent=$(q "SELECT count(*) FROM deliveries d JOIN campaigns c ON c.id = d.campaign_id WHERE c.name = 'bench-ref' AND d.status = 'sent';")
    [ "$ref_sent" = "$DUE" ] || say "WARNING A: reference sent $ref_sent, expected $DUE ($counts)"
    ref_s=$(secs_between "$r0" "$r1")
    ref_rate=$(rate "$ref_sent" "$ref_s")
    ref_rss=$(time_field "$WORK/worker-$tag-ref.time" rss)
    ref_user=$(time_field "$WORK/worker-$tag-ref.time" user)
    ref_sys=$(time_field "$WORK/worker-$tag-ref.time" sys)
    ref_busy=$(busy_pct "$busy0" "$busy1")
    say "A reference: campaign of $ref_sent messages, schedule to done in ${ref_s}s = $ref_rate msg/s; worker max RSS $ref_rss MB, cpu ${ref_user}+${ref_sys}s, machine ${ref_busy}% busy, load at start $load_r; smtp-sink: $received"
    record "A-campaign$A_ORDER" schedule_to_done_s "$ref_s" s "$load_r"
    record "A-campaign$A_ORDER" messages_per_s "$ref_rate" msg/s "$load_r"
    record "A-campaign$A_ORDER" worker_max_rss "$ref_rss" MB "$load_r"
    record "A-campaign$A_ORDER" worker_cpu_user_sys "$ref_user+$ref_sys" s "$load_r"
    record "A-campaign$A_ORDER" machine_busy "$ref_busy" % "$load_r"
    record "A-campaign$A_ORDER" smtp_sink_received "$received" messages "$load_r"
    A_REF_RATE=$ref_rate
}

# --- part B: event ingestion ---------------------------------------------------------
write_b_automations() {
    # Mirrored in events_client.py's AUTOMATIONS: keep both in step.
    cat >"$WORK/b-cart-any.toml" <<'TOML'
name = "b-cart-any"
from = { email = "shop@shop.example.com", name = "Northwind Shop" }
trigger = { event = "cart_add" }
entry = "once per 7d"

[[step]]
wait = "1d"

[[step]]
send = { template = "weekly-picks", kind = "marketing", topic = "newsletter" }
TOML
    cat >"$WORK/b-cart-shoes.toml" <<'TOML'
name = "b-cart-shoes"
from = { email = "shop@shop.example.com", name = "Northwind Shop" }
trigger = { event = "cart_add", category = "shoes" }
entry = "once per 7d"
goal = { event = "purchase" }

[[step]]
wait_for = { event = "purchase", timeout = "4h" }
on_event = "exit"

[[step]]
send = { template = "weekly-picks", kind = "marketing", topic = "newsletter" }
TOML
    cat >"$WORK/b-view-sku.toml" <<'TOML'
name = "b-view-sku"
from = { email = "shop@shop.example.com", name = "Northwind Shop" }
trigger = { event = "view", sku = "SH-1001" }

[[step]]
wait = "2d"

[[step]]
send = { template = "weekly-picks", kind = "marketing", topic = "newsletter" }
TOML
    cat >"$WORK/b-view-outdoor.toml" <<'TOML'
name = "b-view-outdoor"
from = { email = "shop@shop.example.com", name = "Northwind Shop" }
trigger = { event = "view", category = "outdoor" }
entry = "once per 30d"
goal = { event = "purchase", category = "outdoor" }

[[step]]
wait = "3d"

[[step]]
if = 'country != "ZZ"'
else = "exit"

[[step]]
send = { template = "weekly-picks", kind = "marketing", topic = "newsletter" }
TOML
    cat >"$WORK/b-purchase-big.toml" <<'TOML'
name = "b-purchase-big"
from = { email = "shop@shop.example.com", name = "Northwind Shop" }
trigger = { event = "purchase", min_amount = 100.0 }
entry = "every time"

[[step]]
wait = "7d"

[[step]]
send = { template = "weekly-picks", kind = "marketing", topic = "newsletter" }
TOML
}

write_client() {
    cat >"$WORK/events_client.py" <<'PY'
"""automation_bench.sh part B: POST events to /api/events from threads, one keep-alive
connection each; one line per batch: index, sent, accepted (unix s), events, runs it
should start, events the server says it inserted."""
import csv, http.client, json, random, sys, threading, time

host, port, key, n_events, batch, threads, products_csv, out_path, rate = sys.argv[1:10]
port, n_events, batch, threads, rate = int(port), int(n_events), int(batch), int(threads), float(rate)

# (kind, sku, category, min_amount_cents): the triggers of $WORK/b-*.toml.
AUTOMATIONS = [
    ("cart_add", None, None, None),      # b-cart-any
    ("cart_add", None, "shoes", None),   # b-cart-shoes
    ("view", "SH-1001", None, None),     # b-view-sku
    ("view", None, "outdoor", None),     # b-view-outdoor
    ("purchase", None, None, 10000),     # b-purchase-big
]

def runs_started(kind, sku, category, cents):
    n = 0
    for k, s, c, m in AUTOMATIONS:
        if k == kind and (s is None or s == sku) and (c is None or c == category) \
                and (m is None or (cents is not None and cents >= m)):
            n += 1
    return n

products = []
with open(products_csv, newline="") as f:
    for row in csv.DictReader(f):
        units, _, frac = row["price"].partition(".")
        products.append((row["sku"], int(units) * 100 + int((frac + "00")[:2]), row["category"]))

rng = random.Random(16)
now = int(time.time())
batches = []
for start in range(0, n_events, batch):
    events, expected = [], 0
    for i in range(start, min(start + batch, n_events)):
        r = rng.random()
        kind = "view" if r < 0.60 else "cart_add" if r < 0.85 else "purchase"
        sku, cents, category = rng.choice(products)
        event = {"event_id": f"ab-{i}", "email": f"ev{i + 1}@bench.example.com",
                 "kind": kind, "sku": sku, "occurred_at": now}
        if kind == "purchase":
            event["amount"] = f"{cents // 100}.{cents % 100:02d}"
        events.append(event)
        expected += runs_started(kind, sku, category, cents if kind == "purchase" else None)
    batches.append((json.dumps({"events": events}).encode(), len(events), expected))

results = [None] * len(batches)
next_index = [0]
lock = threading.Lock()
failures = []
headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

def worker():
    conn = http.client.HTTPConnection(host, port, timeout=120)
    while True:
        with lock:
            i = next_index[0]
            next_index[0] += 1
        if i >= len(batches) or failures:
            break
        body, n, expected = batches[i]
        if rate > 0:  # batch i may start once i * batch events' worth of time has passed
            delay = first + i * batch / rate - time.time()
            if delay > 0:
                time.sleep(delay)
        for attempt in range(3):
            sent = time.time()
            try:
                conn.request("POST", "/api/events", body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=120)
                if attempt == 2:
                    failures.append(f"batch {i}: {e}")
                continue
            accepted = time.time()
            if resp.status != 200:
                failures.append(f"batch {i}: HTTP {resp.status} {data[:300]!r}")
                break
            inserted = json.loads(data).get("inserted", -1)
            results[i] = (i, sent, accepted, n, expected, inserted)
            break
    conn.close()

print(f"client: {len(batches)} batches of up to {batch} events built; "
      f"{sum(b[2] for b in batches)} runs expected"
      + (f"; paced at {rate:.0f} events/s" if rate > 0 else ""), file=sys.stderr, flush=True)
first = time.time()
pool = [threading.Thread(target=worker) for _ in range(threads)]
for t in pool:
    t.start()
for t in pool:
    t.join()
with open(out_path, "w") as out:
    out.write("batch\tsent\taccepted\tevents\texpected_runs\tinserted\n")
    for r in results:
        if r is not None:
            out.write("%d\t%.6f\t%.6f\t%d\t%d\t%d\n" % r)
print(f"client: first request at {first:.6f}", file=sys.stderr)
if failures:
    print("client: FAILED: " + "; ".join(failures[:5]), file=sys.stderr)
    sys.exit(1)
PY
    cat >"$WORK/events_delays.py" <<'PY'
"""automation_bench.sh part B: per batch, from acceptance to the sample at which the run
count reaches the runs expected up to it. Prints key=value lines."""
import bisect, sys

batches_path, samples_path, first_request = sys.argv[1], sys.argv[2], float(sys.argv[3])
batches = []
with open(batches_path) as f:
    next(f)
    for line in f:
        _, sent, accepted, n, expected, inserted = line.split("\t")
        batches.append((float(accepted), int(n), int(expected), int(inserted)))
batches.sort()
samples = []
for line in open(samples_path):
    parts = line.split()
    if len(parts) == 2:
        samples.append((float(parts[0]), int(parts[1])))
times = [s[0] for s in samples]
delays, missing, cum = [], 0, 0
for accepted, n, expected, _ in batches:
    cum += expected
    i = bisect.bisect_left(times, accepted)
    while i < len(samples) and samples[i][1] < cum:
        i += 1
    if i == len(samples):
        missing += 1
    else:
        delays.append(samples[i][0] - accepted)
delays.sort()

def pct(p):
    if not delays:
        return float("nan")
    k = max(0, min(len(delays) - 1, int(-(-p * len(delays) // 100)) - 1))  # nearest rank
    return delays[k]

events = sum(b[1] for b in batches)
inserted = sum(b[3] for b in batches)
last_accept = batches[-1][0] if batches else first_request
span = last_accept - first_request
print(f"events={events}")
print(f"inserted={inserted}")
print(f"expected_runs={cum}")
print(f"batches={len(batches)}")
print(f"ingest_s={span:.3f}")
print(f"events_per_s={events / span:.0f}" if span > 0 else "events_per_s=-")
print(f"delay_median_s={pct(50):.3f}")
print(f"delay_p95_s={pct(95):.3f}")
print(f"delay_max_s={delays[-1]:.3f}" if delays else "delay_max_s=nan")
print(f"batches_without_runs={missing}")
print(f"samples={len(samples)}")
if samples:
    print(f"final_count={samples[-1][1]}")
    reach = next((t for t, c in samples if c >= cum), None)
    print(f"all_runs_after_last_accept_s={reach - last_accept:.3f}" if reach else "all_runs_after_last_accept_s=-")
PY
}

part_b() {
    local url=$PG/$PG_DB_B tag=$LABEL-b bpart=B-events
    [ "$EVENT_RATE" -gt 0 ] && bpart=B-events-paced-$EVENT_RATE
    acquire_lock B
    say "B: set-up: $EVENTS recipients, products, five automations, an API key"
    local s0 s1
    s0=$(date +%s.%N)
    fresh_db "$PG_DB_B"
    make_recipients "$url" "$EVENTS" 0 ev
    "$MC" --database "$url" import products "$ROOT/fixtures/products.csv" >>"$LOG" 2>&1
    "$MC" --database "$url" template load "$ROOT/templates/weekly-picks" >>"$LOG"
    write_b_automations
    "$MC" --database "$url" automation load "$WORK"/b-*.toml >>"$LOG" 2>&1 \
        || die "B: automation load refused, see $LOG"
    local key
    key=$("$MC" --database "$url" api-key create bench 2>>"$LOG")
    [ -n "$key" ] || die "B: no API key"
    psql -q "$url" -c "VACUUM ANALYZE" >>"$LOG"
    write_client
    s1=$(date +%s.%N)
    say "B: set-up took $(secs_between "$s0" "$s1") s"

    wait_quiet
    local load_b busy0 busy1
    load_b=$(load1)
    start_sink "$WORK/sink-$tag.out"
    start_worker "$url" "$tag"
    worker_ready "$tag"
    (
        export DATABASE_URL=$url
        exec /usr/bin/time -v -o "$WORK/serve-$tag.time" "$MC" serve --listen "127.0.0.1:$HTTP_PORT"
    ) >"$WORK/serve-$tag.log" 2>&1 &
    SERVE_TIME_PID=$!
    local up=0
    for _ in $(seq 300); do
        [ -z "$SERVE_PID" ] && SERVE_PID=$(pgrep -P "$SERVE_TIME_PID" || true)
        if python3 - "$HTTP_PORT" <<'PY' 2>/dev/null
import sys, urllib.request
urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/healthz", timeout=1)
PY
        then up=1; break; fi
        kill -0 "$SERVE_TIME_PID" 2>/dev/null || break
        sleep 0.1
    done
    [ "$up" = 1 ] || die "B: mailcast serve did not answer /healthz, see $WORK/serve-$tag.log"

    # The poller: one psql session, a sample every 50 ms (see the header).
    local samples=$WORK/samples-$tag.txt
    rm -f "$WORK/stop-poll"
    (
        {
            echo '\set w 0'
            echo '\set base 0'
            end=$(( $(date +%s) + RUN_TIMEOUT ))
            while [ ! -e "$WORK/stop-poll" ] && [ "$(date +%s)" -lt "$end" ]; do
                echo "SELECT extract(epoch FROM clock_timestamp())::numeric(20,3) AS t, :base + count(*) AS base, COALESCE(max(id), :w) AS w FROM automation_runs WHERE id > :w \\gset"
                echo '\echo :t :base'
                sleep 0.05
            done
        } | psql -qAtX "$url" >"$samples" 2>>"$LOG"
    ) &
    POLL_PID=$!
    sleep 0.3

    busy0=$(cpu_busy)
    local first_request client_rc=0
    say "B: posting $EVENTS events in batches of $EVENT_BATCH from $CLIENT_THREADS threads$([ "$EVENT_RATE" -gt 0 ] && echo ", at most $EVENT_RATE events/s")"
    timeout "$RUN_TIMEOUT" python3 "$WORK/events_client.py" 127.0.0.1 "$HTTP_PORT" "$key" "$EVENTS" \
        "$EVENT_BATCH" "$CLIENT_THREADS" "$ROOT/fixtures/products.csv" "$WORK/batches-$tag.tsv" "$EVENT_RATE" \
        2>"$WORK/client-$tag.log" &
    CLIENT_PID=$!
    wait "$CLIENT_PID" || client_rc=$?
    CLIENT_PID=
    cat "$WORK/client-$tag.log" >>"$LOG"
    [ "$client_rc" = 0 ] || die "B: the client failed ($client_rc), see $WORK/client-$tag.log"
    first_request=$(sed -n 's/^client: first request at //p' "$WORK/client-$tag.log")
    local expected
    expected=$(awk -F'\t' 'NR>1{s+=$5} END{print s+0}' "$WORK/batches-$tag.tsv")
    # Wait (bounded) until the runs of every event exist.
    local deadline=$(( $(date +%s) + RUN_TIMEOUT )) last=0
    while [ "$(date +%s)" -lt "$deadline" ]; do
        last=$(tail -1 "$samples" 2>/dev/null | awk '{print $2+0}')
        [ "${last:-0}" -ge "$expected" ] && break
        kill -0 "$WORKER_PID" 2>/dev/null || { say "B: the worker exited early"; break; }
        sleep 0.2
    done
    sleep 0.5
    busy1=$(cpu_busy)
    touch "$WORK/stop-poll"
    wait "$POLL_PID" 2>/dev/null || true
    POLL_PID=
    local real_count
    real_count=$(psql -qAt "$url" -c "SELECT count(*) FROM automation_runs")
    local last_sample
    last_sample=$(tail -1 "$samples" | awk '{print $2}')
    [ "$real_count" = "$last_sample" ] || say "WARNING B: incremental count $last_sample, count(*) $real_count"
    [ "$real_count" = "$expected" ] || say "WARNING B: $real_count runs exist, the client expected $expected"
    local per_automation
    per_automation=$(psql -qAt "$url" -c "SELECT string_agg(a.name || ' ' || n, ', ' ORDER BY a.name) FROM (SELECT automation_id, count(*) n FROM automation_runs GROUP BY 1) r JOIN automations a ON a.id = r.automation_id")
    stop_pid "$SERVE_PID"; wait "$SERVE_TIME_PID" 2>/dev/null || true; SERVE_PID=; SERVE_TIME_PID=
    stop_worker
    stop_sink

    python3 "$WORK/events_delays.py" "$WORK/batches-$tag.tsv" "$samples" "$first_request" >"$WORK/delays-$tag.txt"
    get() { sed -n "s/^$1=//p" "$WORK/delays-$tag.txt"; }
    local w_rss s_rss w_cpu s_cpu busy
    w_rss=$(time_field "$WORK/worker-$tag.time" rss)
    s_rss=$(time_field "$WORK/serve-$tag.time" rss)
    w_cpu="$(time_field "$WORK/worker-$tag.time" user)+$(time_field "$WORK/worker-$tag.time" sys)"
    s_cpu="$(time_field "$WORK/serve-$tag.time" user)+$(time_field "$WORK/serve-$tag.time" sys)"
    busy=$(busy_pct "$busy0" "$busy1")
    say "B: $(get events) events ($(get inserted) inserted) in $(get ingest_s)s = $(get events_per_s) events/s accepted; runs: $real_count (expected $expected; $per_automation); delay accepted → run exists: median $(get delay_median_s)s, p95 $(get delay_p95_s)s, max $(get delay_max_s)s ($(get batches) batches, $(get batches_without_runs) never reached, $(get samples) samples); all runs $(get all_runs_after_last_accept_s)s after the last acceptance; serve max RSS $s_rss MB cpu ${s_cpu}s; worker max RSS $w_rss MB cpu ${w_cpu}s; machine ${busy}% busy; load at start $load_b"
    [ "$SQL_LOG" = 1 ] && python3 "$ROOT/benches/send/sqlx_breakdown.py" "$WORK/worker-$tag.log" >"$WORK/sql-$tag.md"
    record "$bpart" events_accepted_per_s "$(get events_per_s)" events/s "$load_b"
    record "$bpart" ingest_s "$(get ingest_s)" s "$load_b"
    record "$bpart" delay_median "$(get delay_median_s)" s "$load_b"
    record "$bpart" delay_p95 "$(get delay_p95_s)" s "$load_b"
    record "$bpart" delay_max "$(get delay_max_s)" s "$load_b"
    record "$bpart" all_runs_after_last_accept "$(get all_runs_after_last_accept_s)" s "$load_b"
    record "$bpart" runs_started "$real_count" runs "$load_b"
    record "$bpart" runs_expected "$expected" runs "$load_b"
    record "$bpart" serve_max_rss "$s_rss" MB "$load_b"
    record "$bpart" serve_cpu_user_sys "$s_cpu" s "$load_b"
    record "$bpart" worker_max_rss "$w_rss" MB "$load_b"
    record "$bpart" worker_cpu_user_sys "$w_cpu" s "$load_b"
    record "$bpart" machine_busy "$busy" % "$load_b"
    psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $PG_DB_B WITH (FORCE)" >/dev/null
    release_lock
}

# --- main ---------------------------------------------------------------------------
# One function, read whole before it runs: editing this file during a run cannot
# change what the run does.
main() {
    say "automation benchmark: parts=$PARTS recipients=$RECIPIENTS due=$DUE events=$EVENTS batch=$EVENT_BATCH threads=$CLIENT_THREADS event-rate=${EVENT_RATE/#0/unlimited} worker-args='$EXTRA_WORKER_ARGS' label=$LABEL"
    say "machine: $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GB", $2/1048576}' /proc/meminfo), $(uname -sr); PostgreSQL $(psql -qAt "$PG/postgres" -c 'SHOW server_version') (autovacuum $(psql -qAt "$PG/postgres" -c 'SHOW autovacuum')); load $(cut -d' ' -f1-3 /proc/loadavg); binary $BIN ($(stat -c %y "$BIN" | cut -d. -f1))"
    case ",$PARTS," in *,a,*) part_a ;; esac
    case ",$PARTS," in *,b,*) part_b ;; esac

    echo
    echo "| part | figure | value | unit | target | load at start |"
    echo "|---|---|---:|---|---|---:|"
    awk -F'\t' -v s="$STARTED" -v l="$LABEL" '
        NR > 1 && $1 == s && $2 == l {
            target = ""
            if ($7 == "runs_moved_on_per_s" || $7 == "handed_to_smtp_per_s")
                target = ($8 + 0 >= 5000 ? "≥ 5,000: met" : "≥ 5,000: not met")
            if ($7 == "events_accepted_per_s" && $3 == "B-events")
                target = ($8 + 0 >= 10000 ? "≥ 10,000: met" : "≥ 10,000: not met")
            if ($7 == "delay_median")
                target = ($8 + 0 < 1 ? "< 1 s: met" : "< 1 s: not met")
            printf "| %s | %s | %s | %s | %s | %s |\n", $3, $7, $8, $9, target, $10
        }' "$RESULTS"
    say "results: $RESULTS; logs: $LOG"
}
main
exit 0
