# lib.sh: what the integration tests share. Each test is a bash script
# that sources this file, starts the fake Ollama backend and the real
# ogproxyd on loopback ports chosen by the kernel, and prints TAP.

set -u

top_builddir=${top_builddir:-$(pwd)}
top_srcdir=${top_srcdir:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
OGPROXYD=${OGPROXYD:-$top_builddir/proxyd/ogproxyd}
FAKE=${FAKE:-$top_builddir/tests/fake-ollama}
OGCTL=${OGCTL:-$top_builddir/ogctl/ogctl}

T=$(mktemp -d "${TMPDIR:-/tmp}/ogtest.XXXXXX")
_tap_n=0
_tap_failed=0
_pids=()

cleanup() {
	local pid rc=$1
	# A script that gave up part-way (exit 1 after a failed start) must
	# not pass on the checks it ran before.
	if [ "$rc" -ne 0 ]; then
		echo "not ok $((++_tap_n)) - the test script stopped early (exit $rc)"
		_tap_failed=$((_tap_failed + 1))
	fi
	for pid in "${_pids[@]}"; do
		kill "$pid" 2>/dev/null
	done
	for pid in "${_pids[@]}"; do
		wait "$pid" 2>/dev/null
	done
	# A sanitizer report in a daemon's log is a failure of the run.
	if grep -l -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' \
	    "$T"/*.log >/dev/null 2>&1; then
		echo "not ok $((++_tap_n)) - sanitizer reports in daemon logs"
		grep -h -A20 -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' \
		    "$T"/*.log | sed 's/^/# /' | head -60
		_tap_failed=$((_tap_failed + 1))
	fi
	# So is anything valgrind said about a daemon (OG_VALGRIND=1).
	if [ -n "$(cat "$T"/valgrind.*.log 2>/dev/null)" ]; then
		echo "not ok $((++_tap_n)) - valgrind reports for the daemon"
		cat "$T"/valgrind.*.log | sed 's/^/# /' | head -60
		_tap_failed=$((_tap_failed + 1))
	fi
	echo "1..$_tap_n"
	if [ "${KEEP_TMP:-}" = "" ]; then
		rm -rf "$T"
	else
		echo "# kept $T"
	fi
	[ "$_tap_failed" -eq 0 ]
}
trap 'cleanup $?; exit $?' EXIT

# The daemon's database has a rollback journal: a reader waits out a
# commit (as the daemon waits out readers) instead of failing at once.
sqlite3() {
	command sqlite3 -cmd '.timeout 5000' "$@"
}

# ok CONDITION-EXIT-STATUS DESCRIPTION: usage `cmd; ok $? "it works"`.
ok() {
	_tap_n=$((_tap_n + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $_tap_n - $2"
	else
		echo "not ok $_tap_n - $2"
		_tap_failed=$((_tap_failed + 1))
	fi
}

# is GOT WANT DESCRIPTION
is() {
	_tap_n=$((_tap_n + 1))
	if [ "$1" = "$2" ]; then
		echo "ok $_tap_n - $3"
	else
		echo "not ok $_tap_n - $3"
		printf '#   got:  %s\n#   want: %s\n' "$1" "$2" | head -20
		_tap_failed=$((_tap_failed + 1))
	fi
}

# like GOT REGEX DESCRIPTION: GOT's lines are joined with spaces first.
like() {
	_tap_n=$((_tap_n + 1))
	if printf '%s' "$1" | tr '\n' ' ' | sed 's/ $//' | grep -qE -- "$2"; then
		echo "ok $_tap_n - $3"
	else
		echo "not ok $_tap_n - $3"
		printf '#   got:  %s\n#   want: /%s/\n' "$1" "$2" | head -20
		_tap_failed=$((_tap_failed + 1))
	fi
}

skip_all() {
	echo "1..0 # SKIP $1"
	trap - EXIT
	rm -rf "$T"
	exit 0
}

diag() {
	printf '# %s\n' "$@"
}

# wait_for SECONDS COMMAND...: poll until the command succeeds.
wait_for() {
	local limit=$(( $1 * 20 ))
	shift
	for _ in $(seq "$limit"); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	return 1
}

# start_fake NAME [ARGS...]: sets NAME_PORT and NAME_PID (e.g. FAKE_PORT).
start_fake() {
	local name=$1
	shift
	rm -f "$T/$name.port"
	"$FAKE" -l 127.0.0.1:0 -p "$T/$name.port" "$@" 2>"$T/$name.log" &
	local pid=$!
	_pids+=("$pid")
	wait_for 10 test -s "$T/$name.port" || { echo "# $name did not start"; cat "$T/$name.log" | sed 's/^/# /'; return 1; }
	printf -v "${name}_PORT" '%s' "$(cat "$T/$name.port")"
	printf -v "${name}_PID" '%s' "$pid"
}

# write_config FILE BACKEND_PORT [EXTRA SERVER LINES...]
write_config() {
	local file=$1 port=$2
	shift 2
	{
		echo "[server]"
		echo "listen = 127.0.0.1:0"
		echo "state_dir = $T/state"
		local line
		for line in "$@"; do
			echo "$line"
		done
		echo
		echo "[backend local]"
		echo "url = http://127.0.0.1:$port"
	} >"$file"
}

# start_proxy CONFIG [ARGS...]: sets OG_PORT, OG_PID, OG (base URL) and
# OG_LOG; waits until the daemon says it is ready.
start_proxy() {
	local conf=$1
	shift
	OG_LOG=$T/ogproxyd.$RANDOM.log
	if [ -n "${OG_VALGRIND:-}" ]; then
		# Valgrind runs the daemon in its own process: the pid is
		# the daemon's, signals reach it, and any report fails the test.
		valgrind -q --vgdb=no --error-exitcode=99 --leak-check=full \
		    --errors-for-leak-kinds=definite --show-leak-kinds=definite \
		    --log-file="$T/valgrind.%p.log" \
		    "$OGPROXYD" -c "$conf" -v "$@" 2>"$OG_LOG" &
	else
		"$OGPROXYD" -c "$conf" -v "$@" 2>"$OG_LOG" &
	fi
	OG_PID=$!
	_pids+=("$OG_PID")
	if ! wait_for 10 grep -q ': info: ready' "$OG_LOG"; then
		echo "# ogproxyd did not start:"
		sed 's/^/# /' "$OG_LOG"
		return 1
	fi
	OG_PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$OG_LOG" | head -1)
	OG=http://127.0.0.1:$OG_PORT
	OGATE_SOCKET=$(sed -n 's/.*admin API on \(.*\)$/\1/p' "$OG_LOG" | head -1)
	export OGATE_SOCKET
	# Every test acts as an admin unless it says otherwise; the user
	# survives restarts with the same state directory.
	if [ -z "${OG_NO_BOOTSTRAP:-}" ]; then
		"$OGCTL" user show admin >/dev/null 2>&1 ||
		    "$OGCTL" user add admin --role admin || return 1
		OG_TOKEN=$("$OGCTL" token create admin --name tests) || return 1
	fi
}

# ogcurl ARGS...: curl with the admin token of the test.
ogcurl() {
	curl -H "Authorization: Bearer $OG_TOKEN" "$@"
}

# stop_proxy: SIGTERM and wait; the exit status is returned.
stop_proxy() {
	kill -TERM "$OG_PID" 2>/dev/null
	wait "$OG_PID"
}

# fake_get PATH: a control endpoint of the fake backend named FAKE.
fake_get() {
	curl -s "http://127.0.0.1:$FAKE_PORT$1"
}

fake_reset() {
	curl -s -X POST "http://127.0.0.1:$FAKE_PORT/_fake/reset" >/dev/null
}

# fake_count: how many requests reached the fake since its last reset.
fake_count() {
	fake_get /_fake/log | jq length
}

# raw PORT: send standard input as raw bytes, print the raw response.
raw() {
	local port=$1 wait=${2:-1}
	python3 -c '
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(sys.stdin.buffer.read())
s.settimeout(float(sys.argv[2]))
out = b""
try:
    while True:
        d = s.recv(65536)
        if not d:
            break
        out += d
except socket.timeout:
    pass
sys.stdout.buffer.write(out)
' "$port" "$wait"
}

# status_of: the status code of the first response in a raw reply.
status_of() {
	head -1 | awk '{print $2}'
}
