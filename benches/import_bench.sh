#!/usr/bin/env bash
# Bulk import against each database's own bulk loader (issue 14, README "Import"):
# the same generated files, in the same run.
#
#   benches/import_bench.sh [N] [ENGINES]     # default 100000, "postgres sqlite"
#   MAILCAST_BIN=/path/to/mailcast benches/import_bench.sh …   # a given build
#
# For each engine, `mailcast import` of recipients and then events, into an empty
# database and into one already holding N other recipients and their events; beside
# it the loader into an equivalent plain table with a unique key:
#   - PostgreSQL: `psql \copy` (recipients.csv as CSV; events.jsonl one JSON document
#     per row into a jsonb column) with a unique index on email / event_id;
#   - SQLite: the sqlite3 shell's `.import` into a scratch table, then one
#     `INSERT … SELECT` into a table with a unique index on email / event_id.
# Prints seconds, peak RSS (/usr/bin/time -v) and the ratio loader / mailcast (issue
# target: ≥ 0.3). PG_URL (default postgres://postgres@127.0.0.1:5432) must allow
# creating databases. Waits while /tmp/mailcast-bench.lock exists, holds it meanwhile.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${1:-100000}
ENGINES=${2:-postgres sqlite}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
WORK=${WORK:-/tmp/mailcast-import-bench}
LOCK=/tmp/mailcast-bench.lock
TARGET=${CARGO_TARGET_DIR:-target}
# MAILCAST_BIN: measure that binary (for an A/B of two builds) instead of building one.
BIN=${MAILCAST_BIN:-$TARGET/release/mailcast}

while [ -e "$LOCK" ]; do sleep 30; done
echo "import_bench $$" > "$LOCK"
trap 'rm -f "$LOCK"' EXIT

[ -n "${MAILCAST_BIN:-}" ] || cargo build --release --quiet --bin mailcast

rm -rf "$WORK" && mkdir -p "$WORK"
# A: the files timed. B: the other recipients (and events) a populated database holds.
"$BIN" fixtures generate --recipients "$N" --out "$WORK/a" --seed 1 >/dev/null
"$BIN" fixtures generate --recipients "$N" --out "$WORK/b" --seed 2 >/dev/null
awk -F, 'NR == FNR { if (FNR > 1) seen[tolower($1)] = 1; next }
         FNR == 1 || !(tolower($1) in seen)' "$WORK/a/recipients.csv" "$WORK/b/recipients.csv" \
    > "$WORK/b/other.csv"
sed 's/"event_id":"/"event_id":"b-/' "$WORK/b/events.jsonl" > "$WORK/b/other.jsonl"
EVENTS=$(wc -l < "$WORK/a/events.jsonl")
echo "files: $N recipients, $EVENTS events ($(du -h "$WORK/a/recipients.csv" | cut -f1), $(du -h "$WORK/a/events.jsonl" | cut -f1))"

# timed LABEL CMD...: runs CMD, appends "LABEL seconds peak-RSS-MB" to $WORK/times.
timed() {
    local label=$1; shift
    /usr/bin/time -v -o "$WORK/time.txt" "$@" > "$WORK/out.txt" 2>&1 || {
        cat "$WORK/out.txt" >&2; exit 1; }
    local secs rss
    secs=$(awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, p, ":"); s = 0
               for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s }' "$WORK/time.txt")
    rss=$(awk -F': ' '/Maximum resident set size/ { printf "%.0f", $2 / 1024 }' "$WORK/time.txt")
    echo "$label $secs $rss" >> "$WORK/times"
    printf '  %-34s %8.2f s %6s MB\n' "$label" "$secs" "$rss"
}

mailcast_runs() {
    local engine=$1 empty=$2 populated=$3
    echo "== $engine: mailcast import"
    "$BIN" --database "$empty" migrate >/dev/null
    timed "$engine mailcast recipients empty" "$BIN" --database "$empty" import recipients "$WORK/a/recipients.csv"
    "$BIN" --database "$empty" import products "$WORK/a/products.csv" >/dev/null
    timed "$engine mailcast events empty" "$BIN" --database "$empty" import events "$WORK/a/events.jsonl"
    "$BIN" --database "$populated" migrate >/dev/null
    "$BIN" --database "$populated" import recipients "$WORK/b/other.csv" >/dev/null
    "$BIN" --database "$populated" import products "$WORK/b/products.csv" >/dev/null
    "$BIN" --database "$populated" import products "$WORK/a/products.csv" >/dev/null
    "$BIN" --database "$populated" import events "$WORK/b/other.jsonl" >/dev/null 2>&1 || true
    timed "$engine mailcast recipients populated" "$BIN" --database "$populated" import recipients "$WORK/a/recipients.csv"
    timed "$engine mailcast events populated" "$BIN" --database "$populated" import events "$WORK/a/events.jsonl"
    timed "$engine mailcast recipients again" "$BIN" --database "$populated" import recipients "$WORK/a/recipients.csv"
}

PG_TABLES="
CREATE TABLE recipients_plain (email text, first_name text, last_name text, country text,
    city text, locale text, timezone text, created_at text, topics text,
    consent_source text, attributes text);
