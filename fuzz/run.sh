#!/bin/sh
# fuzz/run.sh - run libFuzzer targets, each for a set time, and report.
#
#   sh fuzz/run.sh BUILD_DIR SECONDS TARGET...     (make fuzz calls this)
#
# For each target: make its seeds from the tree's own code (the target
# run with LMFUZZ_MKSEEDS=DIR), run it for SECONDS over
#   fuzz/corpus/TARGET/   the corpus it grows (kept between runs, not in git)
#   BUILD/seeds/TARGET/   the seeds just made
#   fuzz/seeds/TARGET/    small hand-made seeds (in git), if any
# with its dictionary (fuzz/dicts/TARGET.dict) if any, then remove any
# shared-memory object or temporary file it left (a crash or timeout can
# leave one; a clean run leaves none, and a leftover from a clean run is
# reported as a finding). Prints one line per target: executions,
# coverage (cov and ft of libFuzzer's last status line), corpus size,
# and what it found; findings are in BUILD/artifacts/TARGET/, the full
# log in BUILD/logs/TARGET.log. Exits 1 if any target found anything.
set -u
[ $# -ge 3 ] || { echo "usage: $0 BUILD_DIR SECONDS TARGET..." >&2; exit 64; }
build=$1
secs=$2
shift 2
root=$(pwd)
case $build in /*) ;; *) build=$root/$build ;; esac
mkdir -p "$build/logs"
summary=$build/logs/summary.txt
: > "$summary"
status=0
# Symbolized stack traces (and UBSan suppressions by function name) need
# llvm-symbolizer; Debian's llvm-14 has it under a versioned name.
symb=
if ! command -v llvm-symbolizer > /dev/null 2>&1 &&
   [ -x /usr/lib/llvm-14/bin/llvm-symbolizer ]; then
	symb=:external_symbolizer_path=/usr/lib/llvm-14/bin/llvm-symbolizer
fi

for t in "$@"; do
	bin=$build/$t
	corpus=$root/fuzz/corpus/$t
	gen=$build/seeds/$t
	hand=$root/fuzz/seeds/$t
	art=$build/artifacts/$t
	tmp=$build/tmp/$t
	log=$build/logs/$t.log
	# Every shm object the target makes is named /PREFIX-PID-...
	prefix=lmfuzz-$t-$$
	rm -rf "$gen" "$tmp" "$art"
	mkdir -p "$corpus" "$gen" "$tmp" "$art"

	case $t in
	fuzz_region)     maxlen=32768 ;;  # a 16-lock image is 16 KiB
	fuzz_store)      maxlen=16384 ;;
	fuzz_state_file) maxlen=128 ;;    # the file is 32 bytes
	fuzz_service_record) maxlen=4096 ;; # a record is 96, names 5..259
	*)               maxlen=1024 ;;   # a command line
	esac
	dirs="$corpus $gen"
	[ -d "$hand" ] && dirs="$dirs $hand"
	dict=
	[ -f "$root/fuzz/dicts/$t.dict" ] && dict=-dict=$root/fuzz/dicts/$t.dict
	supp=
	[ -f "$root/fuzz/known.supp" ] &&
		supp=:suppressions=$root/fuzz/known.supp
	known=
	[ -f "$root/fuzz/known-checks" ] &&
		known=$(sed 's/#.*//' "$root/fuzz/known-checks" | tr -s ' \t\n' ' ')

	echo "$t: fuzzing for $secs s (log: $log)"
	(
		export LMFUZZ_SHM_PREFIX="$prefix" TMPDIR="$tmp"
		export LMFUZZ_KNOWN="$known"
		export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1$supp$symb"
		export ASAN_OPTIONS="${ASAN_OPTIONS:-}$symb"
		LMFUZZ_MKSEEDS=$gen "$bin" -runs=0 > "$log" 2>&1 || exit 125
		# shellcheck disable=SC2086
		exec "$bin" -max_total_time="$secs" -print_final_stats=1 \
			-timeout=10 -rss_limit_mb=2048 -max_len="$maxlen" \
			-artifact_prefix="$art/" $dict $dirs >> "$log" 2>&1
	)
	rc=$?

	# Leftovers: count, then remove.
	shm_left=$(find /dev/shm -maxdepth 1 -name "$prefix-*" 2>/dev/null |
		   wc -l)
	find /dev/shm -maxdepth 1 -name "$prefix-*" -exec rm -f {} + \
		2>/dev/null
	tmp_left=$(find "$tmp" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
	rm -rf "$tmp"

	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" |
		tail -n 1)
	# Up to " MS:": the mutations after it may quote dictionary entries
	# ("\377"), which sh's echo would turn into bytes sed cannot match.
	last=$(grep -E '^#[0-9]+.* cov: ' "$log" | tail -n 1 | sed 's/ MS: .*//')
	cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
	ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
	corp=$(echo "$last" | sed -n 's/.* corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p')
	found=$(ls "$art")
	if [ "$rc" = 125 ]; then
		result="ERROR: could not make the seeds (see the log)"
	elif [ -n "$found" ]; then
		kinds=$(echo "$found" | sed 's/-.*//' | sort | uniq -c |
			awk '{ printf "%s%s %s", (NR > 1 ? ", " : ""), $1, $2 }')
		result="FOUND $kinds: $art/"
	elif [ "$rc" != 0 ]; then
		result="ERROR: libFuzzer exited with $rc (see the log)"
	else
		result="no crash, leak or timeout"
	fi
	if [ "$shm_left" != 0 ] || [ "$tmp_left" != 0 ]; then
		left="left $shm_left shm object(s), $tmp_left temporary file(s) (removed)"
		if [ "$rc" = 0 ]; then
			result="$result; LEAK: $left"
		else
			result="$result; $left"
		fi
	fi
	case $result in
	"no crash, leak or timeout") ;;
	*) status=1 ;;
	esac
	printf '%-18s %10s execs  cov %5s  ft %6s  corpus %-11s %s\n' "$t" \
		"${execs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$result" \
		>> "$summary"
done

echo
echo "fuzzing summary ($secs s per target; logs in $build/logs/):"
cat "$summary"
exit $status
