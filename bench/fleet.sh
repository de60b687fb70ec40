#!/usr/bin/env bash
#
# bench/fleet.sh - a fleet of four Ollama backends shared by a batch user
# and interactive users, behind nginx round robin, nginx least_conn and
# ogproxyd.
#
# Each backend is tests/fake-ollama with Ollama's scheduler turned on:
# 4 slots per model, at most 2 models resident, a load takes 3 s.  Three
# models, A B C, are asked for 60/30/10 by the interactive users; each is
# resident somewhere from the start (b1: A,B  b2: A,B  b3: A,C  b4: A,C),
# so a router that sends each request where its model is resident causes
# no load at all, while one that ignores models makes backends evict and
# load.  bench/fleetload drives one batch user (12 long streams on A, one
# after the other) and 6 interactive users (short streams, 1-2 s think
# time), each with its own token.  Every way runs on fresh backends.
#
# The "kill" variant does the same and kills one backend (SIGKILL)
# halfway through.
#
# Run it from the top of the build tree, or from the source tree when the
# build is in ./build.  Environment: see bench/README.md.  --quick runs
# 20 s per way instead of 60.
#
# Exit status: 0 the run finished (whether the targets were met or not is
# in the table), 1 a component failed to start or died, 2 usage.

if [ -z "${BASH_VERSION:-}" ]; then
	exec bash "$0" "$@"
fi

set -eu

SRCDIR=$(cd "$(dirname "$0")/.." && pwd)
BENCH_TAG=fleet
# shellcheck source=bench/lib.sh
. "$SRCDIR/bench/lib.sh"

for arg in "$@"; do
	case $arg in
	--quick) FLEET_SECONDS=${FLEET_SECONDS:-20} ;;
	-h|--help)
		echo "usage: bench/fleet.sh [--quick]   (settings: bench/README.md)"
		exit 0 ;;
	*) echo "usage: bench/fleet.sh [--quick]" >&2; exit 2 ;;
	esac
done

# The binaries: in the current directory when it is a build tree, else
# in ./build of the source tree.
if [ -x proxyd/ogproxyd ] || [ -x tests/fake-ollama ]; then
	BUILDDIR=.
else
	BUILDDIR=$SRCDIR/build
fi
OGPROXYD=${OGPROXYD:-$BUILDDIR/proxyd/ogproxyd}
OGPROXYD_ARGS=${OGPROXYD_ARGS:-}
OGCTL=${OGCTL:-$BUILDDIR/ogctl/ogctl}
FAKE=${FAKE:-$BUILDDIR/tests/fake-ollama}
FLEETLOAD=${FLEETLOAD:-$BUILDDIR/bench/fleetload}
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}

FLEET_SECONDS=${FLEET_SECONDS:-60}
FLEET_GRACE=${FLEET_GRACE:-10}
FLEET_SETTLE=${FLEET_SETTLE:-2}
FLEET_WAYS=${FLEET_WAYS:-nginx-rr nginx-lc ogproxyd}
FLEET_VARIANTS=${FLEET_VARIANTS:-steady kill}
FLEET_KILL=${FLEET_KILL:-b1}
FLEET_MODELS=${FLEET_MODELS:-llama3.1:8b qwen2.5:7b mistral:7b}
FLEET_POPULARITY=${FLEET_POPULARITY:-60 30 10}
FLEET_LOAD_MS=${FLEET_LOAD_MS:-3000}
FLEET_SLOTS=${FLEET_SLOTS:-4}
FLEET_MAX_LOADED=${FLEET_MAX_LOADED:-2}
FLEET_BATCH=${FLEET_BATCH:-12}
FLEET_USERS=${FLEET_USERS:-6}
FLEET_BATCH_TOKENS=${FLEET_BATCH_TOKENS:-400}
FLEET_TOKENS=${FLEET_TOKENS:-20-40}
FLEET_DELAY=${FLEET_DELAY:-10-20}
FLEET_TTFT=${FLEET_TTFT:-50}
FLEET_THINK=${FLEET_THINK:-1000-2000}
FLEET_SEED=${FLEET_SEED:-1}
FLEET_RESULTS=${FLEET_RESULTS:-$SRCDIR/bench/results}
FLEET_KEEP=${FLEET_KEEP:-0}

read -r MA MB MC <<<"$FLEET_MODELS"
read -r WA WB WC <<<"$FLEET_POPULARITY"
if [ -z "$MC" ] || [ -z "$WC" ]; then
	echo "FLEET_MODELS and FLEET_POPULARITY need three each" >&2
	exit 2
