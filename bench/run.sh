#!/usr/bin/env bash
#
# bench/run.sh - compare three paths to the same fake Ollama backend.
#
# In one run on one machine this measures
#   direct    the client talks to tests/fake-ollama itself;
#   nginx     nginx as a reverse proxy in front of the fake;
#   ogproxyd  the ogate gateway in front of the fake;
# with wrk for a small non-streaming chat request (1 and 64 connections)
# and with bench/streamload for 500 concurrent streaming chats; then what
# a proxy costs per stream in memory (2,000 slow streams), the time to
# first byte it adds on a stream, its system calls per small request and
# its memory when idle.  It prints one table with the ratios
# ogproxyd/nginx and ogproxyd/direct, and a summary against the targets
# of issue 12.  Absolute figures depend on the machine; the ratios are
# what to quote.
#
# Run it from the top of the build tree after make.  The environment
# overrides the defaults; see bench/README.md for the full list.
#
# Exit status: 0 when every point ran cleanly, 1 when a component failed
# to start (or a tool is missing), 2 when the table was printed but some
# point saw errors (those cells are marked with '!').

# make runs recipes with /bin/sh, which may not be bash; this script needs
# bash's arrays, so it starts itself again under bash.
if [ -z "${BASH_VERSION:-}" ]; then
	exec bash "$0" "$@"
fi

set -eu

SRCDIR=$(cd "$(dirname "$0")/.." && pwd)
BENCH_TAG=bench
# shellcheck source=bench/lib.sh
. "$SRCDIR/bench/lib.sh"

OGPROXYD=${OGPROXYD:-proxyd/ogproxyd}
OGPROXYD_ARGS=${OGPROXYD_ARGS:-}
OGCTL=${OGCTL:-ogctl/ogctl}
FAKE=${FAKE:-tests/fake-ollama}
STREAMLOAD=${STREAMLOAD:-bench/streamload}
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
WRK=${WRK:-wrk}
CHAT_LUA=${CHAT_LUA:-$SRCDIR/bench/chat.lua}

BENCH_SECONDS=${BENCH_SECONDS:-5}
BENCH_WARMUP=${BENCH_WARMUP:-1}
BENCH_ROUNDS=${BENCH_ROUNDS:-3}
BENCH_CHAT_CONNS=${BENCH_CHAT_CONNS:-1 64}
BENCH_CHAT_TOKENS=${BENCH_CHAT_TOKENS:-8}
BENCH_STREAMS=${BENCH_STREAMS:-500}
BENCH_STREAM_TOKENS=${BENCH_STREAM_TOKENS:-200}
BENCH_STREAM_DELAY=${BENCH_STREAM_DELAY:-10}
BENCH_STREAM_TTFT=${BENCH_STREAM_TTFT:-0}
BENCH_SLOW_STREAMS=${BENCH_SLOW_STREAMS:-2000}
BENCH_SLOW_TOKENS=${BENCH_SLOW_TOKENS:-20}
BENCH_SLOW_DELAY=${BENCH_SLOW_DELAY:-500}
BENCH_TTFB_REQUESTS=${BENCH_TTFB_REQUESTS:-100}
BENCH_SYSCALL_SECONDS=${BENCH_SYSCALL_SECONDS:-2}
BENCH_SYSCALL_TOOL=${BENCH_SYSCALL_TOOL:-auto}
BENCH_NGINX_WORKERS=${BENCH_NGINX_WORKERS:-1}
BENCH_MODEL=${BENCH_MODEL:-llama3.2}
BENCH_SKIP_GATEWAY=${BENCH_SKIP_GATEWAY:-0}
BENCH_SKIP_NGINX=${BENCH_SKIP_NGINX:-0}
BENCH_KEEP=${BENCH_KEEP:-0}
BENCH_TOKEN=${BENCH_TOKEN:-}

CHAT_BODY='{"model":"'$BENCH_MODEL'","messages":[{"role":"user","content":"hi"}],"stream":false}'

# bench_gateway_setup CONF ADMIN_SOCKET
#
# Called after every start of ogproxyd, once it accepts connections and
# before any request is sent through it.  It makes a user (unless a
# previous round's state already has it) and a token, so that the gateway
# is measured with authentication on, as it runs.
bench_gateway_setup() {
	"$OGCTL" -s "$2" user show bench >/dev/null 2>&1 ||
	    "$OGCTL" -s "$2" user add bench >/dev/null || return 1
	BENCH_TOKEN=$("$OGCTL" -s "$2" token create bench) || return 1
}

# ---------------------------------------------------------------------
# Process bookkeeping.  Every background process goes into PIDS so that
# the EXIT trap can stop it whatever way the script ends.

PIDS=()
TMP=




# Stops a process and drops it from PIDS.
stop_tracked() {
	local pid=$1 p keep=()
	stop_pid "$pid"
	for p in "${PIDS[@]}"; do
		[ "$p" = "$pid" ] || keep+=("$p")
	done
	PIDS=("${keep[@]+"${keep[@]}"}")
}

# shellcheck disable=SC2317 # Reached through the EXIT trap.
cleanup() {
	bench_cleanup "$BENCH_KEEP"
}

trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM




# ---------------------------------------------------------------------
# /proc sampling.  CPU time is utime+stime in clock ticks (fields 14 and
# 15 of /proc/PID/stat, counted after the parenthesised command name,
# which may itself contain spaces); memory is VmRSS now or VmHWM, the
# peak, in KiB.

CLK_TCK=$(getconf CLK_TCK)

cpu_ticks() {
	local p total=0 t
	for p in "$@"; do
		t=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null |
		    awk '{ print $12 + $13 }')
		total=$((total + ${t:-0}))
	done
	echo "$total"
}

# mem_kib FIELD PID...: the sum of one /proc/PID/status field.
mem_kib() {
	local field=$1 p total=0 k
	shift
	for p in "$@"; do
		k=$(awk -v f="$field:" '$1 == f { print $2 }' \
		    "/proc/$p/status" 2>/dev/null || true)
		total=$((total + ${k:-0}))
	done
	echo "$total"
}

