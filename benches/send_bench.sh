#!/usr/bin/env bash
# Send benchmark: mailcast's whole delivery path against Postfix's smtp-sink on loopback,
# next to smtp-source pushing pre-built messages of the same size through the same
# number of connections. Results and their reading: benches/SEND.md.
#
# What one run does, for each engine (SQLite, PostgreSQL) and each audience size N:
#   1. once per (engine, N): a template database with N generated recipients
#      (`mailcast fixtures generate` + `mailcast import recipients`), the weekly-picks
#      template and a draft campaign `bench` addressed to everyone (no topic, no segment);
#   2. per run: a fresh copy of that database (SQLite: file copy; PostgreSQL:
#      CREATE DATABASE … TEMPLATE), a fresh smtp-sink on 127.0.0.1:PORT, then
#      `mailcast worker --smtp smtp://127.0.0.1:PORT --concurrency C …` under
#      /usr/bin/time -v; the clock starts right before `mailcast campaign schedule bench`
#      and stops when the campaign's status is `done` (polled every 0.1 s in the
#      database): messages/s end to end, ledger included (freezing the audience, claims,
#      outcomes, apalis polling). The ledger must say sent = audience, and smtp-sink must
#      have received as many messages;
#   3. in the same run, against the same smtp-sink: `smtp-source -d -s C -m SENT -F MSG`,
#      MSG being one .eml the weekly-picks template rendered for a generated recipient in
#      an outbox run (the median-sized of 200), so both sides move messages of the same
#      size over C reused connections;
#   4. one TSV line per run in $WORK/results.tsv, and a table of medians at the end;
#      each run's worker log, /usr/bin/time output and smtp-sink counters stay in $WORK
#      as worker-<label>-<engine>-<N>-<run>.log/.time and sink-….out.
#
# Usage:
#   benches/send_bench.sh [--engines sqlite,postgres] [--sizes 10000,100000] [--runs 2]
#                         [--connections 8] [--slots N] [--batch-size N] [--port 2526]
#                         [--work DIR] [--pg URL] [--pg-db NAME] [--run-timeout S] [--label TEXT]
#                         [--no-build] [--bin PATH] [--nodelay-shim] [--perf] [--sql-log]
#                         [--worker-args "ARGS"]
#   --connections   worker --concurrency and smtp-source -s (default 8)
#   --slots, --batch-size   passed to `mailcast worker` when given (else its defaults)
#   --worker-args   more flags for `mailcast worker`, split on spaces (e.g.
#                   "--frequency-cap 3/7d" to measure the cap's cost)
#   --pg            server URL without database (default postgres://postgres@127.0.0.1:5432)
#   --pg-db         database the script creates and drops, with NAME_tpl beside it
#                   (default mailcast_sendbench); give each concurrent invocation its own
#   --run-timeout   seconds one worker run may take before it is abandoned (default 1800)
#   --nodelay-shim  DIAGNOSTIC: LD_PRELOAD benches/send/nodelay_shim.c into the worker so
#                   its SMTP sockets get TCP_NODELAY (mailcast itself unchanged)
#   --perf          DIAGNOSTIC: `perf record` the worker from schedule to done into
#                   $WORK/perf-<label>-<engine>-<N>-<run>.data (needs perf; PERF_ARGS overrides
#                   the default "-F 99 --call-graph dwarf,16384": the release build has
#                   no frame pointers, so -g alone misattributes)
#   --sql-log       DIAGNOSTIC: log every SQL statement with its time (sqlx::query=debug)
#                   and sum them per kind (benches/send/sqlx_breakdown.py) into
#                   $WORK/sql-<label>-<engine>-<N>-<run>.md; the logging itself costs some speed
#   --bin           use this mailcast binary instead of building target/release/mailcast
#
# Needs: cargo (unless --bin), sqlite3 (for polling SQLite), psql (for PostgreSQL),
# /usr/bin/time; installs postfix (for smtp-sink, smtp-source) with apt-get when missing,
# without letting the postfix daemon start. Only loopback traffic. Everything is bounded
# in time, and an exit trap stops smtp-sink and the worker and drops the databases.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
ENGINES=sqlite,postgres
SIZES=10000,100000
RUNS=2
CONNECTIONS=8
SLOTS=
BATCH=
PORT=2526
WORK=/tmp/mailcast-sendbench
PG=postgres://postgres@127.0.0.1:5432
PG_DB=mailcast_sendbench
RUN_TIMEOUT=1800
LABEL=default
BUILD=1
BIN=
SHIM=0
PERF=0
SQL_LOG=0
EXTRA_WORKER_ARGS=