fi
# Where each model is resident at the start: A everywhere, B on two
# backends, C on the other two.
BACKENDS=(b1 b2 b3 b4)
declare -A PRELOAD=([b1]="$MA,$MB" [b2]="$MA,$MB" [b3]="$MA,$MC"
    [b4]="$MA,$MC")

# ---------------------------------------------------------------------
# Processes.  Everything we start goes into PIDS, so that the EXIT trap
# stops it whatever way the script ends.

PIDS=()
TMP=

# shellcheck disable=SC2317 # Reached through the EXIT trap.
cleanup() {
	bench_cleanup "$FLEET_KEEP"
}

trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM




# ---------------------------------------------------------------------
# The fleet.  FAKE_PID[bN] and FAKE_PORT[bN] for each backend.

declare -A FAKE_PID FAKE_PORT

# fake_start DIR NAME: one backend with the scheduler on and its two
# models already resident.
fake_start() {
	local dir=$1 name=$2 portfile="$1/$2.port" logf="$1/$2.log" pid port='' _
	"$FAKE" -l 127.0.0.1:0 -p "$portfile" -q -m "$MA,$MB,$MC" \
	    --num-parallel "$FLEET_SLOTS" --max-loaded "$FLEET_MAX_LOADED" \
	    --load-ms "$FLEET_LOAD_MS" --preload "${PRELOAD[$name]}" \
	    >"$logf" 2>&1 &
	pid=$!
	PIDS+=("$pid")
	for _ in $(seq 100); do
		kill -0 "$pid" 2>/dev/null ||
		    { show_log "$logf"; die "fake backend $name exited"; }
		if [ -s "$portfile" ]; then
			read -r port <"$portfile" || true
			[ -n "$port" ] && break
		fi
		sleep 0.1
	done
	[ -n "$port" ] || die "fake backend $name wrote no port"
	wait_port "$pid" "$port" "fake backend $name" "$logf"
	FAKE_PID[$name]=$pid
	FAKE_PORT[$name]=$port
}

# loads_of NAME: the loads that requests caused on a backend (its
# preloads are not counted by the fake).
loads_of() {
	curl -s --max-time 5 "http://127.0.0.1:${FAKE_PORT[$1]}/_fake/sched" |
	    jq '[.loads[]] | add // 0'
}

# nginx_start DIR BALANCE: BALANCE is "" (round robin) or "least_conn;".
nginx_start() {
	local dir=$1 balance=$2 servers='' b
	PORT=$(free_port)
	for b in "${BACKENDS[@]}"; do
		servers+="		server 127.0.0.1:${FAKE_PORT[$b]};"$'\n'
	done
	nginx_run "$dir" "$PORT" 1 1024 "		$balance"$'\n'"$servers"
	PROXY_PID=$NGINX_PID
	PROXY_LOG=$dir/error.log
	# nginx does not look at the tokens; the users send them anyway.
	BATCH_TOKEN=batch-token
	USER_TOKENS=$(seq -s, -f 'user-token-%g' "$FLEET_USERS")
}

# og_start DIR: ogproxyd in front of the four backends, with a user and
# a token for the batch job and for each interactive user.
og_start() {
	local dir=$1 sock b i t tokens=()
	mkdir -p "$dir/state"
	chmod 700 "$dir/state"
	PORT=$(free_port)
	sock=$dir/state/ogproxyd.sock
	{
		echo "# Generated by bench/fleet.sh."
		echo "[server]"
		echo "listen = 127.0.0.1:$PORT"
		echo "state_dir = $dir/state"
		echo "admin_socket = $sock"
		for b in "${BACKENDS[@]}"; do
			echo
			echo "[backend $b]"
			echo "url = http://127.0.0.1:${FAKE_PORT[$b]}"
			echo "max_concurrent = $FLEET_SLOTS"
		done
	} >"$dir/ogproxyd.conf"
	# OGPROXYD_ARGS is deliberately unquoted: it holds extra flags.
	# shellcheck disable=SC2086
	"$OGPROXYD" $OGPROXYD_ARGS -c "$dir/ogproxyd.conf" \
	    >"$dir/ogproxyd.log" 2>&1 &
	PROXY_PID=$!
	PIDS+=("$PROXY_PID")
	PROXY_LOG=$dir/ogproxyd.log
	wait_port "$PROXY_PID" "$PORT" ogproxyd "$dir/ogproxyd.log"
	"$OGCTL" -s "$sock" user add batch >/dev/null ||
	    die "ogctl user add batch failed"
	BATCH_TOKEN=$("$OGCTL" -s "$sock" token create batch) ||
	    die "ogctl token create failed"
	for i in $(seq "$FLEET_USERS"); do
		"$OGCTL" -s "$sock" user add "user$i" >/dev/null ||
		    die "ogctl user add user$i failed"
		t=$("$OGCTL" -s "$sock" token create "user$i") ||
		    die "ogctl token create failed"
		tokens+=("$t")
	done
	USER_TOKENS=$(IFS=,; echo "${tokens[*]}")
}