# The worker processes of an nginx master: those do the proxying, the
# master only supervises them.
children_of() {
	local f="/proc/$1/task/$1/children"
	if [ -r "$f" ]; then
		tr ' ' '\n' <"$f" | grep -v '^$' || true
	else
		pgrep -P "$1" || true
	fi
}

# ---------------------------------------------------------------------
# Components.  Each start function sets a *_PID and *_PORT variable.

# fake_start NAME ARGS...: starts the fake backend on an ephemeral port.
fake_start() {
	local name=$1 portfile="$TMP/$1.port" logf="$TMP/$1.log" _
	shift
	rm -f "$portfile"
	"$FAKE" -l 127.0.0.1:0 -p "$portfile" -q "$@" >"$logf" 2>&1 &
	FAKE_PID=$!
	PIDS+=("$FAKE_PID")
	FAKE_PORT=
	for _ in $(seq 100); do
		if ! kill -0 "$FAKE_PID" 2>/dev/null; then
			show_log "$logf"
			die "fake backend ($FAKE) exited during startup"
		fi
		if [ -s "$portfile" ]; then
			read -r FAKE_PORT <"$portfile" || true
			case $FAKE_PORT in
			''|*[!0-9]*) FAKE_PORT= ;;
			*) break ;;
			esac
		fi
		sleep 0.1
	done
	[ -n "$FAKE_PORT" ] || {
		show_log "$logf"
		die "fake backend wrote no port to $portfile within 10 s"
	}
	wait_port "$FAKE_PID" "$FAKE_PORT" "fake backend" "$logf"
}

# nginx_start NAME UPSTREAM_PORT STREAMS
nginx_start() {
	local name=$1 up=$2 streams=$3 want=$BENCH_NGINX_WORKERS _
	NGINX_PORT=$(free_port)
	# Each stream holds a client and an upstream connection.
	nginx_run "$TMP/$name" "$NGINX_PORT" "$BENCH_NGINX_WORKERS" \
	    $((streams * 2 + 1024)) "		server 127.0.0.1:$up;"
	# The master listens before it forks its workers, and the workers
	# are what is measured: wait for them.  For "auto" the count is
	# nginx's to choose; it forks them one right after the other.
	[ "$want" != auto ] || want=1
	for _ in $(seq 50); do
		if [ "$(children_of "$NGINX_PID" | wc -l)" -ge "$want" ]; then
			[ "$BENCH_NGINX_WORKERS" != auto ] || sleep 0.2
			return 0
		fi
		sleep 0.1
	done
	die "nginx did not start its worker(s) within 5 s"
}

# og_start NAME UPSTREAM_PORT STREAMS
og_start() {
	local name=$1 up=$2 streams=$3 dir="$TMP/$1" limit=
	# The default max_connections (4096) holds the usual runs; more
	# streams than that need it raised, with room to spare.
	if [ $((streams + 1024)) -gt 4096 ]; then
		limit="max_connections = $((streams + 1024))"
	fi
	mkdir -p "$dir/state"
	chmod 700 "$dir/state"
	OG_PORT=$(free_port)
	cat >"$dir/ogproxyd.conf" <<-EOF
	# Generated by bench/run.sh.
	[server]
	listen = 127.0.0.1:$OG_PORT
	state_dir = $dir/state
	admin_socket = $dir/state/ogproxyd.sock
	$limit

	# The fake serves any number at once; the gateway's slots would only
	# queue what nginx passes straight through.
	[backend local]
	url = http://127.0.0.1:$up
	max_concurrent = 0
	EOF
	# OGPROXYD_ARGS is deliberately unquoted: it holds extra flags.
	# shellcheck disable=SC2086
	"$OGPROXYD" $OGPROXYD_ARGS -c "$dir/ogproxyd.conf" \
	    >"$dir/ogproxyd.log" 2>&1 &
	OG_PID=$!
	PIDS+=("$OG_PID")
	wait_port "$OG_PID" "$OG_PORT" ogproxyd "$dir/ogproxyd.log"
	bench_gateway_setup "$dir/ogproxyd.conf" "$dir/state/ogproxyd.sock" ||
	    die "bench_gateway_setup failed"
}

# path_start PATH PHASE UPSTREAM_PORT [STREAMS]: starts the proxy of a
# path (if it has one), sized for STREAMS concurrent streams (default
# BENCH_STREAMS), and sets PORT (where clients connect), PROXY_PID (the
# process that owns the proxy), AUTH (Authorization value to send) and
# LOGF.
path_start() {
	local path=$1 phase=$2 up=$3 streams=${4:-$BENCH_STREAMS}
	AUTH=
	case $path in
	direct)
		PORT=$up
		PROXY_PID=
		LOGF="$TMP/$phase-fake-$path.log"
		;;
	nginx)
		nginx_start "$phase-nginx" "$up" "$streams"
		PORT=$NGINX_PORT
		PROXY_PID=$NGINX_PID
		LOGF="$TMP/$phase-nginx/error.log"
		;;
	ogproxyd)
		og_start "$phase-ogproxyd" "$up" "$streams"
		PORT=$OG_PORT
		PROXY_PID=$OG_PID
		LOGF="$TMP/$phase-ogproxyd/ogproxyd.log"
		if [ -n "$BENCH_TOKEN" ]; then
			AUTH="Bearer $BENCH_TOKEN"
		fi
		;;
	esac
}

# proxy_pids PATH FAKE_PID PROXY_PID: the processes whose CPU and memory
# count as "the proxy".  For direct there is no proxy, so the backend's
# own figures stand in.
proxy_pids() {
	case $1 in
	direct) echo "$2" ;;
	nginx) children_of "$3" ;;
	ogproxyd) echo "$3"; children_of "$3" ;;
	esac
}

