#!/usr/bin/env bash
# Experiment benchmark (issue 18, README "Experiments") on PostgreSQL: how long judging
# a test and computing attribution take for a 1,000,000-recipient campaign with
# 10,000,000 events. Target from the issue: judge + stats (attribution) < 5 s on this
# machine. The script reports the target, it does not change it.
#
# What one run does (database PG_DB, default mailcast_expbench, dropped at the end):
#   1. DROP/CREATE DATABASE; `mailcast campaign list` once applies the migrations (the
#      binary migrates on open);
#   2. the weekly-picks template (`mailcast template load templates/weekly-picks`) and
#      two campaigns made with the CLI, so that their settings JSON is what the product
#      writes: `bench-ab` (`campaign create bench-ab --template weekly-picks --variant
#      'subject=Winter sale' --variant 'subject=Last chance' --test-share 20% --wait 4h
#      --metric revenue --holdout 5% --view-through 1d`, click window the default 5 d)
#      and `bench-other` (no experiment; only its clicks exist, for "last click
#      elsewhere"). bench-ab's row is then set to status done, started at T0;
#   3. bulk data with INSERT … SELECT generate_series (setseed: the same data each run),
#      T0 = 1780000000:
#      - N recipients (--recipients, default 1,000,000) benchN@bench.example.com, with
#        email_key and email_hash (sha256) as benches/automation_bench.sh makes them,
#        status active; ids 1..N (checked);
#      - 300 products (purchases name one, uniform);
#      - bench-ab's audience as the product leaves it after the test and the winner:
#        each recipient's bucket = hashint8(id) mod 10000 (the product draws SHA-256;
#        only the shares matter here): buckets < 500 (5 %) are the holdout
#        (experiment_audience part 'holdout'), 500..2499 (20 %) the test (deliveries
#        variant 0 or 1, by another hash bit, created/sent/handed at T0), the others
#        (75 %) the rest, mailed the winner B (deliveries variant 1, created/sent/handed
#        at T0 + 4 h, when the wait ended; they also keep their experiment_audience row
#        part 'rest', as `judge_and_release` leaves it). Every delivery status 'sent',
#        attempts 1, a message_id, rendered_with NULL (so no recommendation credit is
#        decoded); and the judgement row `judge_and_release` writes in the same
#        transaction as the rest's deliveries (winner B, judged at T0 + 4 h; its detail
#        is '{}'): `campaign judge` computes the figures again whatever is stored, and
#        `campaign stats` shows the stored one (before 2026-12-08 the row was left out,
#        a state the product never leaves: the rest's deliveries without a judgement);
#      - 5 links of bench-ab (link_id 1..5);
#      - E events in all (--events, default 10,000,000):
#        70 % tracking_events: 35 % clicks (link 1..5) and 65 % opens, verdict 'machine'
#        for 15 % (reason 'scanner'), else 'human'; 80 % on bench-ab by a recipient
#        drawn uniformly from its mailed ones, occurred_at uniform from that recipient's
#        delivery to T0 + 5 d; 20 % on bench-other by a recipient drawn uniformly from all
#        N (holdout included), occurred_at uniform in T0 .. T0 + 5 d;
#        30 % events: kind purchase, cart_add, view (a third each), recipient uniform
#        over all N (so the holdout buys too), a product, amount_cents uniform in
#        500..20000 for purchases (NULL otherwise), occurred_at uniform in T0 .. T0 + 6 d,
#        external_id NULL;
#        both inserted in occurred_at order (the order they would arrive in);
#      - VACUUM ANALYZE (autovacuum is off on this server).
#      The row counts and the load's duration are reported (not part of the target);
#   4. the measurements, each --repeat times (default 3), wall time by `date +%s.%N`
#      around the command, each run and the median reported; before each timed run the
#      script waits for the 1-minute load to fall below --max-load (the load at the
#      start of each run is printed beside it):
#      a. `mailcast campaign judge bench-ab`: the winner rule on the test's figures
#         (per-variant delivered count, attributed revenue per recipient: the whole
#         attribution query); its output printed once;
#      b. `mailcast campaign stats bench-ab --format json`: ledger, engagement,
#         attribution (click window 5 d + view-through 1 d), top links, per-variant rows,
#         judgement, uplift against the holdout; a short summary of the JSON printed
#         once (attributed orders/revenue/view-through orders, experiment.results,
#         experiment.uplift);
#      c. reference, the same way: one psql process running
#         `SELECT kind, verdict, count(*) FROM tracking_events GROUP BY 1,2` and
#         `SELECT count(*), sum(amount_cents) FROM events WHERE kind='purchase'`: one
#         pass over all the events, the least any attribution must read. Reported: the
#         ratio median(stats) ÷ median(reference).
#      Target line: "judge + stats (attribution) < 5 s" = median(a) + median(b), PASS or
#      NOT MET.
#   A run that takes longer than --slow seconds (default 120) is reported as very long
#   and that command is not repeated; a run is killed after --timeout seconds (default
#   1800) and reported as TIMEOUT.
#
# Usage:
#   benches/experiment_bench.sh [--bin PATH] [--pg-db NAME] [--recipients N] [--events E]
#                               [--repeat R] [--keep] [--reuse] [--explain] [--explain-top K]
#                               [--max-load 1.5] [--setup-max-load L] [--lock-wait S]
#                               [--slow S] [--timeout S]
#                               [--work DIR]
#   --bin        the mailcast binary (default /work/target-main/release/mailcast); a
#                private copy is taken, so a rebuild meanwhile changes nothing. This script
#                never builds
#   --keep       do not drop the database at the end
#   --reuse      measure the database a --keep run left (same --pg-db) instead of building
#                it again; the sizes are then read from it; the binary's migrations (a
#                newer binary's) and VACUUM ANALYZE run first, untimed
#   --explain    DIAGNOSTIC, after the measurements: (1) one more judge and one more stats
#                run with every SQL statement logged (RUST_LOG=sqlx::query=debug, JSON
#                log lines), the statements ranked by their time; (2) EXPLAIN (ANALYZE,
#                BUFFERS) of the --explain-top (default 8) slowest statements of those two
#                runs and of the attribution statement (store/attribution.rs
#                `attributed_sql`, the windows 432000 / 86400 in its text), each taken
#                verbatim from the log, PREPAREd and EXECUTEd with $1 = bench-ab's id (the
#                uplift's $2/$3 = the test's start and start + 5 d, top links' $2 = 10,
#                the judge's engagement kind $2 = '') after the SET LOCAL statements that
#                preceded it, in a transaction rolled back: what the binary runs, whatever
#                the source says now. SQL in $WORK/explain-N.sql, plans in
#                $WORK/explain-N.txt and on stdout
#   --max-load   the set-up starts only when /tmp/mailcast-bench.lock does not exist and
#                the 1-minute load average is below this (default 1.5); the script holds
#                the lock to the end and, before each timed run, waits for the load to fall
#                below this again (up to --lock-wait seconds, default 3600, then it fails)
#   --setup-max-load  the load below which the set-up may start (default: --max-load); the
#                data load is not timed, so it may start on a busier machine
#   --work       scratch directory (default /tmp/mailcast-expbench): log, outputs, plans
#
# Needs: psql (the server at 127.0.0.1:5432, user postgres, trust auth, allowed to create
# databases), python3, timeout. An exit trap drops the database (unless --keep) and
# removes the lock if this script holds it.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=/work/target-main/release/mailcast
PG_DB=mailcast_expbench
RECIPIENTS=1000000
EVENTS=10000000
REPEAT=3
KEEP=0
REUSE=0
EXPLAIN=0
EXPLAIN_TOP=8
MAX_LOAD=1.5
SETUP_MAX_LOAD=
LOCK_WAIT=3600
SLOW=120
TIMEOUT=1800
WORK=/tmp/mailcast-expbench
PG_HOST=127.0.0.1
PG_PORT=5432
PG_USER=postgres

