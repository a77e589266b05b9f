#!/bin/sh
# run.sh - run lockmgr's test binaries and summarise.
#
#   LOCKMGR_BIN=build sh tests/run.sh build/tests/test_region ...
#
# Each binary is a cmocka program, run under `timeout` so that a hung
# binary cannot stall the suite. Its output is shown as it is produced
# and the cmocka summary lines ("[  PASSED  ] N test(s)." and
# "[  FAILED  ] N test(s)") are counted. A binary that crashes, is killed
# by the timeout, or exits non-zero without a cmocka summary (for example
# it could not start) counts as one failed case, so a crash is never
# mistaken for a pass.
#
# Prints one line per binary and, last, exactly one line
# "N passed, N failed" (cmocka cases). Exits 1 if anything failed.

TIMEOUT=${LOCKMGR_TEST_TIMEOUT:-300}

if [ -z "${LOCKMGR_BIN:-}" ]; then
	LOCKMGR_BIN=build
fi
export LOCKMGR_BIN

if [ $# -eq 0 ]; then
	echo "usage: LOCKMGR_BIN=DIR sh tests/run.sh TEST_BINARY..." >&2
	exit 64
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/lockmgr-run.XXXXXX") || exit 71
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

total_pass=0
total_fail=0
failed_bins=""

for bin in "$@"; do
	name=$(basename "$bin")
	log="$tmp/$name.log"
	start=$(date +%s)
	if [ ! -x "$bin" ]; then
		echo "$name: not built ($bin)" >"$log"
		rc=127
	else
		# Both streams: cmocka prints its summary on stderr. The
		# exit status of the pipeline's first command is kept in a
		# file (POSIX sh has no PIPESTATUS).
		{ timeout -k 10 "$TIMEOUT" "$bin" 2>&1; echo $? >"$tmp/rc"; } |
			tee "$log"
		rc=$(cat "$tmp/rc")
	fi
	secs=$(( $(date +%s) - start ))

	# cmocka: "[  PASSED  ] 3 test(s)." and "[  FAILED  ] 1 test(s),
	# listed below:"; there is at most one of each per group.
	pass=$(sed -n 's/^\[  PASSED  \] \([0-9][0-9]*\) test(s)\..*/\1/p' \
		"$log" | awk '{s += $1} END {print s + 0}')
	fail=$(sed -n 's/^\[  FAILED  \] \([0-9][0-9]*\) test(s).*/\1/p' \
		"$log" | awk '{s += $1} END {print s + 0}')
	summary=$(grep -c '^\[  PASSED  \] [0-9][0-9]* test(s)\.' "$log")

	status="ok"
	if [ "$rc" -ne 0 ]; then
		if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
			status="TIMEOUT after ${TIMEOUT}s"
		elif [ "$rc" -gt 128 ]; then
			status="CRASHED (signal $((rc - 128)))"
		elif [ "$rc" -eq 127 ]; then
			status="NOT RUN"
		else
			status="FAILED (exit $rc)"
		fi
		# No summary, or a summary that claims no failure while the
		# binary says otherwise: count the binary as one failed case.
		if [ "$summary" -eq 0 ] || [ "$fail" -eq 0 ]; then
			fail=$((fail + 1))
		fi
		failed_bins="$failed_bins $name"
	elif [ "$fail" -ne 0 ]; then
		status="FAILED"
		failed_bins="$failed_bins $name"
	fi
	echo "== $name: $status (cases: $pass ok, $fail not ok; ${secs}s)"
	total_pass=$((total_pass + pass))
	total_fail=$((total_fail + fail))
done

if [ -n "$failed_bins" ]; then
	echo "failed:$failed_bins"
fi
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