# smoke_test PATH BODY [CURL-ARGS...]: one request through the path must
# answer 200, otherwise the path is broken and timing it would be
# meaningless.
smoke_test() {
	local path=$1 body=$2 code out="$TMP/smoke.out"
	shift 2
	local args=(-s -o "$out" -w '%{http_code}' --max-time 30
	    -H 'Host: localhost' -H 'Content-Type: application/json'
	    --data "$body" "$@")
	if [ -n "$AUTH" ]; then
		args+=(-H "Authorization: $AUTH")
	fi
	code=$(curl "${args[@]}" "http://127.0.0.1:$PORT/api/chat" || true)
	if [ "$code" != 200 ]; then
		log "smoke test through $path answered '$code':"
		head -c 500 "$out" >&2 2>/dev/null || true
		echo >&2
		show_log "$LOGF"
		die "$path does not work; not benchmarking it"
	fi
}

# ---------------------------------------------------------------------
# Results live in R["path.metric"]; ERR["path.metric"] holds a note when
# the measurement behind a cell saw errors.

declare -A R ERR
ERRLIST=()

kv() {
	sed -n "s/.* $2=\\([^ ]*\\).*/\\1/p" <<<" $1"
}

# The chat points run with all paths up at once, each with its own fake
# backend, and in rounds: every round measures every path in turn, and the
# table shows the median over the rounds.  On a small virtual machine the
# same point can vary by a factor of two from one run to the next
# (scheduling, CPU frequency, neighbours), so measuring the paths side by
# side in time and taking medians keeps drift from landing on one path.

declare -A CHAT_PORT CHAT_AUTH CHAT_FAKE CHAT_PROXY CHAT_LOG

# chat_setup PATH: starts the backend and proxy of one path for the chat
# points and checks that a request gets through.
chat_setup() {
	local path=$1
	fake_start "chat-fake-$path" --tokens "$BENCH_CHAT_TOKENS" \
	    --delay 0 --ttft 0
	path_start "$path" chat "$FAKE_PORT"
	smoke_test "$path" "$CHAT_BODY"
	CHAT_PORT[$path]=$PORT
	CHAT_AUTH[$path]=$AUTH
	CHAT_FAKE[$path]=$FAKE_PID
	CHAT_PROXY[$path]=$PROXY_PID
	CHAT_LOG[$path]=$LOGF
}

chat_teardown() {
	local path=$1
	if [ -n "${CHAT_PROXY[$path]}" ]; then
		stop_tracked "${CHAT_PROXY[$path]}"
	fi
	stop_tracked "${CHAT_FAKE[$path]}"
}

# chat_wrk PATH CONNS SECONDS OUT: one wrk run against a path.
chat_wrk() {
	local path=$1
	BENCH_WRK_AUTH=${CHAT_AUTH[$path]} BENCH_MODEL=$BENCH_MODEL \
	    "$WRK" -t1 -c"$2" -d"$3s" --timeout 10s -s "$CHAT_LUA" \
	    "http://127.0.0.1:${CHAT_PORT[$path]}/api/chat" >"$4" 2>&1
}

# chat_point PATH CONNS ROUND: measures one point and appends its figures
# to the per-round lists in R.
chat_point() {
	local path=$1 c=$2 round=$3 line out errs sock n
	out="$TMP/wrk-$path-c$c-r$round.out"
	chat_wrk "$path" "$c" "$BENCH_SECONDS" "$out" ||
	    { cat "$out" >&2; die "wrk failed against $path"; }
	line=$(grep '^WRKRESULT ' "$out" || true)
	[ -n "$line" ] || { cat "$out" >&2; die "no result from wrk"; }
	R[$path.rps$c.all]+=" $(kv "$line" rps)"
	R[$path.p50_$c.all]+=" $(kv "$line" p50_us)"
	R[$path.p99_$c.all]+=" $(kv "$line" p99_us)"
	errs=$(kv "$line" status_errors)
	sock=$(( $(kv "$line" connect_errors) + $(kv "$line" read_errors) +
	    $(kv "$line" write_errors) + $(kv "$line" timeout_errors) ))
	n=$(kv "$line" requests)
	if [ "$errs" != 0 ] || [ "$sock" != 0 ] || [ "$n" = 0 ]; then
		ERR[$path.c$c]=1
		ERRLIST+=("$path chat c=$c round $round: $errs responses with status >= 400, $sock socket errors, $n requests")
	fi
	if ! kill -0 "${CHAT_FAKE[$path]}" 2>/dev/null ||
	    { [ -n "${CHAT_PROXY[$path]}" ] &&
	    ! kill -0 "${CHAT_PROXY[$path]}" 2>/dev/null; }; then
		show_log "${CHAT_LOG[$path]}"
		die "$path died during chat c=$c"
	fi
}

# median LIST...: the median of numbers (the lower middle for an even
# count, so that it is always a value that was measured).
median() {
	printf '%s\n' "$@" | sort -g |
	    awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'
}

# percentile FILE P: the nearest-rank P-th percentile (0 < P <= 100) of
# the numbers in FILE, one a line; nothing for an empty file.
percentile() {
	sort -g "$1" | awk -v p="$2" '{ v[NR] = $1 }
	    END {
		if (NR == 0)
			exit
		r = int(p / 100 * NR + 0.999999)
		if (r < 1)
			r = 1
		print v[r]
	    }'
}

# The stream whose first byte is timed: three lines 2 ms apart (the
# X-Fake-* headers, which both proxies pass on), so a proxy has to pass
# the first line on before the others exist.
TTFB_BODY='{"model":"'$BENCH_MODEL'","messages":[{"role":"user","content":"hi"}],"stream":true}'

