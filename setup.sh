#!/bin/sh
# setup.sh - install what lockmgr needs on Debian, then run make.
#
#   ./setup.sh demo     build and run the basic demo
#   ./setup.sh test     build and run the test suite
#   ./setup.sh          just install and build
#
# Installs the Debian packages below with apt-get when any is missing
# (as root; otherwise it prints the command to run). gnuplot-nox only
# draws lockbench's plots; clang, libclang-rt-14-dev (libFuzzer and the
# sanitizer runtimes) and llvm-14 (llvm-symbolizer, for readable stack
# traces) are for make fuzz; everything else builds without them.
set -eu
PKGS="make gcc libc6-dev pkg-config zlib1g-dev liburcu-dev libcmocka-dev libncurses-dev"
PKGS="$PKGS gnuplot-nox"
PKGS="$PKGS clang libclang-rt-14-dev llvm-14"
PKGS="$PKGS jq" # make test runs the man pages' jq examples with it
PKGS="$PKGS libcurl4-openssl-dev libjansson-dev" # the etcd backend
PKGS="$PKGS etcd-server etcd-client" # its tests (and lockbench) run a real etcd
PKGS="$PKGS redis-server libhiredis-dev" # lockbench's Redis peer (its own server)

missing=""
for p in $PKGS; do
	dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "setup.sh: missing Debian packages:$missing" >&2
		echo "setup.sh: run as root, or: sudo apt-get install$missing" >&2
		exit 1
	fi
	echo "setup.sh: installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends $missing
fi
cd "$(dirname "$0")"
[ $# -gt 0 ] || set -- all
exec make -j2 "$@"