# smoke_test: the model list answers through the proxy.  No generation:
# it would change what the backends hold before the run.
smoke_test() {
	local code
	code=$(curl -s -o "$TMP/smoke.out" -w '%{http_code}' --max-time 10 \
	    -H "Authorization: Bearer $BATCH_TOKEN" \
	    "http://127.0.0.1:$PORT/api/tags" || true)
	if [ "$code" != 200 ]; then
		head -c 500 "$TMP/smoke.out" >&2 2>/dev/null || true
		show_log "$PROXY_LOG"
		die "$1: GET /api/tags through the proxy answered '$code'"
	fi
}

# ---------------------------------------------------------------------
# One run: fresh backends, a fresh proxy, the load, the counts.
# Results go to R[way.variant.key].

declare -A R

kv() {
	sed -n "s/.* $2=\\([^ ]*\\).*/\\1/p" <<<" $1"
}

run_one() {
	local way=$1 variant=$2 dir="$TMP/$1-$2" b line loads=0 n
	local lpid victim_loads='' half='' out
	mkdir -p "$dir"
	FAKE_PID=()
	FAKE_PORT=()
	for b in "${BACKENDS[@]}"; do
		fake_start "$dir" "$b"
	done
	case $way in
	nginx-rr) nginx_start "$dir/nginx" "" ;;
	nginx-lc) nginx_start "$dir/nginx" "least_conn;" ;;
	ogproxyd) og_start "$dir/og" ;;
	*) die "unknown way $way (nginx-rr, nginx-lc, ogproxyd)" ;;
	esac
	smoke_test "$way"
	# Time for a gateway to learn what each backend holds.
	sleep "$FLEET_SETTLE"

	log "$way/$variant: $FLEET_SECONDS s"
	out="$dir/fleetload.out"
	"$FLEETLOAD" -p "$PORT" -d "$FLEET_SECONDS" -g "$FLEET_GRACE" \
	    -s "$FLEET_SEED" -o "$dir/requests.csv" \
	    -m "$MA=$WA,$MB=$WB,$MC=$WC" --batch "$FLEET_BATCH" \
	    --users "$FLEET_USERS" --batch-token "$BATCH_TOKEN" \
	    --user-tokens "$USER_TOKENS" --batch-tokens "$FLEET_BATCH_TOKENS" \
	    --tokens "$FLEET_TOKENS" --delay "$FLEET_DELAY" \
	    --ttft "$FLEET_TTFT" --think "$FLEET_THINK" >"$out" 2>&1 &
	lpid=$!
	PIDS+=("$lpid")
	if [ "$variant" = kill ]; then
		half=$(awk -v s="$FLEET_SECONDS" 'BEGIN { print s / 2 }')
		sleep "$half"
		# Its load counter dies with it: read it first.
		victim_loads=$(loads_of "$FLEET_KILL")
		kill -KILL "${FAKE_PID[$FLEET_KILL]}"
		wait "${FAKE_PID[$FLEET_KILL]}" 2>/dev/null || true
		log "$way/$variant: killed $FLEET_KILL (SIGKILL) at ${half} s"
	fi
	wait "$lpid" || { cat "$out" >&2; die "fleetload failed"; }
	line=$(grep '^FLEETLOAD ' "$out" || true)
	[ -n "$line" ] || { cat "$out" >&2; die "no result from fleetload"; }

	for b in "${BACKENDS[@]}"; do
		if [ "$variant" = kill ] && [ "$b" = "$FLEET_KILL" ]; then
			n=$victim_loads
		else
			kill -0 "${FAKE_PID[$b]}" 2>/dev/null ||
			    { show_log "$dir/$b.log"; die "backend $b died"; }
			n=$(loads_of "$b")
		fi
		loads=$((loads + ${n:-0}))
	done
	kill -0 "$PROXY_PID" 2>/dev/null ||
	    { show_log "$PROXY_LOG"; die "$way died during the run"; }

	for k in ttft_p50_ms ttft_p95_ms ttft_max_ms i_requests i_done \
	    i_unfinished i_errors b_done b_per_min b_tokens_per_s b_errors \
	    errors err_connect err_status err_broken err_errline err_protocol; do
		R[$way.$variant.$k]=$(kv "$line" "$k")
	done
	R[$way.$variant.loads]=$loads
	# Errors of requests sent after the kill (all of them in steady).
	R[$way.$variant.err_after]=$(awk -F, -v t="${half:-0}" '
	    NR > 1 && $4 >= t * 1000 && $9 != "ok" && $9 != "cut" &&
	    $9 != "unfinished" { n++ } END { print n + 0 }' \
	    "$dir/requests.csv")
	printf '%s %s %s loads=%s\n' "$way" "$variant" "$line" "$loads" \
	    >>"$RESDIR/raw.txt"
	cp "$dir/requests.csv" "$RESDIR/requests-$way-$variant.csv"
	stop_all
}