# ttfb_point PATH ROUND: BENCH_TTFB_REQUESTS streaming chats, one after
# the other and each on a new connection, through the chat set-up of
# PATH.  Appends each time to first byte in µs (from the start of the
# connect, as streamload counts it) to $TMP/ttfb-PATH.txt.
ttfb_point() {
	local path=$1 round=$2 out="$TMP/ttfb-$1-r$2.out" urls=() _ n
	local args=(-s --max-time 30 -H 'Host: localhost'
	    -H 'Content-Type: application/json' -H 'Connection: close'
	    -H 'X-Fake-Tokens: 3' -H 'X-Fake-Delay: 2' -H 'X-Fake-Ttft: 0'
	    --data "$TTFB_BODY"
	    -w '\nOGTTFB %{http_code} %{time_starttransfer}\n')
	if [ -n "${CHAT_AUTH[$path]}" ]; then
		args+=(-H "Authorization: ${CHAT_AUTH[$path]}")
	fi
	for _ in $(seq "$BENCH_TTFB_REQUESTS"); do
		urls+=("http://127.0.0.1:${CHAT_PORT[$path]}/api/chat")
	done
	log "round $round/$BENCH_ROUNDS: $path stream ttfb, $BENCH_TTFB_REQUESTS requests"
	curl "${args[@]}" "${urls[@]}" >"$out" 2>&1 || true
	awk '$1 == "OGTTFB" && $2 == 200 { printf "%.0f\n", $3 * 1e6 }' \
	    "$out" >>"$TMP/ttfb-$path.txt"
	n=$(grep -c '^OGTTFB 200 ' "$out" || true)
	if [ "$n" != "$BENCH_TTFB_REQUESTS" ]; then
		ERR[$path.ttfb]=1
		ERRLIST+=("$path stream ttfb round $round: $n of $BENCH_TTFB_REQUESTS requests answered 200")
	fi
}

# The tool that counts system calls (BENCH_SYSCALL_TOOL): perf counts the
# raw_syscalls:sys_enter tracepoint and barely slows the process; strace
# -c stops it at every call, which slows it but not what it calls.
syscall_tool() {
	case $BENCH_SYSCALL_TOOL in
	auto)
		if command -v perf >/dev/null &&
		    perf stat -e raw_syscalls:sys_enter -o /dev/null -- true \
		    >/dev/null 2>&1; then
			echo perf
		elif command -v strace >/dev/null; then
			echo strace
		else
			echo none
		fi
		;;
	*) echo "$BENCH_SYSCALL_TOOL" ;;
	esac
}

# syscall_point PATH: counts the system calls of the proxy processes of
# PATH (every thread) while wrk sends small chats on one connection for
# BENCH_SYSCALL_SECONDS, and divides by the requests wrk completed.
# The count includes what the proxy does idle during the half second
# the tracer is given to attach, which is a few calls at most.
syscall_point() {
	local path=$1 pids tracer calls line n _
	local out="$TMP/syscalls-$1.out" wout="$TMP/wrk-$1-syscalls.out"
	[ "$SYSCALL_TOOL" != none ] || return 0
	pids=$(proxy_pids "$path" "${CHAT_FAKE[$path]}" "${CHAT_PROXY[$path]}")
	log "$path: system calls per request ($SYSCALL_TOOL), c=1 for $BENCH_SYSCALL_SECONDS s"
	# shellcheck disable=SC2046,SC2086 # Lists of process ids.
	case $SYSCALL_TOOL in
	perf)
		perf stat -e raw_syscalls:sys_enter -x, -o "$out" \
		    -p "$(echo $pids | tr ' ' ,)" >/dev/null 2>&1 &
		;;
	strace)
		strace -c -f -q -o "$out" $(printf -- '-p %s ' $pids) \
		    >/dev/null 2>&1 &
		;;
	esac
	tracer=$!
	PIDS+=("$tracer")
	sleep 0.5
	chat_wrk "$path" 1 "$BENCH_SYSCALL_SECONDS" "$wout" || true
	# Both tools write their counts when interrupted.
	kill -INT "$tracer" 2>/dev/null || true
	for _ in $(seq 50); do
		kill -0 "$tracer" 2>/dev/null || break
		sleep 0.1
	done
	stop_tracked "$tracer"
	case $SYSCALL_TOOL in
	perf) calls=$(awk -F, '$3 ~ /raw_syscalls:sys_enter/ { print $1 }' "$out") ;;
	strace) calls=$(awk '$NF == "total" { print $4 }' "$out") ;;
	esac
	line=$(grep '^WRKRESULT ' "$wout" || true)
	n=$(kv "$line" requests)
	case $calls in
	''|*[!0-9]*)
		ERRLIST+=("$path system calls: $SYSCALL_TOOL counted nothing (see $out)")
		ERR[$path.sys]=1
		return 0
		;;
	esac
	if [ -z "$n" ] || [ "$n" = 0 ]; then
		ERRLIST+=("$path system calls: wrk completed no request")
		ERR[$path.sys]=1
		return 0
	fi
	R[$path.sysreq]=$(awk -v c="$calls" -v n="$n" \
	    'BEGIN { printf "%.1f", c / n }')
}

bench_chat_all() {
	local p c round
	for p in "${PATHS[@]}"; do
		chat_setup "$p"
	done
	# The warm-up fills nginx's upstream keep-alive pool, the page cache
	# and the CPU caches, so that the first point is not the odd one out.
	if [ "$BENCH_WARMUP" != 0 ]; then
		for p in "${PATHS[@]}"; do
			log "$p: warm-up $BENCH_WARMUP s"
			chat_wrk "$p" 64 "$BENCH_WARMUP" "$TMP/warmup-$p.out" ||
			    true
		done
	fi
	for round in $(seq "$BENCH_ROUNDS"); do
		for c in $BENCH_CHAT_CONNS; do
			for p in "${PATHS[@]}"; do
				log "round $round/$BENCH_ROUNDS: $p chat c=$c for $BENCH_SECONDS s"
				chat_point "$p" "$c" "$round"
			done
		done
		for p in "${PATHS[@]}"; do
			ttfb_point "$p" "$round"
		done
	done
	for p in "${PATHS[@]}"; do
		syscall_point "$p"
		R[$p.ttfb50_1]=$(percentile "$TMP/ttfb-$p.txt" 50)
		R[$p.ttfb99_1]=$(percentile "$TMP/ttfb-$p.txt" 99)
	done
	for p in "${PATHS[@]}"; do
		for c in $BENCH_CHAT_CONNS; do
			# shellcheck disable=SC2086 # Lists of numbers.
			{
				R[$p.rps$c]=$(median ${R[$p.rps$c.all]})
				R[$p.p50_$c]=$(median ${R[$p.p50_$c.all]})
				R[$p.p99_$c]=$(median ${R[$p.p99_$c.all]})
			}
		done
		chat_teardown "$p"
	done
}