while [ $# -gt 0 ]; do
    case "$1" in
        --engines) ENGINES=$2; shift 2 ;;
        --sizes) SIZES=$2; shift 2 ;;
        --runs) RUNS=$2; shift 2 ;;
        --connections) CONNECTIONS=$2; shift 2 ;;
        --slots) SLOTS=$2; shift 2 ;;
        --batch-size) BATCH=$2; shift 2 ;;
        --port) PORT=$2; shift 2 ;;
        --work) WORK=$2; shift 2 ;;
        --pg) PG=${2%/}; shift 2 ;;
        --pg-db) PG_DB=$2; shift 2 ;;
        --run-timeout) RUN_TIMEOUT=$2; shift 2 ;;
        --label) LABEL=$2; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --bin) BIN=$2; BUILD=0; shift 2 ;;
        --nodelay-shim) SHIM=1; shift ;;
        --perf) PERF=1; shift ;;
        --sql-log) SQL_LOG=1; shift ;;
        --worker-args) EXTRA_WORKER_ARGS=$2; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

PG_TPL=${PG_DB}_tpl
FROM=news@shop.example.com
NOW=2026-11-20T00:00:00Z   # fixed, so the generated recipients are the same every time
mkdir -p "$WORK"
RESULTS=$WORK/results.tsv
LOG=$WORK/bench.log
export PGOPTIONS="-c client_min_messages=warning" NO_COLOR=1 RUST_LOG=${RUST_LOG:-mailcast=info,apalis=warn,sqlx=warn}
WORKER_LOG_FILTER=$RUST_LOG
[ "$SQL_LOG" = 1 ] && WORKER_LOG_FILTER=$RUST_LOG,sqlx::query=debug

say() { printf '[%s] %s\n' "$(date +%T)" "$*" | tee -a "$LOG" >&2; }
die() { say "FAILED: $*"; exit 1; }

# --- cleanup ------------------------------------------------------------------------
SINK_PID=
WORKER_PID=
PERF_PID=
PG_USED=0
POLICY_CREATED=0
cleanup() {
    set +e
    for pid in $PERF_PID $WORKER_PID $SINK_PID; do
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            kill -INT "$pid" 2>/dev/null
            sleep 0.5
            kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
        fi
    done
    if [ "$PG_USED" = 1 ]; then
        psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $PG_DB" >/dev/null 2>&1
        psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $PG_TPL" >/dev/null 2>&1
    fi
    rm -f "$WORK"/run.db "$WORK"/run.db-* "$WORK"/tpl-*.db "$WORK"/tpl-*.db-* "$WORK"/outbox.db*
    [ "$POLICY_CREATED" = 1 ] && rm -f /usr/sbin/policy-rc.d
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- tools --------------------------------------------------------------------------
install_postfix() {
    [ -x /usr/sbin/smtp-sink ] && [ -x /usr/sbin/smtp-source ] && return
    say "installing postfix (for smtp-sink and smtp-source); its daemon is not started"
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        # Debian's hook that tells maintainer scripts not to start services.
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        POLICY_CREATED=1
    fi
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections 2>/dev/null || true
    timeout 900 apt-get update -qq >>"$LOG" 2>&1
    DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -q postfix >>"$LOG" 2>&1
    [ "$POLICY_CREATED" = 1 ] && rm -f /usr/sbin/policy-rc.d && POLICY_CREATED=0
    # Belt and braces: if a postfix master came up anyway, stop it.
    if postfix status >/dev/null 2>&1; then postfix stop >>"$LOG" 2>&1 || true; fi
}
need() { command -v "$1" >/dev/null || die "$1 is required ($2)"; }

install_postfix
need sqlite3 "apt-get install sqlite3"
[ -x /usr/bin/time ] || DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -q time >>"$LOG" 2>&1
case ",$ENGINES," in *,postgres,*) need psql "apt-get install postgresql-client" ;; esac
[ "$PERF" = 1 ] && need perf "apt-get install linux-perf"
if ss -ltn 2>/dev/null | awk '{print $4}' | grep -q ":$PORT\$"; then
    die "port $PORT is already in use; pick another with --port"
fi

