#!/usr/bin/env bash
# Runs every test suite of wfvault -- the cmocka unit tests, the bats e2e
# tests and the shared contract smoke test -- shows their output, and ends
# with exactly one line "N passed, M failed" for all of them together.
# Usage (from `make test`): BUILD=build tests/run.sh
#
# The suites are independent (each test uses its own mktemp directory,
# daemon and socket; nothing binds a fixed port or path), so up to
# TEST_JOBS of them run at once, each unit binary and each .bats file as
# its own job with its own time limit and its own output file.  The
# outputs are shown afterwards in a fixed order, so a run reads the same
# however the jobs interleaved.
set -u

cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
export BUILD

# Per-job time limits, so one hung test cannot hold CI for long.
UNIT_TIMEOUT=${UNIT_TIMEOUT:-300}
E2E_TIMEOUT=${E2E_TIMEOUT:-600}
SMOKE_TIMEOUT=${SMOKE_TIMEOUT:-300}
# Most of a test's time is spent waiting on a daemon or a socket, so by
# default one job more than there are CPUs, and at least 3, keep them busy.
if [ -z "${TEST_JOBS:-}" ]; then
	TEST_JOBS=$(($(nproc 2>/dev/null || echo 2) + 1))
	if [ "$TEST_JOBS" -lt 3 ]; then
		TEST_JOBS=3
	fi
elif ! [ "$TEST_JOBS" -ge 1 ] 2>/dev/null; then
	echo "run.sh: TEST_JOBS must be a number of at least 1" >&2
	exit 2
fi