# streams_check LINE ERRKEY WHAT: notes the streams that streamload's
# result LINE says failed.
streams_check() {
	if [ "$(kv "$1" failed)" != 0 ]; then
		ERR[$2]=1
		ERRLIST+=("$3: $(kv "$1" failed) of $(kv "$1" streams) failed (fail_connect=${1#* fail_connect=})")
	fi
}

# path_stop PATH WHAT: stops the backend and proxy in FAKE_PID and
# PROXY_PID, or fails loudly if either died during WHAT.
path_stop() {
	if ! kill -0 "$FAKE_PID" 2>/dev/null ||
	    { [ -n "$PROXY_PID" ] && ! kill -0 "$PROXY_PID" 2>/dev/null; }; then
		show_log "$LOGF"
		die "$1 died during $2"
	fi
	if [ -n "$PROXY_PID" ]; then
		stop_tracked "$PROXY_PID"
	fi
	stop_tracked "$FAKE_PID"
}

# Runs the concurrent-streams point once for one path, with a fresh backend
# and a fresh proxy so that the peak RSS belongs to this point alone.  The
# path already answered a request in the chat phase, so there is no smoke
# test here: a request would add the length of a whole stream to the run,
# and streamload reports any stream that fails.
stream_round() {
	local path=$1 round=$2 out line pids b0 b1 c0 c1 rc=0 timeout
	fake_start "stream-fake-$path" --tokens "$BENCH_STREAM_TOKENS" \
	    --delay "$BENCH_STREAM_DELAY" --ttft "$BENCH_STREAM_TTFT"
	path_start "$path" stream "$FAKE_PORT"
	pids=$(proxy_pids "$path" "$FAKE_PID" "$PROXY_PID")
	[ -n "$pids" ] || die "cannot find the processes of $path"
	# The proxy has started (and been given its token) but has served
	# nothing yet: its idle memory.  Half a second lets what it starts
	# in the background (the gateway's first look at its backends) end.
	sleep 0.5
	# shellcheck disable=SC2086
	R[$path.idle.all]+=" $(mem_kib VmRSS $pids)"
	# shellcheck disable=SC2086
	{ c0=$(cpu_ticks $pids); b0=$(cpu_ticks "$FAKE_PID"); }

	timeout=$(( BENCH_STREAM_TOKENS * BENCH_STREAM_DELAY * 5 / 1000 + 60 ))
	log "round $round/$BENCH_ROUNDS: $path $BENCH_STREAMS streams of $BENCH_STREAM_TOKENS lines"
	out="$TMP/streams-$path-r$round.out"
	local args=(-q -c "$BENCH_STREAMS" -H 127.0.0.1 -p "$PORT"
	    -m "$BENCH_MODEL" -T "$timeout")
	if [ -n "$AUTH" ]; then
		args+=(-a "$AUTH")
	fi
	"$STREAMLOAD" "${args[@]}" >"$out" 2>&1 || rc=$?

	# shellcheck disable=SC2086
	{ c1=$(cpu_ticks $pids); b1=$(cpu_ticks "$FAKE_PID"); }
	line=$(grep '^STREAMLOAD ' "$out" || true)
	[ -n "$line" ] || { cat "$out" >&2; die "no result from streamload ($rc)"; }
	# shellcheck disable=SC2086
	R[$path.rss.all]+=" $(mem_kib VmHWM $pids)"
	R[$path.lps.all]+=" $(kv "$line" lines_per_s)"
	R[$path.ttfb50.all]+=" $(kv "$line" ttfb_p50_ms)"
	R[$path.ttfb99.all]+=" $(kv "$line" ttfb_p99_ms)"
	R[$path.cpu.all]+=" $((c1 - c0))"
	R[$path.bcpu.all]+=" $((b1 - b0))"
	R[$path.cpuk.all]+=" $(awk -v t=$((c1 - c0)) -v hz="$CLK_TCK" \
	    -v n="$(kv "$line" lines)" \
	    'BEGIN { if (n > 0) printf "%.4f", t / hz / n * 1e6; else print 0 }')"
	streams_check "$line" "$path.streams" "$path streams round $round"
	path_stop "$path" "the streams"
}