while [ $# -gt 0 ]; do
    case "$1" in
        --bin) BIN=$2; shift 2 ;;
        --pg-db) PG_DB=$2; shift 2 ;;
        --recipients) RECIPIENTS=${2//,/}; shift 2 ;;
        --events) EVENTS=${2//,/}; shift 2 ;;
        --repeat) REPEAT=$2; shift 2 ;;
        --keep) KEEP=1; shift ;;
        --reuse) REUSE=1; KEEP=1; shift ;;
        --explain) EXPLAIN=1; shift ;;
        --explain-top) EXPLAIN_TOP=$2; shift 2 ;;
        --max-load) MAX_LOAD=$2; shift 2 ;;
        --setup-max-load) SETUP_MAX_LOAD=$2; shift 2 ;;
        --lock-wait) LOCK_WAIT=$2; shift 2 ;;
        --slow) SLOW=$2; shift 2 ;;
        --timeout) TIMEOUT=$2; shift 2 ;;
        --work) WORK=$2; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
SETUP_MAX_LOAD=${SETUP_MAX_LOAD:-$MAX_LOAD}

for n in "$RECIPIENTS" "$EVENTS" "$REPEAT" "$EXPLAIN_TOP" "$SLOW" "$TIMEOUT" "$LOCK_WAIT"; do
    [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "sizes and times must be positive integers, not '$n'" >&2; exit 2; }
done
[[ "$PG_DB" =~ ^[a-z_][a-z0-9_]*$ ]] || { echo "--pg-db must be a plain lower-case name" >&2; exit 2; }
[ "$RECIPIENTS" -ge 1000 ] || { echo "--recipients must be at least 1000" >&2; exit 2; }

