#!/usr/bin/env python3
"""Diagnostic for benches/send_bench.sh --sql-log: where a worker run's database time goes.

Reads a worker log written with RUST_LOG=...,sqlx::query=debug (sqlx logs every statement
with the time it took on its connection, pool waits excluded) and sums the statements by
what they do in mailcast's delivery path.

    benches/send/sqlx_breakdown.py WORKER_LOG [WALL_SECONDS]
"""
import re
import sys
from collections import defaultdict

LINE = re.compile(r'^(\S+) DEBUG sqlx::query: summary="(?P<summary>[^"]*)" '
                  r'db\.statement="(?P<stmt>(?:[^"\\]|\\.)*)".*?'
                  r'rows_affected=(?P<aff>\d+) rows_returned=(?P<ret>\d+).*elapsed_secs=(?P<secs>[0-9.e-]+)')

RULES = [
    ("expire_leases", lambda s: "SET status = 'unknown'" in s),
    ("claim (UPDATE … 'sending' RETURNING)", lambda s: "SET status = 'sending'" in s),
    ("claimed rows (SELECT … JOIN recipients)", lambda s: "AS delivery_id" in s),
    ("record_outcomes (one UPDATE per delivery)", lambda s: "SET status = $3, message_id" in s),
    ("campaign status read", lambda s: s.lstrip().startswith("SELECT") and "FROM campaigns" in s),
    ("ledger_counts", lambda s: "COUNT(*) FROM deliveries" in s),
    ("freeze_audience", lambda s: "INSERT INTO deliveries" in s),
    ("store_links", lambda s: "INSERT INTO links" in s),
    ("campaign transition", lambda s: "UPDATE campaigns" in s),
    ("apalis queue (Jobs/Workers)", lambda s: "Jobs" in s or "Workers" in s or "apalis" in s),
    ("BEGIN/COMMIT", lambda s: s.strip().upper() in ("BEGIN", "COMMIT", "ROLLBACK")),
]


def classify(summary: str, stmt: str) -> str:
    text = stmt.replace("\\n", " ") or summary
    for name, match in RULES:
        if match(text):
            return name
    return "other: " + summary[:40]


def main() -> None:
    path = sys.argv[1]
    wall = float(sys.argv[2]) if len(sys.argv) > 2 else None
    count = defaultdict(int)
    secs = defaultdict(float)
    rows = defaultdict(int)
    with open(path, errors="replace") as log:
        for line in log:
            m = LINE.match(line)
            if not m:
                continue
            kind = classify(m["summary"], m["stmt"])
            count[kind] += 1
            secs[kind] += float(m["secs"])
            rows[kind] += int(m["aff"]) + int(m["ret"])
    total = sum(secs.values())
    print(f"| statements | count | rows | total s | mean ms |" + (" % of wall |" if wall else ""))
    print("|---|---:|---:|---:|---:|" + ("---:|" if wall else ""))
    for kind in sorted(secs, key=secs.get, reverse=True):
        line = f"| {kind} | {count[kind]} | {rows[kind]} | {secs[kind]:.2f} | {1000 * secs[kind] / count[kind]:.3f} |"
        if wall:
            line += f" {100 * secs[kind] / wall:.0f} |"
        print(line)
    print(f"| all | {sum(count.values())} | {sum(rows.values())} | {total:.2f} | |" + (f" {100 * total / wall:.0f} |" if wall else ""))


if __name__ == "__main__":
    main()