# Runs the streams point in rounds, paths interleaved like the chat points,
# and keeps the median of each figure (each figure on its own, so the
# medians in one column may come from different rounds).
bench_streams_all() {
	local p round
	for round in $(seq "$BENCH_ROUNDS"); do
		for p in "${PATHS[@]}"; do
			stream_round "$p" "$round"
		done
	done
	# shellcheck disable=SC2086 # Lists of numbers.
	for p in "${PATHS[@]}"; do
		R[$p.lps]=$(median ${R[$p.lps.all]})
		R[$p.ttfb50]=$(awk -v v="$(median ${R[$p.ttfb50.all]})" \
		    'BEGIN { printf "%.2f", v }')
		R[$p.ttfb99]=$(awk -v v="$(median ${R[$p.ttfb99.all]})" \
		    'BEGIN { printf "%.2f", v }')
		R[$p.cpu]=$(awk -v t="$(median ${R[$p.cpu.all]})" \
		    -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", t / hz }')
		R[$p.bcpu]=$(awk -v t="$(median ${R[$p.bcpu.all]})" \
		    -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", t / hz }')
		R[$p.cpuk]=$(awk -v v="$(median ${R[$p.cpuk.all]})" \
		    'BEGIN { printf "%.2f", v }')
		R[$p.rss]=$(awk -v k="$(median ${R[$p.rss.all]})" \
		    'BEGIN { printf "%.1f", k / 1024 }')
		R[$p.idle]=$(awk -v k="$(median ${R[$p.idle.all]})" \
		    'BEGIN { printf "%.1f", k / 1024 }')
		R[$p.idlemb]=$(awk -v k="$(median ${R[$p.idle.all]})" \
		    'BEGIN { printf "%.2f", k * 1024 / 1e6 }')
	done
}

# fake_active PORT: the streams the fake backend on PORT is serving now.
fake_active() {
	curl -s --max-time 5 -H 'Host: localhost' \
	    "http://127.0.0.1:$1/_fake/stats" |
	    sed -n 's/.*"active": *\([0-9]*\).*/\1/p'
}

# slow_point PATH: what each of BENCH_SLOW_STREAMS concurrent slow streams
# costs the proxy in memory.  A fresh backend answers every stream with
# BENCH_SLOW_TOKENS lines BENCH_SLOW_DELAY ms apart; the proxy's RSS is
# taken after one short request (so that what its first request sets up
# once is not counted per stream), then again once the backend serves
# every stream at once and a line has passed on each.  The growth divided
# by the streams is the memory per stream.  streamload then reads every
# stream to its end, so a proxy that drops streams is caught.
slow_point() {
	local path=$1 n=$BENCH_SLOW_STREAMS pids r0 r1 sl line rc=0
	local out="$TMP/slow-$1.out" active=0 len timeout _
	len=$((BENCH_SLOW_TOKENS * BENCH_SLOW_DELAY))
	timeout=$((len * 3 / 1000 + 60))
	fake_start "slow-fake-$path" --tokens "$BENCH_SLOW_TOKENS" \
	    --delay "$BENCH_SLOW_DELAY" --ttft 0
	path_start "$path" slow "$FAKE_PORT" "$n"
	smoke_test "$path" "$CHAT_BODY" -H 'X-Fake-Delay: 0'
	pids=$(proxy_pids "$path" "$FAKE_PID" "$PROXY_PID")
	[ -n "$pids" ] || die "cannot find the processes of $path"
	# shellcheck disable=SC2086
	r0=$(mem_kib VmRSS $pids)

	log "$path: $n slow streams ($BENCH_SLOW_TOKENS lines, $BENCH_SLOW_DELAY ms apart)"
	local args=(-q -c "$n" -H 127.0.0.1 -p "$PORT" -m "$BENCH_MODEL"
	    -T "$timeout")
	if [ -n "$AUTH" ]; then
		args+=(-a "$AUTH")
	fi
	"$STREAMLOAD" "${args[@]}" >"$out" 2>&1 &
	sl=$!
	PIDS+=("$sl")
	# Every stream must be open before the first one ends.
	for _ in $(seq $((len / 100 + 1))); do
		active=$(fake_active "$FAKE_PORT")
		[ "${active:-0}" -ge "$n" ] && break
		kill -0 "$sl" 2>/dev/null || break
		sleep 0.1
	done
	if [ "${active:-0}" -ge "$n" ]; then
		sleep "$(awk -v d="$BENCH_SLOW_DELAY" 'BEGIN { print d / 1000 }')"
		# shellcheck disable=SC2086
		r1=$(mem_kib VmRSS $pids)
		active=$(fake_active "$FAKE_PORT")
	fi
	if [ "${active:-0}" -lt "$n" ]; then
		ERR[$path.slow]=1
		ERRLIST+=("$path slow streams: only ${active:-0} of $n open at once (a longer BENCH_SLOW_TOKENS gives the burst more time)")
	fi
	wait "$sl" || rc=$?
	stop_tracked "$sl"
	line=$(grep '^STREAMLOAD ' "$out" || true)
	[ -n "$line" ] || { cat "$out" >&2; die "no result from streamload ($rc)"; }
	streams_check "$line" "$path.slow" "$path slow streams"
	if [ -n "${r1:-}" ]; then
		R[$path.slowmib]=$(awk -v k=$((r1 - r0)) \
		    'BEGIN { printf "%.1f", k / 1024 }')
		R[$path.slowbps]=$(( (r1 - r0) * 1024 / n ))
	fi
	path_stop "$path" "the slow streams"
}

# The slow streams run once per path: memory is steadier than time, and
# a round takes the length of a stream.
bench_slow_all() {
	local p
	for p in "${PATHS[@]}"; do
		slow_point "$p"
	done
}

# ---------------------------------------------------------------------
# Checks before anything starts.

command -v "$WRK" >/dev/null || die "wrk not found (apt-get install wrk)"
command -v curl >/dev/null || die "curl not found"
command -v python3 >/dev/null || die "python3 not found"
[ -f "$CHAT_LUA" ] || die "missing $CHAT_LUA"
[ -x "$FAKE" ] || die "fake backend $FAKE not found; build it with make (or set FAKE)"

# streamload is ours, so build it here if it is missing or stale, unless
# the caller pointed STREAMLOAD somewhere else.
if [ "$STREAMLOAD" = bench/streamload ]; then
	if [ ! -x "$STREAMLOAD" ] ||
	    [ "$SRCDIR/bench/streamload.c" -nt "$STREAMLOAD" ]; then
		mkdir -p bench
		log "building $STREAMLOAD"
		gcc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra \
		    -o "$STREAMLOAD" "$SRCDIR/bench/streamload.c" ||
		    die "cannot build $STREAMLOAD"
	fi
fi
[ -x "$STREAMLOAD" ] || die "$STREAMLOAD not found"

SYSCALL_TOOL=$(syscall_tool)
case $SYSCALL_TOOL in
perf|strace)
	command -v "$SYSCALL_TOOL" >/dev/null ||
	    die "$SYSCALL_TOOL not found (apt-get install $SYSCALL_TOOL)"
	;;
none)
	if [ "$BENCH_SYSCALL_TOOL" = auto ]; then
		log "*** neither perf nor strace works here: system calls are not counted"
		log "*** (apt-get install strace)"
	fi
	;;