CREATE UNIQUE INDEX ON recipients_plain (email);
CREATE TABLE events_plain (doc jsonb);
CREATE UNIQUE INDEX ON events_plain ((doc ->> 'event_id'));"
# JSON Lines through COPY's CSV mode with quote and delimiter bytes no line holds.
PG_JSONL="(FORMAT csv, QUOTE e'\\x01', DELIMITER e'\\x02')"

postgres_runs() {
    local db=mailcast_import_bench
    for d in "$db" "${db}_populated" "${db}_plain"; do
        psql -q "$PG_URL/postgres" -c "DROP DATABASE IF EXISTS $d" -c "CREATE DATABASE $d"
    done
    mailcast_runs postgres "$PG_URL/$db" "$PG_URL/${db}_populated"
    echo "== postgres: psql \\copy"
    local plain=$PG_URL/${db}_plain
    psql -q "$plain" -c "$PG_TABLES"
    timed "postgres loader recipients empty" psql -q "$plain" -c "\\copy recipients_plain FROM '$WORK/a/recipients.csv' (FORMAT csv, HEADER)"
    timed "postgres loader events empty" psql -q "$plain" -c "\\copy events_plain FROM '$WORK/a/events.jsonl' $PG_JSONL"
    psql -q "$plain" -c "TRUNCATE recipients_plain, events_plain" \
        -c "\\copy recipients_plain FROM '$WORK/b/other.csv' (FORMAT csv, HEADER)" \
        -c "\\copy events_plain FROM '$WORK/b/other.jsonl' $PG_JSONL"
    timed "postgres loader recipients populated" psql -q "$plain" -c "\\copy recipients_plain FROM '$WORK/a/recipients.csv' (FORMAT csv, HEADER)"
    timed "postgres loader events populated" psql -q "$plain" -c "\\copy events_plain FROM '$WORK/a/events.jsonl' $PG_JSONL"
}

SQLITE_TABLES="
CREATE TABLE recipients_plain (email text, first_name text, last_name text, country text,
    city text, locale text, timezone text, created_at text, topics text,
    consent_source text, attributes text);
CREATE UNIQUE INDEX recipients_plain_email ON recipients_plain (email);
CREATE TABLE events_plain (event_id text, email text, kind text, sku text,
    occurred_at text, properties text);
CREATE UNIQUE INDEX events_plain_event_id ON events_plain (event_id);"
US=$(printf '\x1f')

sqlite_load_recipients() {  # DB CSV
    sqlite3 "$1" "DROP TABLE IF EXISTS scratch" ".import --csv $2 scratch" \
        "INSERT INTO recipients_plain SELECT * FROM scratch"
}

sqlite_load_events() {  # DB JSONL: one document per row (ascii mode, no quoting)
    sqlite3 "$1" "DROP TABLE IF EXISTS scratch" "CREATE TABLE scratch (doc text)" \
        ".mode ascii" ".separator $US \\n" ".import $2 scratch" \
        "INSERT INTO events_plain SELECT doc ->> 'event_id', doc ->> 'email', doc ->> 'kind',
             doc ->> 'sku', doc ->> 'occurred_at', doc -> 'properties' FROM scratch"
}

sqlite_runs() {
    rm -f "$WORK"/*.db*
    mailcast_runs sqlite "$WORK/empty.db" "$WORK/populated.db"
    echo "== sqlite: sqlite3 .import + INSERT … SELECT"
    sqlite3 "$WORK/plain.db" "$SQLITE_TABLES"
    timed "sqlite loader recipients empty" bash -c 'sqlite_load_recipients "$@"' _ "$WORK/plain.db" "$WORK/a/recipients.csv"
    timed "sqlite loader events empty" bash -c 'sqlite_load_events "$@"' _ "$WORK/plain.db" "$WORK/a/events.jsonl"
    rm -f "$WORK/plain.db" && sqlite3 "$WORK/plain.db" "$SQLITE_TABLES"
    sqlite_load_recipients "$WORK/plain.db" "$WORK/b/other.csv"
    sqlite_load_events "$WORK/plain.db" "$WORK/b/other.jsonl"
    timed "sqlite loader recipients populated" bash -c 'sqlite_load_recipients "$@"' _ "$WORK/plain.db" "$WORK/a/recipients.csv"
    timed "sqlite loader events populated" bash -c 'sqlite_load_events "$@"' _ "$WORK/plain.db" "$WORK/a/events.jsonl"
}
export -f sqlite_load_recipients sqlite_load_events
export US

: > "$WORK/times"
for engine in $ENGINES; do "${engine}_runs"; done

echo "== ratio loader / mailcast (target ≥ 0.3)"
awk '{ t[$1 " " $2 " " $3 " " $4] = $5 }
     END { for (k in t) { split(k, p, " "); if (p[2] != "mailcast" || p[4] == "again") continue
             l = p[1] " loader " p[3] " " p[4]
             if (l in t) printf "  %-8s %-10s %-9s mailcast %7.2f s  loader %7.2f s  ratio %.2f\n",
                 p[1], p[3], p[4], t[k], t[l], t[l] / t[k] } }' "$WORK/times" | sort
