#!/bin/sh
# setup.sh: set up a Debian 12 machine for ogate, build it, and run the
# gateway, the test suite or the benchmark.
#
#   ./setup.sh run     install what is missing, build, run ogproxyd
#   ./setup.sh test    install what is missing, build, run every test
#   ./setup.sh bench   install what is missing, build, run the benchmark
#   ./setup.sh bench fleet [--quick]
#                      the same, for the fleet benchmark (bench/fleet.sh)
#   ./setup.sh build   install what is missing and build
#
# The build goes to ./build (out of the source tree). Packages are
# installed with apt-get, through sudo when not run as root.
set -eu

cd "$(dirname "$0")"
top=$(pwd)
what=${1:-run}

BUILD_DEPS="build-essential autoconf automake libtool pkg-config
	libssl-dev libcurl4-openssl-dev libsqlite3-dev libncurses-dev
	libssh2-1-dev libjansson-dev"
TEST_DEPS="curl jq python3 mandoc tmux openssh-server sqlite3 valgrind
	clang libclang-rt-14-dev debhelper lintian shellcheck"
BENCH_DEPS="nginx-light wrk strace"

case $what in
run|build) deps=$BUILD_DEPS ;;
test) deps="$BUILD_DEPS $TEST_DEPS" ;;
bench) deps="$BUILD_DEPS $TEST_DEPS $BENCH_DEPS" ;;
*) echo "usage: $0 run|test|bench [fleet [--quick]]|build" >&2; exit 2 ;;
esac

# The client tests run the official npm packages under Node.js; any
# Node.js 18 or later will do, Debian's included.
if [ "$what" = test ] && ! command -v node >/dev/null 2>&1; then
	deps="$deps nodejs npm"
fi

missing=
for p in $deps; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
	    grep -q 'install ok installed'; then
		missing="$missing $p"
	fi
done
if [ -n "$missing" ]; then
	echo "setup: installing:$missing"
	sudo=
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	$sudo apt-get update -q
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q $missing
fi

if [ ! -x configure ] || [ configure.ac -nt configure ] ||
    [ Makefile.am -nt Makefile.in ]; then
	autoreconf -fi
fi
mkdir -p build
cd build
if [ ! -f Makefile ] || [ ../configure -nt Makefile ]; then
	../configure --enable-werror
fi
jobs=$(nproc 2>/dev/null || echo 2)
make -j"$jobs"

case $what in
run)
	cd "$top"
	sock=$top/ogate-state/ogproxyd.sock
	cat <<-EOF
	setup: starting ogproxyd with its built-in defaults: listening on
	setup: 127.0.0.1:11435, proxying to http://127.0.0.1:11434, state in ./ogate-state.
	setup: every request needs an API token. Make an admin and its token
	setup: (printed once) from another terminal with:
	setup:   $top/build/ogctl/ogctl -s $sock user add admin --role admin && $top/build/ogctl/ogctl -s $sock token create admin
	EOF
	exec ./build/proxyd/ogproxyd
	;;
test)
	make -j"$jobs" check
	;;
bench)
	if [ "${2:-}" = fleet ]; then
		make bench-fleet FLEET_ARGS="${3:-}"
	else
		make bench
	fi
	;;
esac