*) die "BENCH_SYSCALL_TOOL is auto, perf, strace or none, not $SYSCALL_TOOL" ;;
esac

PATHS=(direct)
if [ "$BENCH_SKIP_NGINX" = 1 ]; then
	log "nginx skipped (BENCH_SKIP_NGINX=1)"
elif [ -x "$NGINX" ]; then
	PATHS+=(nginx)
else
	die "nginx not found at $NGINX (apt-get install nginx-light, or BENCH_SKIP_NGINX=1)"
fi
if [ "$BENCH_SKIP_GATEWAY" = 1 ]; then
	log "ogproxyd skipped (BENCH_SKIP_GATEWAY=1)"
elif [ -x "$OGPROXYD" ]; then
	PATHS+=(ogproxyd)
else
	log "*** ogproxyd not found at $OGPROXYD: the gateway column is SKIPPED"
	log "*** (build it with make, or set OGPROXYD=/path/to/ogproxyd)"
fi

# Hundreds of streams need more descriptors than the usual 1024; the
# children inherit whatever we manage to raise the limit to.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

TMP=$(mktemp -d "${TMPDIR:-/tmp}/ogate-bench.XXXXXX")

bench_chat_all
bench_streams_all
bench_slow_all

# ---------------------------------------------------------------------
# The table.

has() {
	local p
	for p in "${PATHS[@]}"; do
		[ "$p" = "$1" ] && return 0
	done
	return 1
}

cell() {
	local path=$1 key=$2 errkey=$3
	if ! has "$path"; then
		printf '%11s' skipped
	elif [ -n "${ERR[$path.$errkey]:-}" ]; then
		printf '%11s' "${R[$path.$key]:--}!"
	else
		printf '%11s' "${R[$path.$key]:--}"
	fi
}

ratio() {
	local a=${R[$1.$3]:-} b=${R[$2.$3]:-}
	if has "$1" && has "$2" && [ -n "$a" ] && [ -n "$b" ]; then
		awk -v a="$a" -v b="$b" \
		    'BEGIN { if (b + 0 > 0 && a != "-") printf "%11.2f", a / b; else printf "%11s", "-" }'
	else
		printf '%11s' -
	fi
}

row() {
	local label=$1 key=$2 errkey=$3
	printf '%-29s' "$label"
	cell direct "$key" "$errkey"
	cell nginx "$key" "$errkey"
	cell ogproxyd "$key" "$errkey"
	ratio ogproxyd nginx "$key"
	ratio ogproxyd direct "$key"
	echo
}

# Rounds the chat figures for display; the raw values stay in R.
for p in "${PATHS[@]}"; do
	for c in $BENCH_CHAT_CONNS; do
		R[$p.rps$c]=$(awk -v v="${R[$p.rps$c]}" 'BEGIN { printf "%.0f", v }')
	done
done

if [ "$BENCH_NGINX_WORKERS" = 1 ]; then
	workers="nginx worker_processes 1: one event loop against one"
else
	workers="nginx worker_processes $BENCH_NGINX_WORKERS"
fi
echo
echo "ogate benchmark  ($(nproc) cores, wrk -t1, $BENCH_SECONDS s per point, median of $BENCH_ROUNDS rounds, $workers)"
echo "backend: $FAKE, chat $BENCH_CHAT_TOKENS tokens; streams $BENCH_STREAMS x $BENCH_STREAM_TOKENS lines, ${BENCH_STREAM_DELAY} ms apart, ttft ${BENCH_STREAM_TTFT} ms"
printf '%-29s%11s%11s%11s%11s%11s\n' "" direct nginx ogproxyd og/nginx og/direct
for c in $BENCH_CHAT_CONNS; do
	row "chat c=$c req/s" "rps$c" "c$c"
	row "chat c=$c p50 us" "p50_$c" "c$c"
	row "chat c=$c p99 us" "p99_$c" "c$c"
done
s=$BENCH_STREAMS
row "streams=$s chunks/s" lps streams
row "streams=$s ttfb p50 ms" ttfb50 streams
row "streams=$s ttfb p99 ms" ttfb99 streams
row "streams=$s cpu s" cpu streams
row "streams=$s cpu ms/1k chunks" cpuk streams
row "streams=$s rss MiB" rss streams
row "streams=$s backend s" bcpu streams
row "idle rss MiB" idle idle
row "slow=$BENCH_SLOW_STREAMS rss growth MiB" slowmib slow
row "slow=$BENCH_SLOW_STREAMS bytes/stream" slowbps slow
row "stream c=1 ttfb p50 us" ttfb50_1 ttfb
row "stream c=1 ttfb p99 us" ttfb99_1 ttfb
row "syscalls/request c=1" sysreq sys
echo
echo "cpu s, rss MiB: the proxy process(es) over the stream run (nginx: its"
echo "workers).  In the direct column they are the backend's own figures."
echo "backend s: CPU time of the fake backend, the same work on every path."
echo "idle rss: VmRSS just after start, before any request (median of the"
echo "stream rounds).  slow: RSS growth from none to $BENCH_SLOW_STREAMS open slow streams,"
echo "and that divided by the streams.  stream ttfb: $(( BENCH_TTFB_REQUESTS * BENCH_ROUNDS )) streaming chats"
echo "one after the other, each on a new connection."
if [ "$SYSCALL_TOOL" = none ]; then
	echo "syscalls: not counted (BENCH_SYSCALL_TOOL, or no perf or strace)."
