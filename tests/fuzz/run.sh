#!/bin/bash
# run.sh: run one libFuzzer harness for a while over a copy of its seed
# corpus, and report the run as one TAP check.
#
#   tests/fuzz/run.sh build-fuzz/tests/fuzz/fuzz-http [SECONDS]
#
# SECONDS defaults to $FUZZ_SECONDS, else 30. In a build configured with
# --enable-fuzzing, "make check" runs this for each harness. The seeds
# of fuzz-NAME are tests/fuzz/corpus/NAME and its dictionary is
# tests/fuzz/NAME.dict. The seeds are copied first, so the inputs a run
# adds to its corpus are thrown away with it: the seeds kept in the tree
# are chosen by hand, not grown by every run.
#
# When libFuzzer finds a crash, a leak, a hang or a memory blow-up, it
# leaves the input beside the harness (NAME-crash-SHA1 and the like);
# the check then fails and prints the file's path, its bytes in hex and
# the sanitizer's report. Replay it with: HARNESS FILE.
set -u

bin=${1:?usage: run.sh HARNESS [SECONDS]}
secs=${2:-${FUZZ_SECONDS:-30}}
name=$(basename "$bin")
name=${name#fuzz-}
srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
corpus=$srcdir/tests/fuzz/corpus/$name
dict=$srcdir/tests/fuzz/$name.dict
prefix=$(dirname "$bin")/$name-

echo "1..1"
case $secs in
''|*[!0-9]*|0)
	echo "not ok 1 - fuzz-$name: '$secs' is not a number of seconds"
	exit 0
	;;
esac
if [ ! -x "$bin" ] || [ ! -d "$corpus" ]; then
	echo "not ok 1 - fuzz-$name: no harness at $bin or no corpus at $corpus"
	exit 0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/fuzz-$name.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
mkdir "$work/corpus"
cp "$corpus"/* "$work/corpus/"
chmod -R u+w "$work/corpus"
args=(-max_total_time="$secs" -timeout=10 -rss_limit_mb=2048
    -print_final_stats=1 -artifact_prefix="$prefix")
[ -f "$dict" ] && args+=(-dict="$dict")

# A stack trace for undefined behaviour too, not just for ASan's reports.
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} \
    "$bin" "${args[@]}" "$work/corpus" >"$work/log" 2>&1
rc=$?

stat() {
	sed -n "s/^stat::$1: *\\([0-9]*\\)\$/\\1/p" "$work/log" | tail -1
}
runs=$(stat number_of_executed_units)
rate=$(stat average_exec_per_sec)
took=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$work/log")
# The last status line: "#N DONE cov: C ft: F corp: U/SIZE ...".
cov=$(grep -o 'cov: [0-9]* ft: [0-9]* corp: [0-9]*/[0-9a-zA-Z]*' \
    "$work/log" | tail -1)
artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$work/log" |
    tail -1)

if [ "$rc" -eq 0 ] && [ -z "$artifact" ]; then
	echo "ok 1 - fuzz-$name ran ${runs:-0} executions for" \
	    "${took:-$secs} seconds, no crash"
	echo "# ${rate:-0} executions a second; ${cov:-no coverage line}"
	exit 0
fi

if [ -n "$artifact" ] && [ -f "$artifact" ]; then
	echo "not ok 1 - fuzz-$name failed after ${runs:-some} executions:" \
	    "$artifact"
	echo "# the input, $(wc -c <"$artifact") bytes (the first 1024 in hex):"
	head -c 1024 "$artifact" | od -An -tx1 -v | sed 's/^/#  /'
	echo "# replay it with: $bin $artifact"
else
	echo "not ok 1 - fuzz-$name exited with status $rc and no input saved"
fi
# The sanitizer's report, or whatever the harness said last.
if grep -q -E '^==[0-9]+==|runtime error|check failed' "$work/log"; then
	grep -E -A25 -m1 \
	    'check failed|runtime error|^==[0-9]+==.*(ERROR|WARNING)' \
	    "$work/log" | sed 's/^/# /'
else
	tail -25 "$work/log" | sed 's/^/# /'
fi
exit 0
