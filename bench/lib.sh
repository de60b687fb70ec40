# bench/lib.sh: what bench/run.sh and bench/fleet.sh share. Sourced;
# BENCH_TAG names the script in its messages.

log() {
	printf '%s\n' "$BENCH_TAG: $*" >&2
}

die() {
	printf '%s\n' "$BENCH_TAG: error: $*" >&2
	exit 1
}

# Stops one process we started: TERM first, KILL if it lingers, then
# reaps it so that no zombie and no listening socket is left behind.
stop_pid() {
	local pid=$1 _
	kill -TERM "$pid" 2>/dev/null || return 0
	for _ in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

# Prints the last lines of a log so that a failed start explains itself.
show_log() {
	if [ -s "$1" ]; then
		printf '%s\n' "--- last lines of $1:" >&2
		tail -n 20 "$1" >&2
	fi
}

# A free TCP port on the loopback interface.  Another program could take
# it before we bind it, but nothing else on a benchmark machine should be
# racing us for ports.
free_port() {
	python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# wait_port PID PORT NAME LOG: waits until PORT accepts connections, and
# fails early if the process that should listen there has exited.
wait_port() {
	local pid=$1 port=$2 name=$3 logf=$4 _
	for _ in $(seq 100); do
		if ! kill -0 "$pid" 2>/dev/null; then
			show_log "$logf"
			die "$name exited during startup"
		fi
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	show_log "$logf"
	die "$name did not listen on 127.0.0.1:$port within 10 s"
}
