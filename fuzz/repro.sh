#!/bin/sh
# fuzz/repro.sh - replay the saved findings against the current tree.
#
#   sh fuzz/repro.sh BUILD_DIR TARGET...        (make fuzz-repro calls this)
#
# Runs every saved input in fuzz/crashes/TARGET/ once through its target
# (10 s at most each, so that a hang fails instead of waiting out
# libFuzzer's default of 20 minutes),
# and, for fuzz_region, every recipe of fuzz/region_recipes.c (the same
# findings rebuilt at the tree's own region layout, since a raw image of
# an older layout is refused, correctly, before anything else runs).
# No suppression (fuzz/known.supp) and no known check (fuzz/known-checks)
# applies here. Each input either still fails (the bug is still there),
# passes (fixed, or no longer reached: then delete the input, its entry
# in fuzz/crashes/README.md and its line in fuzz/known.supp or
# fuzz/known-checks), or is refused as an image of another layout.
# Exits 1 if any still fails.
set -u
[ $# -ge 2 ] || { echo "usage: $0 BUILD_DIR TARGET..." >&2; exit 64; }
build=$1
shift
root=$(pwd)
case $build in /*) ;; *) build=$root/$build ;; esac
status=0
n=0

run_one() { # TARGET FILE LABEL
	n=$((n + 1))
	tmp=$build/tmp/repro-$1
	prefix=lmfuzz-repro-$1-$$
	rm -rf "$tmp"
	mkdir -p "$tmp"
	out=$(LMFUZZ_SHM_PREFIX=$prefix TMPDIR=$tmp LMFUZZ_REPRO=1 \
		LMFUZZ_KNOWN= UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		"$build/$1" -runs=1 -timeout=10 "$2" 2>&1)
	rc=$?
	find /dev/shm -maxdepth 1 -name "$prefix-*" -exec rm -f {} + \
		2>/dev/null
	rm -rf "$tmp"
	refused=$(echo "$out" | sed -n 's/^fuzz_region: image refused: //p' |
		  head -n 1)
	if [ "$rc" != 0 ]; then
		status=1
		what=$(echo "$out" |
		       grep -E 'ERROR:|runtime error:|FUZZ CHECK FAILED' |
		       head -n 1 | sed 's/^==[0-9]*== *//')
		printf 'still fails:  %-16s %s\n              %s\n' "$1" "$3" \
			"$what"
	elif [ -n "$refused" ]; then
		printf 'stale:        %-16s %s\n              (%s)\n' "$1" "$3" \
			"$refused"
	else
		printf 'passes:       %-16s %s\n' "$1" "$3"
	fi
}

for t in "$@"; do
	for f in "$root/fuzz/crashes/$t"/*; do
		[ -f "$f" ] || continue
		run_one "$t" "$f" "${f#"$root"/}"
	done
	if [ "$t" = fuzz_region ] && [ -x "$build/region_recipes" ]; then
		dir=$build/recipes
		rm -rf "$dir"
		mkdir -p "$dir"
		LMFUZZ_SHM_PREFIX=lmfuzz-repro-recipes-$$ TMPDIR=$build/tmp \
			"$build/region_recipes" "$dir" || status=1
		for f in "$dir"/*; do
			[ -f "$f" ] || continue
			run_one "$t" "$f" "recipe ${f##*/} (fuzz/region_recipes.c)"
		done
	fi
done
[ "$n" = 0 ] && echo "no saved findings in fuzz/crashes/"
exit $status
