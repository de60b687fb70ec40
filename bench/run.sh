#!/usr/bin/env bash
#
# bench/run.sh - compare three paths to the same fake Ollama backend.
#
# In one run on one machine this measures
#   direct    the client talks to tests/fake-ollama itself;
#   nginx     nginx as a reverse proxy in front of the fake;
#   ogproxyd  the ogate gateway in front of the fake;
# with wrk for a small non-streaming chat request (1 and 64 connections)
# and with bench/streamload for 500 concurrent streaming chats, and prints
# one table with the ratios ogproxyd/nginx and ogproxyd/direct.  Absolute
# figures depend on the machine; the ratios are what to quote.
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
# which may itself contain spaces); peak memory is VmHWM.

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

hwm_kib() {
	local p total=0 k
	for p in "$@"; do
		k=$(awk '/^VmHWM:/ { print $2 }' "/proc/$p/status" \
		    2>/dev/null || true)
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

# nginx_start NAME UPSTREAM_PORT
nginx_start() {
	local name=$1 up=$2
	NGINX_PORT=$(free_port)
	# Each stream holds a client and an upstream connection.
	nginx_run "$TMP/$name" "$NGINX_PORT" "$BENCH_NGINX_WORKERS" \
	    $((BENCH_STREAMS * 2 + 1024)) "		server 127.0.0.1:$up;"
}

# og_start NAME UPSTREAM_PORT
og_start() {
	local name=$1 up=$2 dir="$TMP/$1"
	mkdir -p "$dir/state"
	chmod 700 "$dir/state"
	OG_PORT=$(free_port)
	cat >"$dir/ogproxyd.conf" <<-EOF
	# Generated by bench/run.sh.
	[server]
	listen = 127.0.0.1:$OG_PORT
	state_dir = $dir/state
	admin_socket = $dir/state/ogproxyd.sock

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

# path_start PATH PHASE UPSTREAM_PORT: starts the proxy of a path (if it
# has one) and sets PORT (where clients connect), PROXY_PID (the process
# that owns the proxy), AUTH (Authorization value to send) and LOGF.
path_start() {
	local path=$1 phase=$2 up=$3
	AUTH=
	case $path in
	direct)
		PORT=$up
		PROXY_PID=
		LOGF="$TMP/$phase-fake-$path.log"
		;;
	nginx)
		nginx_start "$phase-nginx" "$up"
		PORT=$NGINX_PORT
		PROXY_PID=$NGINX_PID
		LOGF="$TMP/$phase-nginx/error.log"
		;;
	ogproxyd)
		og_start "$phase-ogproxyd" "$up"
		PORT=$OG_PORT
		PROXY_PID=$OG_PID
		LOGF="$TMP/$phase-ogproxyd/ogproxyd.log"
		if [ -n "$BENCH_TOKEN" ]; then
			AUTH="Bearer $BENCH_TOKEN"
		fi
		;;
	esac
}

# The processes whose CPU and memory count as "the proxy".  For direct
# there is no proxy, so the backend's own figures stand in.
proxy_pids() {
	case $1 in
	direct) echo "$FAKE_PID" ;;
	nginx) children_of "$PROXY_PID" ;;
	ogproxyd) echo "$PROXY_PID"; children_of "$PROXY_PID" ;;
	esac
}

# smoke_test PATH BODY: one request through the path must answer 200,
# otherwise the path is broken and timing it would be meaningless.
smoke_test() {
	local path=$1 body=$2 code out="$TMP/smoke.out"
	local args=(-s -o "$out" -w '%{http_code}' --max-time 30
	    -H 'Host: localhost' -H 'Content-Type: application/json'
	    --data "$body")
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
	pids=$(proxy_pids "$path")
	[ -n "$pids" ] || die "cannot find the processes of $path"
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
	R[$path.rss.all]+=" $(hwm_kib $pids)"
	R[$path.lps.all]+=" $(kv "$line" lines_per_s)"
	R[$path.ttfb50.all]+=" $(kv "$line" ttfb_p50_ms)"
	R[$path.ttfb99.all]+=" $(kv "$line" ttfb_p99_ms)"
	R[$path.cpu.all]+=" $((c1 - c0))"
	R[$path.bcpu.all]+=" $((b1 - b0))"
	R[$path.cpuk.all]+=" $(awk -v t=$((c1 - c0)) -v hz="$CLK_TCK" \
	    -v n="$(kv "$line" lines)" \
	    'BEGIN { if (n > 0) printf "%.4f", t / hz / n * 1e6; else print 0 }')"
	if [ "$(kv "$line" failed)" != 0 ]; then
		ERR[$path.streams]=1
		ERRLIST+=("$path streams round $round: $(kv "$line" failed) of $BENCH_STREAMS failed (fail_connect=${line#* fail_connect=})")
	fi
	if ! kill -0 "$FAKE_PID" 2>/dev/null ||
	    { [ -n "$PROXY_PID" ] && ! kill -0 "$PROXY_PID" 2>/dev/null; }; then
		show_log "$LOGF"
		die "$path died during the streams"
	fi
	if [ -n "$PROXY_PID" ]; then
		stop_tracked "$PROXY_PID"
	fi
	stop_tracked "$FAKE_PID"
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
echo
echo "cpu s, rss MiB: the proxy process(es) over the stream run (nginx: its"
echo "workers).  In the direct column they are the backend's own figures."
echo "backend s: CPU time of the fake backend, the same work on every path."
echo "ratios are ogproxyd divided by the other column: above 1 is better for"
echo "req/s and chunks/s, below 1 is better for latency, cpu and rss."

# Added latency: how much later than the bare backend a proxy answers.
if has nginx || has ogproxyd; then
	echo
	printf '%-29s%11s%11s\n' "added latency vs direct" nginx ogproxyd
	for c in $BENCH_CHAT_CONNS; do
		for q in p50 p99; do
			printf '%-29s' "chat c=$c $q us"
			for p in nginx ogproxyd; do
				if has "$p"; then
					printf '%+11d' $(( ${R[$p.${q}_$c]} - ${R[direct.${q}_$c]} ))
				else
					printf '%11s' skipped
				fi
			done
			echo
		done
	done
fi

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