else
	echo "syscalls: counted with $SYSCALL_TOOL over wrk -c1 for $BENCH_SYSCALL_SECONDS s, per request."
fi
echo "ratios are ogproxyd divided by the other column: above 1 is better for"
echo "req/s and chunks/s, below 1 is better for latency, cpu, rss and calls."

# Added latency: how much later than the bare backend a proxy answers.
# The differences go into R[PATH.add_KEY] for the summary.
added_keys=
for c in $BENCH_CHAT_CONNS; do
	added_keys+=" p50_$c p99_$c"
done
added_keys+=" ttfb50_1 ttfb99_1"
for p in nginx ogproxyd; do
	for k in $added_keys; do
		if has "$p" && [ -n "${R[$p.$k]:-}" ] &&
		    [ -n "${R[direct.$k]:-}" ]; then
			R[$p.add_$k]=$(( ${R[$p.$k]} - ${R[direct.$k]} ))
		fi
	done
done

# addrow LABEL KEY ERRKEY: one line of the added-latency table, with
# ogproxyd's added time divided by nginx's (only when nginx adds any).
addrow() {
	local label=$1 key=$2 errkey=$3 p v
	printf '%-29s' "$label"
	for p in nginx ogproxyd; do
		v=${R[$p.add_$key]:-}
		if ! has "$p"; then
			printf '%11s' skipped
		elif [ -z "$v" ]; then
			printf '%11s' -
		elif [ -n "${ERR[$p.$errkey]:-}${ERR[direct.$errkey]:-}" ]; then
			printf '%11s' "$(printf '%+d!' "$v")"
		else
			printf '%+11d' "$v"
		fi
	done
	ratio_pos ogproxyd nginx "add_$key"
	echo
}

# ratio_pos A B KEY: like ratio, but only where B's figure is above zero,
# since a proxy can measure as adding nothing (or less than nothing).
ratio_pos() {
	local a=${R[$1.$3]:-} b=${R[$2.$3]:-}
	if [ -n "$a" ] && [ -n "$b" ] && [ "$b" -gt 0 ]; then
		awk -v a="$a" -v b="$b" 'BEGIN { printf "%11.2f", a / b }'
	else
		printf '%11s' -
	fi
}

if has nginx || has ogproxyd; then
	echo
	printf '%-29s%11s%11s%11s\n' "added latency vs direct" nginx ogproxyd \
	    og/nginx
	for c in $BENCH_CHAT_CONNS; do
		addrow "chat c=$c p50 us" "p50_$c" "c$c"
		addrow "chat c=$c p99 us" "p99_$c" "c$c"
	done
	addrow "stream c=1 ttfb p50 us" ttfb50_1 ttfb
	addrow "stream c=1 ttfb p99 us" ttfb99_1 ttfb
fi

# The summary: each of issue 12's targets with ogproxyd's and nginx's
# figures.  srow LABEL KEY ERRKEY KIND LIMIT SHOWN: KIND "ge" and "le"
# compare og/nginx with LIMIT, "abs" compares ogproxyd's own figure with
# LIMIT, "none" has no target; SHOWN is the target as printed.
srow() {
	local label=$1 key=$2 errkey=$3 kind=$4 limit=$5 shown=$6
	local n='' o='' r verdict=-
	has nginx && n=${R[nginx.$key]:-}
	has ogproxyd && o=${R[ogproxyd.$key]:-}
	r=$(awk -v a="$o" -v b="$n" \
	    'BEGIN { if (a != "" && b + 0 > 0) printf "%.2f", a / b }')
	case $kind in
	ge|le)
		[ -z "$r" ] || verdict=$(awk -v v="$r" -v t="$limit" -v k="$kind" \
		    'BEGIN { print ((k == "ge") ? v >= t : v <= t) ? "met" : "MISSED" }')
		;;
	abs)
		[ -z "$o" ] || verdict=$(awk -v v="$o" -v t="$limit" \
		    'BEGIN { print (v <= t) ? "met" : "MISSED" }')
		;;
	esac
	if [ -n "${ERR[nginx.$errkey]:-}${ERR[ogproxyd.$errkey]:-}${ERR[direct.$errkey]:-}" ]; then
		verdict="$verdict (errors: not valid)"
	fi
	printf '%-34s%10s%10s%10s%11s  %s\n' "$label" "${n:--}" "${o:--}" \
	    "${r:--}" "$shown" "$verdict"
}

echo
echo "summary: issue 12's targets, ogproxyd against nginx (og/nginx = ogproxyd / nginx)"
printf '%-34s%10s%10s%10s%11s\n' "" nginx ogproxyd og/nginx target
srow "small chat c=64 req/s" rps64 c64 ge 1 ">= 1.00x"
srow "small chat c=1 p99 added us" add_p99_1 c1 abs 100 "<= 100 us"
srow "$s streams cpu ms/1k chunks" cpuk streams le 1 "<= 1.00x"
srow "$s streams rss MiB" rss streams le 1 "<= 1.00x"
srow "idle rss MB" idlemb idle abs 4 "<= 4 MB"
srow "syscalls per request (c=1)" sysreq sys le 1 "<= 1.00x"
srow "bytes per stream ($BENCH_SLOW_STREAMS slow)" slowbps slow none 0 -
srow "stream ttfb added p50 us" add_ttfb50_1 ttfb none 0 -
srow "stream ttfb added p99 us" add_ttfb99_1 ttfb none 0 -

status=0
if [ "${#ERRLIST[@]}" -gt 0 ]; then
	echo
	echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
	echo "!!! ERRORS DURING THE RUN: cells marked '!' are NOT valid figures"
	for e in "${ERRLIST[@]}"; do
		echo "!!!   $e"
	done
	echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
	status=2
fi
if ! has ogproxyd; then
	echo
	echo "NOTE: ogproxyd was not benchmarked (see the messages above)."
fi
exit "$status"