T0=1780000000          # the test's deliveries (unix seconds)
WAIT=14400             # --wait 4h: the rest's deliveries, T0 + WAIT
CLICK_WINDOW=432000    # the default attribution window, 5 d
VIEW_WINDOW=86400      # --view-through 1d
PRODUCTS=300
TARGET_S=5
URL=postgres://$PG_USER@$PG_HOST:$PG_PORT/$PG_DB
LOCK=/tmp/mailcast-bench.lock
mkdir -p "$WORK"
LOG=$WORK/bench.log
: >"$LOG"
export PGOPTIONS="-c client_min_messages=warning" NO_COLOR=1 RUST_LOG=${RUST_LOG:-mailcast=info,sqlx=warn}
PSQL=(psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -X -q -v ON_ERROR_STOP=1)

say() { printf '[%s] %s\n' "$(date +%T)" "$*" | tee -a "$LOG" >&2; }
die() { say "FAILED: $*"; exit 1; }

LOCK_HELD=0
DB_MADE=0
cleanup() {
    set +e
    if [ "$DB_MADE" = 1 ] && [ "$KEEP" = 0 ]; then
        "${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1
    fi
    [ "$LOCK_HELD" = 1 ] && rm -f "$LOCK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- helpers ------------------------------------------------------------------------
load1() { cut -d' ' -f1 /proc/loadavg; }
below() { awk -v a="$1" -v b="$2" 'BEGIN{exit !(a < b)}'; }
secs_between() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", b-a}'; }
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END{if (NR == 0) print "-"; else if (NR % 2) printf "%.2f", v[(NR+1)/2]; else printf "%.2f", (v[NR/2]+v[NR/2+1])/2}'; }
db() { "${PSQL[@]}" -d "$PG_DB" "$@"; }
dbq() { "${PSQL[@]}" -d "$PG_DB" -At -c "$1"; }

# The lock of every mailcast benchmark, and a machine quiet enough to measure on.
acquire_lock() {
    local deadline=$(( $(date +%s) + LOCK_WAIT )) said=0
    while :; do
        if [ ! -e "$LOCK" ] && below "$(load1)" "$SETUP_MAX_LOAD"; then
            if ( set -o noclobber; echo "experiment_bench pid $$ since $(date -u +%T)" >"$LOCK" ) 2>/dev/null; then
                LOCK_HELD=1
                say "lock taken (load $(cut -d' ' -f1-3 /proc/loadavg))"
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
wait_quiet() {
    local deadline=$(( $(date +%s) + LOCK_WAIT )) said=0
    while ! below "$(load1)" "$MAX_LOAD"; do
        [ "$(date +%s)" -lt "$deadline" ] || die "the load stayed at or above $MAX_LOAD for ${LOCK_WAIT}s (now $(load1))"
        if [ $said = 0 ] && [ "$(( deadline - $(date +%s) ))" -lt $(( LOCK_WAIT - 300 )) ]; then
            say "still waiting for the load to fall below $MAX_LOAD (now $(load1)); top: $(ps -eo pcpu,comm --sort=-pcpu | sed -n 2,4p | tr -s ' ' | tr '\n' ';')"
            said=1
        fi
        sleep 5
    done
}

# timed NAME OUT CMD...: waits for a quiet machine, runs CMD (stdout to OUT, stderr to
# OUT.err) under `timeout`, and sets LAST_S (seconds, 0.01), LAST_RC, LAST_LOAD.
timed() {
    local name=$1 out=$2; shift 2
    wait_quiet
    LAST_LOAD=$(load1)
    local t0 t1
    t0=$(date +%s.%N)
    LAST_RC=0
    timeout "$TIMEOUT" "$@" >"$out" 2>"$out.err" || LAST_RC=$?
    t1=$(date +%s.%N)
    LAST_S=$(secs_between "$t0" "$t1")
    [ "$LAST_RC" = 0 ] || [ "$LAST_RC" = 124 ] || {
        sed -n 1,20p "$out.err" >&2
        die "$name failed (exit $LAST_RC), see $out.err"
    }
}

# measure KEY LABEL CMD...: REPEAT timed runs; the outputs of the first stay in
# $WORK/KEY.out; sets TIMES_KEY (space-separated) and MEDIAN_KEY.
declare -A TIMES MEDIAN NOTE
measure() {
    local key=$1 label=$2; shift 2
    local i times=() note=
    for i in $(seq "$REPEAT"); do
        local out=$WORK/$key.out
        [ "$i" = 1 ] || out=$WORK/$key.$i.out
        timed "$label" "$out" "$@"
        if [ "$LAST_RC" = 124 ]; then
            say "$label run $i: TIMEOUT after ${TIMEOUT}s (load at start $LAST_LOAD); not repeated"
            times+=("$LAST_S"); note="timeout after ${TIMEOUT}s"
            break
        fi
        say "$label run $i: ${LAST_S}s (load at start $LAST_LOAD)"
        times+=("$LAST_S")
        if below "$SLOW" "$LAST_S"; then
            say "$label run $i took ${LAST_S}s, over ${SLOW}s: very long, not repeated"
            note="very long (> ${SLOW}s), run once"
            break
        fi
    done
    TIMES[$key]="${times[*]}"
    MEDIAN[$key]=$(median "${times[@]}")
    NOTE[$key]=$note
}

# --- set-up -------------------------------------------------------------------------
command -v psql >/dev/null || die "psql is required (apt-get install postgresql-client)"
command -v python3 >/dev/null || die "python3 is required"
[ -x "$BIN" ] || die "no mailcast binary at $BIN (this script does not build it)"
cp "$BIN" "$WORK/mailcast"
MC=$WORK/mailcast
"${PSQL[@]}" -d postgres -At -c "SELECT 1" >/dev/null || die "cannot reach PostgreSQL at $PG_HOST:$PG_PORT"
mc() { "$MC" --database "$URL" "$@"; }

acquire_lock
say "experiment benchmark: recipients=$RECIPIENTS events=$EVENTS repeat=$REPEAT db=$PG_DB$([ "$REUSE" = 1 ] && echo ' (reused)')"
say "machine: $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GB", $2/1048576}' /proc/meminfo), $(uname -sr); PostgreSQL $("${PSQL[@]}" -d postgres -At -c 'SHOW server_version') (shared_buffers $("${PSQL[@]}" -d postgres -At -c 'SHOW shared_buffers'), work_mem $("${PSQL[@]}" -d postgres -At -c 'SHOW work_mem'), autovacuum $("${PSQL[@]}" -d postgres -At -c 'SHOW autovacuum')); load $(cut -d' ' -f1-3 /proc/loadavg); binary $BIN ($(stat -c %y "$BIN" | cut -d. -f1)); source $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"

LOAD_S=-
# The judgement judge_and_release stores with the rest's deliveries (winner B).
store_judgement() {
    db -c "INSERT INTO experiment_judgements (campaign_id, judged_at, winner, sent_variant, judgement)
           VALUES ($CAMP, $T0 + 14400, 1, 1, '{}') ON CONFLICT (campaign_id) DO NOTHING" >>"$LOG" \
        || die "storing the judgement failed"
}

if [ "$REUSE" = 1 ]; then
    [ "$("${PSQL[@]}" -d postgres -At -c "SELECT count(*) FROM pg_database WHERE datname = '$PG_DB'")" = 1 ] \
        || die "--reuse: no database $PG_DB (run once with --keep)"
    CAMP=$(dbq "SELECT id FROM campaigns WHERE name = 'bench-ab'")
    [ -n "$CAMP" ] || die "--reuse: $PG_DB has no campaign bench-ab"
    RECIPIENTS=$(dbq "SELECT count(*) FROM recipients")
    # A newer binary's migrations (and what they fill) run here, untimed.
    m0=$(date +%s.%N)
    mc campaign list >>"$LOG" 2>&1 || die "mailcast campaign list (migrations) failed, see $LOG"
    store_judgement
    db -c "VACUUM ANALYZE" >>"$LOG" || die "VACUUM ANALYZE failed"
    say "--reuse: migrations and VACUUM ANALYZE took $(secs_between "$m0" "$(date +%s.%N)")s"
else
    s0=$(date +%s.%N)
    DB_MADE=1
    "${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null
    "${PSQL[@]}" -d postgres -c "CREATE DATABASE $PG_DB" >/dev/null
    mc campaign list >>"$LOG" 2>&1 || die "mailcast campaign list (migrations) failed, see $LOG"
    mc template load "$ROOT/templates/weekly-picks" >>"$LOG" 2>&1 || die "template load failed, see $LOG"
    mc campaign create bench-ab --template weekly-picks --from-email news@shop.example.com --from-name Shop \
        --variant 'subject=Winter sale' --variant 'subject=Last chance' --test-share 20% --wait 4h \
        --metric revenue --holdout 5% --view-through 1d >>"$LOG" 2>&1 || die "campaign create bench-ab failed, see $LOG"
    mc campaign create bench-other --template weekly-picks --from-email news@shop.example.com --from-name Shop \
        >>"$LOG" 2>&1 || die "campaign create bench-other failed, see $LOG"
    CAMP=$(dbq "SELECT id FROM campaigns WHERE name = 'bench-ab'")
    OTHER=$(dbq "SELECT id FROM campaigns WHERE name = 'bench-other'")
    [ -n "$CAMP" ] && [ -n "$OTHER" ] || die "campaigns not found after create"
    say "campaign bench-ab id $CAMP, settings $(dbq "SELECT settings::text FROM campaigns WHERE id = $CAMP")"

    TE=$(( EVENTS * 7 / 10 ))
    EV=$(( EVENTS - TE ))
    say "loading: $RECIPIENTS recipients, $PRODUCTS products, the audience, $TE tracking events, $EV events"
    db >>"$LOG" 2>>"$LOG" <<SQL || die "the data load failed, see $LOG"
SET work_mem = '256MB';
SET maintenance_work_mem = '512MB';
SET synchronous_commit = off;
UPDATE campaigns SET status = 'done', started_at = $T0, finished_at = $T0 + $WAIT + 3600,
       updated_at = $T0 + $WAIT + 3600 WHERE id = $CAMP;

INSERT INTO recipients (email, email_key, email_hash, first_name, country, created_at, updated_at, status)
SELECT e, e, encode(sha256(convert_to(e, 'UTF8')), 'hex'), 'Bench',
       (ARRAY['DE', 'US', 'FR'])[1 + g % 3], $T0 - 30 * 86400, $T0 - 30 * 86400, 'active'
FROM generate_series(1, $RECIPIENTS) g,
     LATERAL (SELECT 'bench' || g || '@bench.example.com' AS e) x
ORDER BY g;

INSERT INTO products (sku, name, url, price_cents, currency, category, in_stock, created_at, updated_at)
SELECT 'BENCH-' || g, 'Bench product ' || g, 'https://shop.example.com/p/' || g,
       500 + (g * 37) % 19500, 'EUR', (ARRAY['shoes', 'outdoor', 'kitchen', 'books', 'toys'])[1 + g % 5],
       TRUE, $T0 - 60 * 86400, $T0 - 60 * 86400
FROM generate_series(1, $PRODUCTS) g;

-- Scratch: each recipient's part of bench-ab's audience (dropped below).
CREATE UNLOGGED TABLE bench_arm AS
SELECT r.id AS recipient_id,
       CASE WHEN b < 500 THEN 'holdout' WHEN b < 2500 THEN 'test' ELSE 'rest' END AS part,
       CASE WHEN b < 500 THEN NULL WHEN b < 2500 THEN (hashint8(r.id + 7777777) & 1)::bigint ELSE 1 END AS variant,
       CASE WHEN b < 2500 THEN $T0 ELSE $T0 + $WAIT END AS delivered_at
FROM recipients r, LATERAL (SELECT ((hashint8(r.id)::bigint + 2147483648) % 10000)::int AS b) x;
CREATE UNLOGGED TABLE bench_mailed AS
SELECT row_number() OVER (ORDER BY recipient_id) AS k, recipient_id, delivered_at
FROM bench_arm WHERE part <> 'holdout';
CREATE UNIQUE INDEX ON bench_mailed (k);
ANALYZE bench_arm; ANALYZE bench_mailed;

INSERT INTO deliveries (campaign_id, recipient_id, status, attempts, message_id, sent_at, handed_at,
                        created_at, updated_at, variant)
SELECT $CAMP, recipient_id, 'sent', 1, '<' || $CAMP || '.' || recipient_id || '.bench@shop.example.com>',
       delivered_at, delivered_at, delivered_at, delivered_at, variant
FROM bench_arm WHERE part <> 'holdout' ORDER BY delivered_at, recipient_id;

INSERT INTO experiment_audience (campaign_id, recipient_id, part)
SELECT $CAMP, recipient_id, part FROM bench_arm WHERE part IN ('holdout', 'rest') ORDER BY recipient_id;

INSERT INTO links (campaign_id, link_id, url)
SELECT $CAMP, g, 'https://shop.example.com/picks/' || g FROM generate_series(1, 5) g;

SELECT setseed(0.18);
INSERT INTO tracking_events (kind, campaign_id, recipient_id, link_id, occurred_at, ip, user_agent, verdict, reason)
WITH draws AS MATERIALIZED (
    SELECT g, random() < 0.2 AS other, random() AS rr, random() AS rk, random() AS rv,
           random() AS rt, random() AS rl
    FROM generate_series(1, $TE) g
)
SELECT CASE WHEN d.rk < 0.35 THEN 'click' ELSE 'open' END,
       CASE WHEN d.other THEN $OTHER ELSE $CAMP END,
       CASE WHEN d.other THEN 1 + floor(d.rr * $RECIPIENTS)::bigint ELSE m.recipient_id END,
       CASE WHEN d.rk < 0.35 THEN 1 + floor(d.rl * 5)::bigint END,
       CASE WHEN d.other THEN $T0 + floor(d.rt * $CLICK_WINDOW)::bigint
            ELSE m.delivered_at + floor(d.rt * ($T0 + $CLICK_WINDOW - m.delivered_at))::bigint END AS at,
       '198.51.100.' || (d.g % 250),
       CASE WHEN d.rv < 0.15 THEN 'LinkScanner/1.0' ELSE 'Mozilla/5.0 (bench)' END,
       CASE WHEN d.rv < 0.15 THEN 'machine' ELSE 'human' END,
       CASE WHEN d.rv < 0.15 THEN 'scanner' END
FROM draws d
LEFT JOIN bench_mailed m
       ON NOT d.other AND m.k = 1 + floor(d.rr * (SELECT count(*) FROM bench_mailed))::bigint
ORDER BY at;

SELECT setseed(0.19);
INSERT INTO events (external_id, recipient_id, kind, product_id, amount_cents, occurred_at)
WITH draws AS MATERIALIZED (
    SELECT g, random() AS rr, random() AS rk, random() AS rp, random() AS ra, random() AS rt
    FROM generate_series(1, $EV) g
)
SELECT NULL, 1 + floor(rr * $RECIPIENTS)::bigint,
       CASE WHEN rk < 1.0 / 3 THEN 'purchase' WHEN rk < 2.0 / 3 THEN 'cart_add' ELSE 'view' END,
       1 + floor(rp * $PRODUCTS)::bigint,
       CASE WHEN rk < 1.0 / 3 THEN 500 + floor(ra * 19501)::bigint END,
       $T0 + floor(rt * 6 * 86400)::bigint AS at
FROM draws
ORDER BY at;

DROP TABLE bench_arm;
DROP TABLE bench_mailed;
SQL
    [ "$(dbq "SELECT min(id) = 1 AND max(id) = $RECIPIENTS AND count(*) = $RECIPIENTS FROM recipients")" = t ] \
        || die "recipients are not ids 1..$RECIPIENTS"
    [ "$(dbq "SELECT min(id) = 1 AND max(id) = $PRODUCTS FROM products")" = t ] || die "products are not ids 1..$PRODUCTS"
    store_judgement
    db -c "VACUUM ANALYZE" >>"$LOG" || die "VACUUM ANALYZE failed"
    s1=$(date +%s.%N)
    LOAD_S=$(secs_between "$s0" "$s1")
    say "data load (database, migrations, CLI set-up, inserts, VACUUM ANALYZE) took ${LOAD_S}s"
fi

say "row counts:"
db -c "SELECT 'recipients' AS what, count(*) AS n FROM recipients
UNION ALL SELECT 'products', count(*) FROM products
UNION ALL SELECT 'deliveries (bench-ab) variant ' || COALESCE(variant::text, '-') || ' sent at T0+' || (sent_at - $T0) || 's', count(*)
          FROM deliveries WHERE campaign_id = $CAMP GROUP BY variant, sent_at
UNION ALL SELECT 'experiment_audience ' || part, count(*) FROM experiment_audience WHERE campaign_id = $CAMP GROUP BY part
UNION ALL SELECT 'experiment_judgements', count(*) FROM experiment_judgements
UNION ALL SELECT 'tracking_events ' || c.name || ' ' || t.kind || ' ' || t.verdict, count(*)
          FROM tracking_events t JOIN campaigns c ON c.id = t.campaign_id GROUP BY c.name, t.kind, t.verdict
UNION ALL SELECT 'tracking_events (all)', count(*) FROM tracking_events
UNION ALL SELECT 'events ' || kind, count(*) FROM events GROUP BY kind
UNION ALL SELECT 'events (all)', count(*) FROM events
UNION ALL SELECT 'database size (MB)', pg_database_size(current_database()) / 1048576" | tee -a "$LOG"
[ "$(dbq "SELECT count(*) FROM experiment_judgements WHERE campaign_id = $CAMP")" = 1 ] \
    || die "bench-ab has no stored judgement"

# --- measurements -------------------------------------------------------------------
say "a. mailcast campaign judge bench-ab, $REPEAT times"
measure judge "judge" "$MC" --database "$URL" campaign judge bench-ab
echo "--- campaign judge bench-ab (first run's output):"
cat "$WORK/judge.out"

say "b. mailcast campaign stats bench-ab --format json, $REPEAT times"
measure stats "stats" "$MC" --database "$URL" campaign stats bench-ab --format json
echo "--- campaign stats bench-ab --format json (first run, summary; whole JSON in $WORK/stats.out):"
python3 - "$WORK/stats.out" <<'PY' || echo "(no JSON to summarise)"
import json, sys
s = json.load(open(sys.argv[1]))
a = s["attributed"]
print(f"audience {s['audience']}, sent {s['ledger']['sent']}; windows: click {s['attribution_window']} s, "
      f"view-through {s['view_through_window']} s")
print(f"opens {s['opens']}\nclicks {s['clicks']}")
print(f"attributed: orders {a['orders']}, revenue {a['revenue_cents'] / 100:.2f}, "
      f"view_through_orders {a['view_through_orders']}")
e = s.get("experiment") or {}
print(f"experiment: mode {e.get('mode')}, metric {e.get('metric')}, holdout_recipients "
      f"{e.get('holdout_recipients')}, waiting_for_winner {e.get('waiting_for_winner')}, "
      f"judgement {'stored' if e.get('judgement') else 'none'}")
print("  variant segment  delivered  uniq_h_opens  uniq_h_clicks  conversions   orders   revenue   rev/recipient")
for r in e.get("results", []):
    print(f"  {r['variant']:<7} {str(r['segment'] or '-'):<8} {r['delivered']:>9} {r['opens']['unique_human']:>13} "
          f"{r['clicks']['unique_human']:>14} {r['conversions']:>12} {r['orders']:>8} "
          f"{r['revenue_cents'] / 100:>9.2f} {r['revenue_per_recipient']:>15.4f}")
u = e.get("uplift")
if u:
    for side in ("mailed", "holdout"):
        g = u[side]
        print(f"  uplift {side}: recipients {g['recipients']}, converted {g['converted']}, revenue {g['revenue']:.2f}")
    ci, ri = u["conversion_uplift"], u["revenue_per_recipient_uplift"]
    print(f"  uplift period {u['from']}..{u['until']}; conversion rate mailed {u['conversion_rate_mailed']:.4f} "
          f"holdout {u['conversion_rate_holdout']:.4f}; conversion uplift {ci['estimate']:.4f} "
          f"[{ci['low']:.4f}, {ci['high']:.4f}]; revenue/recipient uplift {ri['estimate']:.4f} "
          f"[{ri['low']:.4f}, {ri['high']:.4f}]")
else:
    print("  uplift: none")
PY
if [ "$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(s["attribution_window"], s["view_through_window"])' "$WORK/stats.out" 2>/dev/null)" != "$CLICK_WINDOW $VIEW_WINDOW" ]; then
    say "WARNING: the campaign's windows are not $CLICK_WINDOW / $VIEW_WINDOW as this script expects"
fi

say "c. reference: one psql pass over tracking_events and the purchases, $REPEAT times"
measure ref "reference" "${PSQL[@]}" -d "$PG_DB" -At \
    -c "SELECT kind, verdict, count(*) FROM tracking_events GROUP BY 1,2" \
    -c "SELECT count(*), sum(amount_cents) FROM events WHERE kind='purchase'"
echo "--- reference output (first run):"
cat "$WORK/ref.out"

# --- report -------------------------------------------------------------------------
J=${MEDIAN[judge]} S=${MEDIAN[stats]} R=${MEDIAN[ref]}
SUM=$(awk -v a="$J" -v b="$S" 'BEGIN{printf "%.2f", a+b}')
RATIO=$(awk -v a="$S" -v b="$R" 'BEGIN{if (b > 0) printf "%.1f", a/b; else print "-"}')
VERDICT=$(awk -v s="$SUM" -v t="$TARGET_S" 'BEGIN{print (s < t ? "PASS" : "NOT MET")}')
for k in judge stats ref; do [ -z "${NOTE[$k]}" ] || VERDICT="$VERDICT (${k}: ${NOTE[$k]})"; done
echo
echo "| figure | runs (s) | median (s) |"
echo "|---|---|---:|"
echo "| data load (not part of the target) | $LOAD_S | |"
echo "| a. campaign judge bench-ab | ${TIMES[judge]// /, } | $J |"
echo "| b. campaign stats bench-ab --format json | ${TIMES[stats]// /, } | $S |"
echo "| c. reference: psql one pass over the events | ${TIMES[ref]// /, } | $R |"
echo "| ratio stats ÷ reference | | $RATIO |"
echo "| target judge + stats (attribution) < ${TARGET_S} s | | $SUM: $VERDICT |"
echo
say "recipients=$RECIPIENTS events=$(dbq "SELECT (SELECT count(*) FROM tracking_events) + (SELECT count(*) FROM events)") judge=${J}s stats=${S}s reference=${R}s ratio=$RATIO judge+stats=${SUM}s target <${TARGET_S}s: $VERDICT"

# --- diagnostics --------------------------------------------------------------------
if [ "$EXPLAIN" = 1 ]; then
    # (1) Every statement of one judge and one stats run, ranked by time.
    rank_sql() { # log: sqlx's JSON log lines → statements by elapsed time
        python3 - "$1" <<'PY'
import json, re, sys
rows = []
for line in open(sys.argv[1]):
    try:
        d = json.loads(line)
    except ValueError:
        continue
    if d.get("target") != "sqlx::query":
        continue
    f = d.get("fields", {})
    secs = f.get("elapsed_secs")
    if secs is None:
        continue
    stmt = f.get("db.statement") or f.get("summary") or ""
    stmt = re.sub(r"\s+", " ", str(stmt).replace("\\n", " ")).strip()
    rows.append((float(secs), f.get("rows_returned", "?"), stmt))
total = sum(r[0] for r in rows)
print(f"{len(rows)} statements, {total:.2f} s in the database (pool waits excluded)")
for secs, n, stmt in sorted(rows, reverse=True)[:12]:
    print(f"  {secs:8.3f} s  {str(n):>8} rows  {stmt[:150]}")
PY
    }
    for cmd in judge stats; do
        wait_quiet
        say "explain: one $cmd run with every SQL statement logged"
        args=(campaign "$cmd" bench-ab)
        [ "$cmd" = stats ] && args+=(--format json)
        t0=$(date +%s.%N)
        RUST_LOG=mailcast=info,sqlx::query=debug timeout "$TIMEOUT" "$MC" --database "$URL" --log-format json \
            "${args[@]}" >"$WORK/sqllog-$cmd.out" 2>"$WORK/sqllog-$cmd.log" || say "the logged $cmd run failed ($?)"
        t1=$(date +%s.%N)
        echo "--- SQL statements of one $cmd run ($(secs_between "$t0" "$t1") s wall):"
        rank_sql "$WORK/sqllog-$cmd.log" | tee "$WORK/sql-$cmd.txt"
    done

    # (2) EXPLAIN (ANALYZE, BUFFERS) of the slowest statements of those two runs, taken
    # verbatim from the log (the windows are in the text), PREPAREd and EXECUTEd with
    # their parameters as sqlx binds them, after the SET LOCAL that preceded them.
    STARTED=$(dbq "SELECT MIN(created_at) FROM deliveries WHERE campaign_id = $CAMP AND variant IS NOT NULL")
    python3 - "$WORK" "$CAMP" "${STARTED:-0}" "$CLICK_WINDOW" "$EXPLAIN_TOP" \
        "$WORK/sqllog-judge.log" "$WORK/sqllog-stats.log" >"$WORK/explain-list.txt" <<'PY'
import json, re, sys
work, camp, started, window, top = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
found = {}  # statement text -> [seconds, command, settings]
for path in sys.argv[6:]:
    command = "judge" if path.endswith("judge.log") else "stats"
    settings = []
    for line in open(path):
        try:
            d = json.loads(line)
        except ValueError:
            continue
        f = d.get("fields", {})
        if d.get("target") != "sqlx::query" or f.get("elapsed_secs") is None:
            continue
        text = (f.get("db.statement") or f.get("summary") or "").strip()
        head = text.upper()
        if head.startswith("SET "):
            settings.append(text)  # SET LOCAL …: applies to the statement after it
            continue
        if not (head.startswith("SELECT") or head.startswith("WITH")):
            settings = [] if head in ("COMMIT", "ROLLBACK") else settings
            continue
        secs = float(f["elapsed_secs"])
        if text not in found or found[text][0] < secs:
            found[text] = [secs, command, settings]
        settings = []

def label(text):
    if "'purchase'" in text and "tracking_events" in text:
        return "attribution (store/attribution.rs attributed_sql)"
    return re.sub(r"\s+", " ", text)[:70]

def arguments(text):
    n = max([int(k) for k in re.findall(r"\$(\d+)", text)] or [0])
    args = [camp] if n >= 1 else []
    if n >= 2:
        if re.search(r"occurred_at >= \$2", text) and n == 3:
            args += [str(started), str(started + window)]  # uplift: from the test's start, the window
        elif re.search(r"LIMIT \$2", text) and n == 2:
            args.append("10")  # top links
        elif re.search(r"kind = \$2", text) and n == 2:
            args.append("''")  # judge, metric revenue: no engagement kind
        else:
            return None
    return args

chosen = sorted(found.items(), key=lambda kv: -kv[1][0])
picked = [kv for kv in chosen if kv[1][0] >= 0.05][:top]
picked += [kv for kv in chosen if kv not in picked and label(kv[0]).startswith("attribution")]
for i, (text, (secs, command, settings)) in enumerate(picked, 1):
    args = arguments(text)
    name = f"{label(text)}: {secs:.2f} s in the logged {command} run"
    with open(f"{work}/explain-{i}.sql", "w") as out:
        out.write(f"-- {name}\n-- parameters: {args}\n-- settings: {settings}\n")
        out.write("".join(f"--   {l}\n" for l in text.splitlines()) + "\n")
        if args is None:
            out.write("-- parameters $2.. not known to this script: not explained\n")
            print(f"{i}|{name} (not explained: unknown parameters)")
            continue
        out.write("\\set ON_ERROR_STOP 1\nBEGIN;\n")
        for setting in settings:
            out.write(f"{setting};\n")
        out.write(f"PREPARE bench_stmt AS {text};\n")
        out.write(f"EXPLAIN (ANALYZE, BUFFERS) EXECUTE bench_stmt({', '.join(args)});\nROLLBACK;\n")
    print(f"{i}|{name}")
PY
    while IFS='|' read -r i name; do
        sqlf=$WORK/explain-$i.sql out=$WORK/explain-$i.txt
        case "$name" in *"not explained"*) echo "--- $i: $name (SQL in $sqlf)"; continue ;; esac
        wait_quiet
        say "explain $i: $name"
        t0=$(date +%s.%N)
        timeout "$TIMEOUT" "${PSQL[@]}" -d "$PG_DB" -At -f "$sqlf" >"$out" 2>&1 || echo "(failed or timed out: $?)" >>"$out"
        t1=$(date +%s.%N)
        echo "--- EXPLAIN (ANALYZE, BUFFERS) $i: $name ($(secs_between "$t0" "$t1") s wall; SQL in $sqlf, plan in $out)"
        grep -v '^\(BEGIN\|ROLLBACK\|SET\|PREPARE\)$' "$out"
    done <"$WORK/explain-list.txt"
fi

say "done; outputs and log in $WORK$([ "$KEEP" = 1 ] && echo "; database $PG_DB kept")"