if [ -z "$BIN" ]; then
    if [ "$BUILD" = 1 ]; then
        say "building mailcast (release)"
        (cd "$ROOT" && timeout 3600 cargo build --release --bin mailcast) >>"$LOG" 2>&1 \
            || die "cargo build failed, see $LOG"
    fi
    BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/mailcast
fi
# A private copy: a rebuild by someone else during the benchmark changes nothing here.
cp "$BIN" "$WORK/mailcast"
MC=$WORK/mailcast
SHIM_SO=
if [ "$SHIM" = 1 ]; then
    SHIM_SO=$WORK/nodelay_shim.so
    gcc -O2 -shared -fPIC -o "$SHIM_SO" "$ROOT/benches/send/nodelay_shim.c" -ldl
fi
WORKER_FLAGS=(--concurrency "$CONNECTIONS")
[ -n "$SLOTS" ] && WORKER_FLAGS+=(--slots "$SLOTS")
[ -n "$BATCH" ] && WORKER_FLAGS+=(--batch-size "$BATCH")
# shellcheck disable=SC2206 # split on purpose: several flags in one argument
[ -n "$EXTRA_WORKER_ARGS" ] && WORKER_FLAGS+=($EXTRA_WORKER_ARGS)

# --- helpers ------------------------------------------------------------------------
db_url() { # engine kind(tpl|run) n
    case "$1" in
        sqlite) if [ "$2" = tpl ]; then echo "$WORK/tpl-$3.db"; else echo "$WORK/run.db"; fi ;;
        postgres) if [ "$2" = tpl ]; then echo "$PG/$PG_TPL"; else echo "$PG/$PG_DB"; fi ;;
    esac
}
sql() { # engine url query
    case "$1" in
        sqlite) sqlite3 -cmd '.timeout 5000' "$2" "$3" ;;
        postgres) psql -qAt "$2" -c "$3" ;;
    esac
}
median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print "-"; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
cpu_busy() { awk '/^cpu /{print $2+$3+$4+$7+$8, $5+$6}' /proc/stat; } # busy idle jiffies

start_sink() { # log file
    # -m: more simultaneous sessions than any worker opens (default 256 would leave
    # extra connections in the listen queue); -c: counters on stdout.
    /usr/sbin/smtp-sink -u nobody -c -m 4096 "127.0.0.1:$PORT" 4096 >"$1" 2>&1 &
    SINK_PID=$!
    for _ in $(seq 50); do
        (echo >/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && return
        sleep 0.1
    done
    die "smtp-sink did not listen on 127.0.0.1:$PORT"
}
stop_sink() {
    kill "$SINK_PID" 2>/dev/null || true
    wait "$SINK_PID" 2>/dev/null || true
    SINK_PID=
}
sink_messages() { tr '\r' '\n' <"$1" | { grep -o 'mesg=[0-9]*' || echo mesg=0; } | tail -1 | cut -d= -f2; }
epoch() { if [ -n "$1" ]; then date -d "$1" +%s.%N 2>/dev/null || true; fi; }
first_time_of() { # log pattern: the timestamp of the first line matching, colour codes removed
    awk -v pat="$2" 'index($0, pat) && !found {gsub(/\x1b\[[0-9;]*m/, ""); print $1; found=1}' "$1"
}

# --- the message smtp-source sends --------------------------------------------------
make_message() {
    local msg=$WORK/message.eml
    [ -s "$msg" ] && return
    say "rendering sample messages (outbox run) for smtp-source"
    local fx=$WORK/fixtures-10000
    [ -s "$fx/recipients.csv" ] || "$MC" fixtures generate --recipients 10000 --out "$fx" --now "$NOW" >>"$LOG"
    head -201 "$fx/recipients.csv" >"$WORK/sample.csv"
    rm -rf "$WORK/outbox" "$WORK"/outbox.db*
    export DATABASE_URL=$WORK/outbox.db
    "$MC" import recipients "$WORK/sample.csv" >>"$LOG"
    "$MC" template load "$ROOT/templates/weekly-picks" >>"$LOG"
    "$MC" campaign create bench --template weekly-picks --from-email "$FROM" --from-name Northwind >>"$LOG"
    "$MC" worker --outbox "$WORK/outbox" >>"$LOG" 2>&1 &
    WORKER_PID=$!
    "$MC" campaign schedule bench >>"$LOG"
    for _ in $(seq 600); do
        [ "$(sql sqlite "$WORK/outbox.db" "SELECT status FROM campaigns WHERE name='bench'")" = done ] && break
        sleep 0.1
    done
    kill -INT "$WORKER_PID"; wait "$WORKER_PID" || true; WORKER_PID=
    unset DATABASE_URL
    local median_file
    median_file=$(find "$WORK/outbox" -name '*.eml' -printf '%s %p\n' | sort -n | awk '{a[NR]=$2} END {print a[int((NR+1)/2)]}')
    [ -n "$median_file" ] || die "the outbox run wrote no message"
    # smtp-source -F sends each line followed by CRLF (dot-stuffed): store it with LF.
    sed 's/\r$//' "$median_file" >"$msg"
    say "smtp-source message: $(wc -c <"$median_file") bytes as sent ($(basename "$median_file"))"
}

# --- template databases -------------------------------------------------------------
prepare_template() { # engine n
    local engine=$1 n=$2 url fx=$WORK/fixtures-$2
    url=$(db_url "$engine" tpl "$n")
    if [ ! -s "$fx/recipients.csv" ]; then
        say "generating $n recipients"
        "$MC" fixtures generate --recipients "$n" --out "$fx" --now "$NOW" >>"$LOG"
        rm -f "$fx/events.jsonl" # not needed here, and 1.7 GB at a million
    fi
    case "$engine" in
        sqlite) rm -f "$url" "$url"-* ;;
        postgres)
            PG_USED=1
            psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $PG_TPL" >/dev/null
            psql -q "$PG/postgres" -c "CREATE DATABASE $PG_TPL" >/dev/null ;;
    esac
    say "$engine: importing $n recipients"
    local t0 t1
    t0=$(date +%s.%N)
    DATABASE_URL=$url timeout "$RUN_TIMEOUT" "$MC" import recipients "$fx/recipients.csv" >>"$LOG"
    t1=$(date +%s.%N)
    say "$engine: import took $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}') s"
    DATABASE_URL=$url "$MC" template load "$ROOT/templates/weekly-picks" >>"$LOG"
    DATABASE_URL=$url "$MC" campaign create bench --template weekly-picks \
        --from-email "$FROM" --from-name Northwind >>"$LOG"
    [ "$engine" = sqlite ] && sqlite3 "$url" 'PRAGMA wal_checkpoint(TRUNCATE);' >/dev/null
    return 0
}