pass=0
fail=0
skip=0
work=$(mktemp -d "${TMPDIR:-/tmp}/wfvault-run.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
started=$SECONDS

# Counts the TAP results in file $1 into TAP_PASS, TAP_FAIL, TAP_SKIP and
# TAP_PLAN (the N of a "1..N" line, or -1 without one).  cmocka reports a
# skip as "not ok N # SKIP"; bats writes "ok N # skip (...)"; a group
# summary "# not ok - x" is a comment.
count_tap() {
	local counts
	counts=$(awk '
	BEGIN { plan = -1 }
	{
		sub(/^[ \t]+/, "")
		l = tolower($0)
	}
	/^1\.\.[0-9]+/ { plan = substr($0, 4) + 0; next }
	/^not ok([ \t]|$)/ {
		if (l ~ /# *(skip|todo)/) s++; else f++
		next
	}
	/^ok([ \t]|$)/ {
		if (l ~ /# *skip/) s++; else p++
		next
	}
	END { printf "%d %d %d %d\n", p, f, s, plan }' "$1")
	read -r TAP_PASS TAP_FAIL TAP_SKIP TAP_PLAN <<<"$counts"
}

# Adds one failure for a suite that failed without saying so in TAP.
fail_suite() {
	echo "not ok - $1"
	fail=$((fail + 1))
}

# The jobs, in the order their output is shown: id, kind, name, timeout.
ids=()
declare -A kind name limit
njobs=0

add_job() {
	local id=job$njobs
	njobs=$((njobs + 1))
	ids+=("$id")
	kind[$id]=$1
	name[$id]=$2
	limit[$id]=$3
}

# (1) Unit tests.
for t in "$BUILD"/tests/test_*; do
	if [ -f "$t" ] && [ -x "$t" ]; then
		add_job unit "$t" "$UNIT_TIMEOUT"
	fi
done
if [ "${#ids[@]}" -eq 0 ]; then
	echo "# no unit test binaries in $BUILD/tests"
fi

# (2) End-to-end tests, one job per file.
have_bats=1
if ! command -v bats >/dev/null 2>&1; then
	have_bats=0
elif ! ls tests/e2e/*.bats >/dev/null 2>&1; then
	echo "# no e2e tests in tests/e2e"
else
	for f in tests/e2e/*.bats; do
		add_job e2e "$f" "$E2E_TIMEOUT"
	done
fi

# (3) Tests on the Workers runtime (Miniflare), one job per
# tests/worker/test_*.mjs, and the stand-in's own tests (selftest.mjs:
# the e2e tests are only as good as the Cloudflare it plays); each
# prints TAP.
have_node=1
if ! command -v node >/dev/null 2>&1; then
	have_node=0
else
	for f in tests/worker/test_*.mjs tests/worker/selftest.mjs; do
		if [ -f "$f" ]; then
			add_job node "$f" "$E2E_TIMEOUT"
		fi
	done
fi

# (4) The shared contract smoke test, when it is there.
smoke=../shared/contract/smoke.sh
if [ -f "$smoke" ]; then
	add_job smoke "$smoke" "$SMOKE_TIMEOUT"
else
	echo "# smoke: $smoke is not there (no ../shared checkout): skipped"
fi

# Runs job $1 in the foreground of a background subshell: its output
# goes to $work/ID.out, its exit status to ID.rc, its seconds to ID.secs.
run_job() {
	local id=$1 f=${name[$1]} t=${limit[$1]} t0=$SECONDS rc
	case ${kind[$id]} in
	unit)
		CMOCKA_MESSAGE_OUTPUT=TAP timeout -k 10 "$t" "$f"
		;;
	e2e)
		timeout -k 10 "$t" bats --tap "$f"
		;;
	node)
		timeout -k 10 "$t" node "$f"
		;;
	smoke)
		# smoke.sh runs build/ of the directory it starts in: point
		# that at $BUILD (build-san/ under SANITIZE=1) through a link
		# in a scratch directory.
		mkdir -p "$work/smoke" &&
		    ln -s "$(cd "$BUILD" && pwd)" "$work/smoke/build" &&
		    f=$(cd "$(dirname "$f")" && pwd)/$(basename "$f") &&
		    cd "$work/smoke" && timeout -k 10 "$t" bash "$f"
		;;
	esac </dev/null >"$work/$id.out" 2>&1
	rc=$?
	echo $((SECONDS - t0)) >"$work/$id.secs"
	echo "$rc" >"$work/$id.rc"
}

# Longest first, so the slowest file does not start last: the e2e files
# by size, then the rest.
order=()
while read -r _ id; do
	order+=("$id")
done < <(for id in "${ids[@]}"; do
	if [ "${kind[$id]}" = e2e ]; then
		echo "$(wc -c <"${name[$id]}") $id"
	else
		echo "0 $id"
	fi
done | sort -k1,1nr -s)

echo "# running ${#ids[@]} suites, $TEST_JOBS at a time"
for id in "${order[@]}"; do
	while [ "$(jobs -rp | wc -l)" -ge "$TEST_JOBS" ]; do
		wait -n
	done
	run_job "$id" &
done
wait

for id in "${ids[@]}"; do
	f=${name[$id]}
	rc=$(cat "$work/$id.rc" 2>/dev/null || echo 255)
	secs=$(cat "$work/$id.secs" 2>/dev/null || echo "?")
	echo "# ${kind[$id]}: $f (${secs} s)"
	cat "$work/$id.out"
	if [ "${kind[$id]}" = smoke ]; then
		last=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$work/$id.out" |
		    tail -n 1)
		if [ -z "$last" ]; then
			fail_suite "smoke.sh printed no 'N passed, M failed' line (status $rc)"
		else
			read -r sp _ sf _ <<<"$last"
			pass=$((pass + sp))
			fail=$((fail + sf))
			if [ "$rc" -ne 0 ] && [ "$sf" -eq 0 ]; then
				fail_suite "smoke.sh exited with status $rc"
			fi
		fi
		continue
	fi
	count_tap "$work/$id.out"
	pass=$((pass + TAP_PASS))
	fail=$((fail + TAP_FAIL))
	skip=$((skip + TAP_SKIP))
	ran=$((TAP_PASS + TAP_FAIL + TAP_SKIP))
	if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		fail_suite "$f timed out after ${limit[$id]}s"
	elif [ "$rc" -ne 0 ] && [ "$TAP_FAIL" -eq 0 ]; then
		fail_suite "$f exited with status $rc"
	elif [ "$ran" -eq 0 ]; then
		fail_suite "$f reported no tests"
	elif [ "$TAP_FAIL" -eq 0 ] && [ "$TAP_PLAN" -ne "$ran" ]; then
		# A suite that stops part way (or never prints its plan)
		# has not run what it was meant to.
		fail_suite "$f ran $ran tests, its plan said $TAP_PLAN"
	fi
done

if [ "$have_node" -eq 0 ]; then
	fail_suite "node is not installed (make test installs it)"
fi
if [ "$have_bats" -eq 0 ]; then
	fail_suite "bats is not installed (make test installs it)"
fi
if [ "$skip" -gt 0 ]; then
	echo "# $skip skipped"
fi
echo "# $((SECONDS - started)) s with $TEST_JOBS jobs"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ $((pass + fail)) -gt 0 ]
