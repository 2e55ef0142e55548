#!/usr/bin/env bash
# Segment resolution benchmark (issue 3, "Performance"); figures in benches/SEGMENTS.md.
#
#   benches/segment_bench.sh [RECIPIENTS]        # default 1000000 (about 10.4M events)
#
# For each engine it generates the fixture data set when missing (the fixture
# generator, seed 42, now = 2026-11-20), bulk-loads it (PostgreSQL: COPY; SQLite: one
# transaction of prepared multi-row inserts), analyses it, then times for each
# segment of examples/segment_bench.rs the count (`Store::count_segment`, topic
# newsletter) and the ledger insert (`Store::freeze_audience` into a fresh campaign),
# RUNS times each, and reports medians.
#
# Environment:
#   PG_URL     any database URL of the server, used to create and drop the bench
#              database (default postgres://postgres@127.0.0.1:5432/test)
#   BENCH_DB   name of the PostgreSQL database to create (default mailcast_bench)
#   SQLITE     SQLite file (default target/segment-bench/bench-RECIPIENTS.db)
#   RUNS       timed runs per segment and operation (default 5)
#   ENGINES    "postgres sqlite" (default), or one of them
#   KEEP=1     keep the PostgreSQL database and the SQLite file (and reuse them:
#              a loaded data set is not loaded again)
#   OUT        result file (default target/segment-bench/results-RECIPIENTS.md)
set -euo pipefail
cd "$(dirname "$0")/.."

N=${1:-1000000}
RUNS=${RUNS:-5}
ENGINES=${ENGINES:-postgres sqlite}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432/test}
BENCH_DB=${BENCH_DB:-mailcast_bench}
PG_BENCH="${PG_URL%/*}/$BENCH_DB"
SQLITE=${SQLITE:-target/segment-bench/bench-$N.db}
OUT=${OUT:-target/segment-bench/results-$N.md}
BIN=target/release/examples/segment_bench

mkdir -p target/segment-bench "$(dirname "$SQLITE")" "$(dirname "$OUT")"
cargo build --release --example segment_bench

{
    echo "## segment bench, $N recipients, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo
    echo "- CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
    echo "- RAM: $(free -g | awk '/^Mem:/ {print $2}') GB"
    echo "- PostgreSQL: $(psql "$PG_URL" -Atc 'SHOW server_version' 2>/dev/null || echo n/a)," \
        "shared_buffers $(psql "$PG_URL" -Atc 'SHOW shared_buffers' 2>/dev/null || echo n/a)," \
        "work_mem $(psql "$PG_URL" -Atc 'SHOW work_mem' 2>/dev/null || echo n/a)"
    echo "- runs per figure: $RUNS (median, min–max)"
    echo
} >>"$OUT"

for engine in $ENGINES; do
    case $engine in
        postgres)
            if [ "${KEEP:-0}" != 1 ]; then
                psql "$PG_URL" -qc "DROP DATABASE IF EXISTS $BENCH_DB"
            fi
            if ! psql "$PG_URL" -Atc "SELECT 1 FROM pg_database WHERE datname = '$BENCH_DB'" | grep -q 1; then
                psql "$PG_URL" -qc "CREATE DATABASE $BENCH_DB"
            fi
            url=$PG_BENCH
            ;;
        sqlite)
            if [ "${KEEP:-0}" != 1 ]; then
                rm -f "$SQLITE" "$SQLITE-wal" "$SQLITE-shm"
            fi
            url=$SQLITE
            ;;
        *)
            echo "unknown engine $engine" >&2
            exit 2
            ;;
    esac
    echo "### $engine" >>"$OUT"
    echo >>"$OUT"
    # Generate (when missing) and load, timed on its own.
    /usr/bin/time -f "load: %e s wall" "$BIN" --database "$url" --recipients "$N" --load-only \
        2>&1 | tee -a "target/segment-bench/load-$engine-$N.log"
    echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT"
    echo >>"$OUT"
    "$BIN" --database "$url" --recipients "$N" --runs "$RUNS" --markdown "$OUT"
    echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT"
    echo >>"$OUT"
    if [ "${KEEP:-0}" != 1 ]; then
        case $engine in
            postgres) psql "$PG_URL" -qc "DROP DATABASE IF EXISTS $BENCH_DB" ;;
            sqlite) rm -f "$SQLITE" "$SQLITE-wal" "$SQLITE-shm" ;;
        esac
    fi
done

echo "results appended to $OUT"