fresh_run_db() { # engine n
    local engine=$1 n=$2
    case "$engine" in
        sqlite)
            rm -f "$WORK"/run.db "$WORK"/run.db-*
            cp "$(db_url sqlite tpl "$n")" "$WORK/run.db" ;;
        postgres)
            psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $PG_DB" >/dev/null
            psql -q "$PG/postgres" -c "CREATE DATABASE $PG_DB TEMPLATE $PG_TPL" >/dev/null ;;
    esac
}

# --- one run ------------------------------------------------------------------------
run_once() { # engine n run
    local engine=$1 n=$2 run=$3 url tag
    url=$(db_url "$engine" run "$n")
    tag=$LABEL-$engine-$n-$run
    fresh_run_db "$engine" "$n"
    start_sink "$WORK/sink-$tag.out"

    local wlog=$WORK/worker-$tag.log wtime=$WORK/worker-$tag.time
    (
        [ -n "$SHIM_SO" ] && export LD_PRELOAD=$SHIM_SO
        export DATABASE_URL=$url RUST_LOG=$WORKER_LOG_FILTER
        exec /usr/bin/time -v -o "$wtime" "$MC" worker --smtp "smtp://127.0.0.1:$PORT" "${WORKER_FLAGS[@]}"
    ) >"$wlog" 2>&1 &
    local time_pid=$!
    local mc_pid=
    for _ in $(seq 300); do
        mc_pid=$(pgrep -P "$time_pid" || true)
        [ -n "$mc_pid" ] && grep -q "worker started" "$wlog" && break
        sleep 0.1
    done
    grep -q "worker started" "$wlog" || die "worker did not start, see $wlog"
    WORKER_PID=$mc_pid

    if [ "$PERF" = 1 ]; then
        perf record -q ${PERF_ARGS:--F 99 --call-graph dwarf,16384} -o "$WORK/perf-$tag.data" -p "$mc_pid" >>"$LOG" 2>&1 &
        PERF_PID=$!
        sleep 0.5
    fi

    local cpu0 cpu1 t0 t1 status=""
    cpu0=$(cpu_busy)
    t0=$(date +%s.%N)
    DATABASE_URL=$url "$MC" campaign schedule bench >>"$LOG"
    local deadline=$(( $(date +%s) + RUN_TIMEOUT ))
    while [ "$(date +%s)" -lt "$deadline" ]; do
        status=$(sql "$engine" "$url" "SELECT status FROM campaigns WHERE name='bench'" 2>/dev/null || true)
        case "$status" in done|expired|cancelled) break ;; esac
        kill -0 "$mc_pid" 2>/dev/null || break
        sleep 0.1
    done
    t1=$(date +%s.%N)
    cpu1=$(cpu_busy)
    if [ -n "$PERF_PID" ]; then kill -INT "$PERF_PID"; wait "$PERF_PID" 2>/dev/null || true; PERF_PID=; fi
    kill -INT "$mc_pid" 2>/dev/null || true
    local waited=0
    while kill -0 "$mc_pid" 2>/dev/null && [ $waited -lt 400 ]; do sleep 0.1; waited=$((waited + 1)); done
    kill -KILL "$mc_pid" 2>/dev/null || true
    wait "$time_pid" 2>/dev/null || true
    WORKER_PID=
    [ "$status" = done ] || die "$tag: campaign ended as '$status' (timeout ${RUN_TIMEOUT}s?), see $wlog"

    local counts audience sent other
    counts=$(DATABASE_URL=$url "$MC" campaign status bench | sed -n 2p)
    audience=$(sed -E 's/.*audience ([0-9]+).*/\1/' <<<"$counts")
    sent=$(sed -E 's/.*sent ([0-9]+).*/\1/' <<<"$counts")
    other=$(grep -oE '(pending|sending|deferred|failed|suppressed|unknown) [0-9]+' <<<"$counts" | awk '{s+=$2} END {print s+0}')
    local received
    received=$(sink_messages "$WORK/sink-$tag.out")
    [ "$other" = 0 ] && [ "$sent" = "$audience" ] || say "WARNING $tag: ledger not all sent: $counts"
    [ "$received" = "$sent" ] || say "WARNING $tag: smtp-sink received $received, ledger says $sent sent"

    # What each delivery's record (deliveries.rendered_with) adds, on average.
    local record_bytes
    record_bytes=$(sql "$engine" "$url" "SELECT ROUND(AVG(LENGTH(rendered_with)), 1) FROM deliveries" 2>/dev/null || echo -)

    local secs mc_rate rss cpu_user cpu_sys busy sessions
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b-a}')
    mc_rate=$(awk -v s="$secs" -v n="$sent" 'BEGIN{printf "%.0f", n/s}')
    rss=$(awk -F': ' '/Maximum resident set size/{printf "%.1f", $2/1024}' "$wtime")
    cpu_user=$(awk -F': ' '/User time/{print $2}' "$wtime")
    cpu_sys=$(awk -F': ' '/System time/{print $2}' "$wtime")
    busy=$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN{split(a,x," "); split(b,y," "); db=y[1]-x[1]; di=y[2]-x[2]; printf "%.0f", 100*db/(db+di)}')
    sessions=$(tr '\r' '\n' <"$WORK/sink-$tag.out" | { grep -o 'sess=[0-9]*' || echo sess=0; } | tail -1 | cut -d= -f2)
    # Phases from the worker's log: schedule → "campaign started" (apalis pick-up and
    # freezing the audience) → "campaign done".
    local started done_at freeze_s send_s
    started=$(first_time_of "$wlog" "campaign started")
    done_at=$(first_time_of "$wlog" "campaign done")
    local e_start e_done
    e_start=$(epoch "$started"); e_done=$(epoch "$done_at")
    freeze_s=$(awk -v a="$t0" -v b="$e_start" 'BEGIN{if (b=="") print "-"; else printf "%.2f", b-a}')
    send_s=$(awk -v a="$e_start" -v b="$e_done" 'BEGIN{if (a=="" || b=="") print "-"; else printf "%.2f", b-a}')

    # smtp-source: as many messages of the same size over as many reused connections.
    local s0 s1 src_secs src_rate before after
    before=$(sink_messages "$WORK/sink-$tag.out")
    s0=$(date +%s.%N)
    timeout "$RUN_TIMEOUT" /usr/sbin/smtp-source -d -s "$CONNECTIONS" -m "$sent" -F "$WORK/message.eml" \
        -f "$FROM" -t bench@example.com "127.0.0.1:$PORT" >>"$LOG" 2>&1 || die "smtp-source failed"
    s1=$(date +%s.%N)
    sleep 0.2
    after=$(sink_messages "$WORK/sink-$tag.out")
    [ "$((after - before))" = "$sent" ] || say "WARNING $tag: smtp-source delivered $((after - before)) of $sent"
    src_secs=$(awk -v a="$s0" -v b="$s1" 'BEGIN{printf "%.3f", b-a}')
    src_rate=$(awk -v s="$src_secs" -v n="$sent" 'BEGIN{printf "%.0f", n/s}')
    stop_sink

    local ratio
    ratio=$(awk -v a="$mc_rate" -v b="$src_rate" 'BEGIN{printf "%.3f", a/b}')
    [ -s "$RESULTS" ] || printf 'label\tengine\trecipients\trun\taudience\tsent\tmailcast_s\tmailcast_msg_s\tsmtp_source_s\tsmtp_source_msg_s\tratio\tpeak_rss_mb\tworker_user_s\tworker_sys_s\tmachine_busy_pct\tsink_sessions\tschedule_to_started_s\tstarted_to_done_s\tconnections\tslots\tbatch\tshim\trecord_bytes_avg\n' >"$RESULTS"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
        "$LABEL" "$engine" "$n" "$run" "$audience" "$sent" "$secs" "$mc_rate" "$src_secs" "$src_rate" "$ratio" \
        "$rss" "$cpu_user" "$cpu_sys" "$busy" "$sessions" "$freeze_s" "$send_s" \
        "$CONNECTIONS" "${SLOTS:-default}" "${BATCH:-default}" "$SHIM" "$record_bytes" >>"$RESULTS"
    if [ "$SQL_LOG" = 1 ]; then
        python3 "$ROOT/benches/send/sqlx_breakdown.py" "$wlog" "$secs" >"$WORK/sql-$tag.md" || true
    fi
    say "$tag: mailcast $sent msgs in ${secs}s = $mc_rate msg/s (peak RSS ${rss} MB, cpu ${cpu_user}+${cpu_sys}s, machine ${busy}% busy, $sessions SMTP sessions, record $record_bytes bytes/delivery); smtp-source ${src_secs}s = $src_rate msg/s; ratio $ratio"
}