# ---------------------------------------------------------------------
# The report.

# A ratio, or "-" when there is nothing to divide by.
ratio() {
	awk -v a="${1:-}" -v b="${2:-}" 'BEGIN {
		if (a == "" || b == "" || b + 0 == 0) print "-";
		else printf "%.2f\n", a / b }'
}

# verdict VALUE OP LIMIT: "met" or "missed", "-" when there is no value.
verdict() {
	awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN {
		if (v == "-" || v == "") { print "-"; exit }
		ok = (op == "<=") ? (v + 0 <= l + 0) : (op == ">=") ? (v + 0 >= l + 0) : (v + 0 == l + 0)
		print ok ? "met" : "MISSED" }'
}

table() {
	local variant=$1 w errs
	echo "| way | TTFT p50 ms | TTFT p95 ms | TTFT max ms | loads | errors (i+b) | batch done/min | batch tok/s | interactive done | unfinished |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	for w in $FLEET_WAYS; do
		errs="${R[$w.$variant.errors]} (${R[$w.$variant.i_errors]}+${R[$w.$variant.b_errors]})"
		echo "| $w | ${R[$w.$variant.ttft_p50_ms]} | ${R[$w.$variant.ttft_p95_ms]} | ${R[$w.$variant.ttft_max_ms]} | ${R[$w.$variant.loads]} | $errs | ${R[$w.$variant.b_per_min]} | ${R[$w.$variant.b_tokens_per_s]} | ${R[$w.$variant.i_done]}/${R[$w.$variant.i_requests]} | ${R[$w.$variant.i_unfinished]} |"
	done
	echo
	echo "Errors by kind: $(for w in $FLEET_WAYS; do
		printf '%s: connect %s, status %s, broken %s, error line %s, protocol %s' \
		    "$w" "${R[$w.$variant.err_connect]}" \
		    "${R[$w.$variant.err_status]}" \
		    "${R[$w.$variant.err_broken]}" \
		    "${R[$w.$variant.err_errline]}" \
		    "${R[$w.$variant.err_protocol]}"
		if [ "$variant" = kill ]; then
			printf ' (%s of them sent after the kill)' \
			    "${R[$w.$variant.err_after]}"
		fi
		printf '; '
	done)"
}

has_way() {
	case " $FLEET_WAYS " in *" $1 "*) return 0 ;; esac
	return 1
}

targets() {
	local variant=$1 p95 thr
	if ! has_way ogproxyd || ! has_way nginx-rr; then
		echo "(the targets compare ogproxyd with nginx-rr; one is not in FLEET_WAYS)"
		return
	fi
	p95=$(ratio "${R[ogproxyd.$variant.ttft_p95_ms]}" \
	    "${R[nginx-rr.$variant.ttft_p95_ms]}")
	thr=$(ratio "${R[ogproxyd.$variant.b_tokens_per_s]}" \
	    "${R[nginx-rr.$variant.b_tokens_per_s]}")
	echo "| target | value | goal | |"
	echo "|---|---:|---:|---|"
	echo "| interactive TTFT p95, ogproxyd / nginx-rr | $p95 | <= 0.3 | $(verdict "$p95" '<=' 0.3) |"
	echo "| model loads caused by routing, ogproxyd | ${R[ogproxyd.$variant.loads]} | 0 | $(verdict "${R[ogproxyd.$variant.loads]}" '==' 0) |"
	echo "| errors seen by clients, ogproxyd | ${R[ogproxyd.$variant.errors]} | 0 | $(verdict "${R[ogproxyd.$variant.errors]}" '==' 0) |"
	echo "| batch throughput (tokens/s), ogproxyd / nginx-rr | $thr | >= 0.7 | $(verdict "$thr" '>=' 0.7) |"
}

