#!/usr/bin/env bash
# Bounce classification throughput (issue 15, "Performance"): messages per second on
# one core over the corpus repeated, and Perl Sisimai on the same files for the ratio.
#
#   benches/bounce_bench.sh [DIR] [REPEAT]     # default ../shared/bounces, 200
#
# Runs only when /tmp/mailcast-bench.lock does not exist (other benchmarks hold it),
# and holds it while it runs. Sisimai is timed when `perl -MSisimai` works (Debian:
# libsisimai-perl); it parses the files REPEAT_SISIMAI times (default 3).
set -euo pipefail
cd "$(dirname "$0")/.."

DIR=${1:-../shared/bounces}
REPEAT=${2:-200}
REPEAT_SISIMAI=${REPEAT_SISIMAI:-3}
LOCK=/tmp/mailcast-bench.lock

if [ -e "$LOCK" ]; then
    echo "another benchmark holds $LOCK; not running" >&2
    exit 1
fi
echo "bounce_bench $$" > "$LOCK"
trap 'rm -f "$LOCK"' EXIT

cargo build --release --quiet --bin mailcast
files=$(ls "$DIR"/mail | wc -l)

echo "== mailcast: $files messages x $REPEAT, one core"
mailcast_rate=$(taskset -c 0 target/release/mailcast bounces evaluate "$DIR" --repeat "$REPEAT" \
    | awk '/^throughput:/ { print $2 }')
echo "mailcast: $mailcast_rate messages/s"

if perl -MSisimai -e 1 2>/dev/null; then
    echo "== Sisimai $(perl -MSisimai -e 'print $Sisimai::VERSION'): $files messages x $REPEAT_SISIMAI, one core"
    sisimai_rate=$(taskset -c 0 perl -MSisimai -MTime::HiRes=time -e '
        my ($dir, $n) = @ARGV;
        opendir(my $d, "$dir/mail") or die "cannot read $dir/mail: $!";
        my @files = map { "$dir/mail/$_" } grep { -f "$dir/mail/$_" } readdir($d);
        my $t = time;
        my $parse = Sisimai->can("rise") ? "rise" : "make";    # 5.x : 4.x
        for (1 .. $n) { for my $f (@files) { Sisimai->$parse($f) } }
        printf "%.0f\n", @files * $n / (time - $t);
    ' "$DIR" "$REPEAT_SISIMAI")
    echo "sisimai: $sisimai_rate messages/s"
    awk -v a="$mailcast_rate" -v b="$sisimai_rate" 'BEGIN { printf "ratio: mailcast is %.0fx Sisimai\n", a / b }'
else
    echo "Sisimai is not installed (apt-get install libsisimai-perl); no ratio"
fi
