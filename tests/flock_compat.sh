#!/bin/sh
# flock_compat.sh - util-linux flock(1)'s own test cases (its
# tests/ts/flock/flock), adapted, run against any flock-like command:
#
#   sh tests/flock_compat.sh FLOCK DIR
#
# FLOCK is util-linux's flock or lockmgr's lmflock; DIR an empty scratch
# directory. The locks are DIR/lock1 and DIR/lock2: files for flock,
# lock names for lmflock (which uses $LOCKMGR_REGION's service and
# creates no file). Each case prints one line, "case: exit N" (and what
# the command printed, if it ran), so that the output of a run against
# flock and a run against lmflock can be compared line for line; a case
# whose exit status is not flock's prints "FAIL" and the script exits 1.
#
# Left out, because lmflock differs from flock there on purpose (see
# lockctl(1), section flock): the fd form and -u (lmflock refuses both,
# 64), a command that cannot be run (flock 69, lmflock 126/127), and the
# wording of --verbose. tests/test_flock.c checks those.
#
# Waits are bounded polls; nothing sleeps in place of synchronisation.

FLOCK=$1
DIR=$2
if [ -z "$FLOCK" ] || [ ! -d "$DIR" ]; then
	echo "usage: sh tests/flock_compat.sh FLOCK DIR" >&2
	exit 64
fi
L1=$DIR/lock1
L2=$DIR/lock2
failed=0

# check NAME EXPECTED [FLOCK ARGS...]: run, print and compare.
check() {
	name=$1
	want=$2
	shift 2
	out=$("$FLOCK" "$@" 2>/dev/null)
	rc=$?
	if [ "$rc" = "$want" ]; then
		echo "$name: exit $rc${out:+ ($out)}"
	else
		echo "FAIL $name: exit $rc, expected $want${out:+ ($out)}"
		failed=1
	fi
}

# hold MODE: a holder of L1 in the background (MODE --shared or
# --exclusive), once it is running its command. Its command's pid goes
# in $DIR/ready, so that the command itself can be ended: flock does
# not pass signals on, and a command left running would keep its lock.
hold() {
	rm -f "$DIR/ready"
	"$FLOCK" "$1" "$L1" sh -c "echo \$\$ >'$DIR/ready.tmp' &&
		mv '$DIR/ready.tmp' '$DIR/ready' && exec sleep 30" &
	holder=$!
	n=0
	while [ ! -s "$DIR/ready" ]; do
		n=$((n + 1))
		if [ "$n" -gt 400 ] || ! kill -0 "$holder" 2>/dev/null; then
			echo "FAIL the $1 holder never started (20 s)"
			kill "$holder" 2>/dev/null
			exit 1
		fi
		sleep 0.05
	done
}

unhold() {
	kill "$(cat "$DIR/ready")" 2>/dev/null
	wait "$holder"
	echo "holder: exit $?"
}

# ---- a shared holder (util-linux's "general lock") ----------------------
hold --shared
check non-block 123 --nonblock --conflict-exit-code 123 "$L1" echo never
check no-fork 123 --no-fork --nonblock --conflict-exit-code 123 "$L1" \
	echo never
check shared 0 --shared "$L1" echo "Have shared lock"
check exclusive 123 --nonblock --exclusive --conflict-exit-code 123 "$L1" \
	echo never
check default-conflict-code 1 -n "$L1" echo never
check wait-zero-is-nonblock 1 -w 0 "$L1" echo never
check timeout 5 --timeout 0.3 --conflict-exit-code 5 "$L1" echo never
check shared-nonblock 0 -s -n "$L1" echo "shared beside shared"
unhold
check after-holder 0 --timeout 5 --conflict-exit-code 5 "$L1" echo "After timeout."

# ---- an exclusive holder -------------------------------------------------
hold --exclusive
check shared-vs-exclusive 1 -s -n "$L1" echo never
check e-is-exclusive 7 -e -n -E 7 "$L1" echo never
unhold

# ---- the command and its exit status ------------------------------------
check exit-status 42 "$L2" sh -c 'exit 42'
check killed-by-signal 137 "$L2" sh -c 'kill -KILL $$'
check command-string 3 "$L2" -c 'echo "from -c"; exit 3'
check command-long 0 "$L2" --command 'echo "from --command"'
check close 0 -o "$L2" echo "with -o"
check no-fork-status 7 -F "$L2" sh -c 'echo "with -F"; exit 7'
check args-stay-cmds 0 "$L2" echo -n -s -w 5

# ---- usage errors (64, EX_USAGE) -----------------------------------------
check no-args 64
check bad-option 64 --no-such-option "$L2" true
check exit-code-range 64 -E 256 "$L2" true
check exit-code-not-number 64 -E x "$L2" true
check bad-timeout 64 -w soon "$L2" true
check c-without-string 64 "$L2" -c
check c-two-strings 64 "$L2" -c 'echo a' 'echo b'
check c-before-lock 64 -c 'echo a' "$L2"
check no-fork-and-close 64 -F -o "$L2" true

exit "$failed"