# --- main ---------------------------------------------------------------------------
# One function, read whole before it runs: editing this file during a run cannot
# change what the run does.
main() {
    say "send benchmark: engines=$ENGINES sizes=$SIZES runs=$RUNS connections=$CONNECTIONS slots=${SLOTS:-default} batch=${BATCH:-default} shim=$SHIM label=$LABEL"
    say "machine: $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GB", $2/1048576}' /proc/meminfo), $(uname -sr); load $(cut -d' ' -f1-3 /proc/loadavg)"
    make_message
    IFS=, read -ra engine_list <<<"$ENGINES"
    IFS=, read -ra size_list <<<"$SIZES"
    for engine in "${engine_list[@]}"; do
        for n in "${size_list[@]}"; do
            prepare_template "$engine" "$n"
            for run in $(seq "$RUNS"); do
                run_once "$engine" "$n" "$run"
            done
            [ "$engine" = sqlite ] && rm -f "$(db_url sqlite tpl "$n")"*
        done
        if [ "$engine" = postgres ]; then
            psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $PG_DB" >/dev/null
            psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $PG_TPL" >/dev/null
        fi
    done

    # Medians per (label, engine, N) over the runs of this file so far.
    echo
    echo "| label | engine | recipients | runs | mailcast msg/s | smtp-source msg/s | ratio | peak RSS MB | worker CPU s |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
    for key in $(awk -F'\t' 'NR>1 {print $1"|"$2"|"$3}' "$RESULTS" | awk '!seen[$0]++'); do
        IFS='|' read -r l e n <<<"$key"
        rows=$(awk -F'\t' -v l="$l" -v e="$e" -v n="$n" 'NR>1 && $1==l && $2==e && $3==n' "$RESULTS")
        runs=$(wc -l <<<"$rows")
        mc=$(cut -f8 <<<"$rows" | median)
        src=$(cut -f10 <<<"$rows" | median)
        ratio=$(cut -f11 <<<"$rows" | median)
        rss=$(cut -f12 <<<"$rows" | median)
        cpu=$(awk -F'\t' '{print $13+$14}' <<<"$rows" | median)
        echo "| $l | $e | $n | $runs | $mc | $src | $ratio | $rss | $cpu |"
    done
    say "results: $RESULTS; logs: $LOG"
}
main
exit 0