report() {
	local v
	echo "## ogate fleet benchmark"
	echo
	echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores; ogproxyd: $OGPROXYD ($(cd "$SRCDIR" && git describe --always --dirty 2>/dev/null || echo '?'))."
	echo "4 fake backends: $FLEET_SLOTS slots per model, at most $FLEET_MAX_LOADED models resident, a load takes $FLEET_LOAD_MS ms."
	echo "Models $MA/$MB/$MC asked for $WA/$WB/$WC by the interactive users; resident at the start: b1 ${PRELOAD[b1]}, b2 ${PRELOAD[b2]}, b3 ${PRELOAD[b3]}, b4 ${PRELOAD[b4]} (a model-aware router needs no load)."
	echo "Load: batch user with $FLEET_BATCH streams of $FLEET_BATCH_TOKENS tokens on $MA; $FLEET_USERS interactive users, $FLEET_TOKENS tokens, think $FLEET_THINK ms; $FLEET_DELAY ms per token, first token after $FLEET_TTFT ms; $FLEET_SECONDS s per run (+ up to $FLEET_GRACE s for interactive requests in flight), fresh backends for every run."
	for v in $FLEET_VARIANTS; do
		echo
		case $v in
		steady) echo "### All four backends up" ;;
		kill) echo "### $FLEET_KILL killed (SIGKILL) halfway" ;;
		esac
		echo
		table "$v"
		echo
		targets "$v"
	done
	echo
	echo "TTFT: interactive requests, from connect to the first streamed line; one still waiting at the end of the grace period counts with its wait so far (column unfinished); failed requests are not in the TTFT figures but in errors."
	echo "loads: loads counted by the backends, beyond the models resident at the start."
	echo "errors: requests that got a status other than 200, a refused or cut connection, an error line in the stream or no \"done\":true (batch streams cut by the end of the run are not errors). A failed batch request is retried after 0.5 s, so while a front end refuses requests the batch errors count refusals, not lost jobs."
	echo "batch: generations finished within the run, per minute; tokens streamed to the batch user within the run, per second."
}

# ---------------------------------------------------------------------

command -v curl >/dev/null || die "curl not found"
command -v jq >/dev/null || die "jq not found"
command -v python3 >/dev/null || die "python3 not found"
[ -x "$FAKE" ] || die "fake backend $FAKE not found; build with make (or set FAKE)"
for w in $FLEET_WAYS; do
	case $w in
	nginx-*) [ -x "$NGINX" ] || die "nginx not found at $NGINX (apt-get install nginx-light)" ;;
	ogproxyd)
		[ -x "$OGPROXYD" ] || die "ogproxyd not found at $OGPROXYD"
		[ -x "$OGCTL" ] || die "ogctl not found at $OGCTL" ;;
	esac
done
if [ "$FLEETLOAD" = "$BUILDDIR/bench/fleetload" ]; then
	if [ ! -x "$FLEETLOAD" ] ||
	    [ "$SRCDIR/bench/fleetload.c" -nt "$FLEETLOAD" ]; then
		mkdir -p "$BUILDDIR/bench"
		log "building $FLEETLOAD"
		gcc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -pthread \
		    -o "$FLEETLOAD" "$SRCDIR/bench/fleetload.c" ||
		    die "cannot build $FLEETLOAD"
	fi
fi
[ -x "$FLEETLOAD" ] || die "$FLEETLOAD not found"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/ogate-fleet.XXXXXX")
RESDIR=$FLEET_RESULTS/fleet-$(date -u +%Y%m%d-%H%M%S)
mkdir -p "$RESDIR"

for v in $FLEET_VARIANTS; do
	case $v in steady|kill) ;; *) die "unknown variant $v (steady, kill)" ;; esac
	for w in $FLEET_WAYS; do
		run_one "$w" "$v"
	done
done

report | tee "$RESDIR/report.md"
log "results in $RESDIR"
