#!/usr/bin/env bash
# Runs every test suite of wfvault -- the cmocka unit tests, the bats e2e
# tests and the shared contract smoke test -- shows their output, and ends
# with exactly one line "N passed, M failed" for all of them together.
# Usage (from `make test`): BUILD=build tests/run.sh
set -u

cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
export BUILD

# Per-suite time limits, so one hung test cannot hold CI for long.
UNIT_TIMEOUT=${UNIT_TIMEOUT:-300}
E2E_TIMEOUT=${E2E_TIMEOUT:-900}
SMOKE_TIMEOUT=${SMOKE_TIMEOUT:-300}

pass=0
fail=0
skip=0
work=$(mktemp -d "${TMPDIR:-/tmp}/wfvault-run.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
started=$SECONDS

# Counts the TAP results in file $1 into TAP_PASS, TAP_FAIL and TAP_SKIP.
# cmocka indents nothing but reports a skip as "not ok N # SKIP"; bats
# writes "ok N # skip (...)"; a group summary "# not ok - x" is a comment.
count_tap() {
	local counts
	counts=$(awk '
	{
		sub(/^[ \t]+/, "")
		l = tolower($0)
	}
	/^not ok([ \t]|$)/ {
		if (l ~ /# *(skip|todo)/) s++; else f++
		next
	}
	/^ok([ \t]|$)/ {
		if (l ~ /# *skip/) s++; else p++
		next
	}
	END { printf "%d %d %d\n", p, f, s }' "$1")
	read -r TAP_PASS TAP_FAIL TAP_SKIP <<<"$counts"
}

# Adds one failure for a suite that failed without saying so in TAP.
fail_suite() {
	echo "not ok - $1"
	fail=$((fail + 1))
}

# (1) Unit tests.
units=0
for t in "$BUILD"/tests/test_*; do
	if [ ! -f "$t" ] || [ ! -x "$t" ]; then
		continue
	fi
	units=$((units + 1))
	name=${t##*/}
	echo "# unit: $name"
	CMOCKA_MESSAGE_OUTPUT=TAP timeout -k 10 "$UNIT_TIMEOUT" "$t" \
	    </dev/null >"$work/unit.out" 2>&1
	rc=$?
	cat "$work/unit.out"
	count_tap "$work/unit.out"
	pass=$((pass + TAP_PASS))
	fail=$((fail + TAP_FAIL))
	skip=$((skip + TAP_SKIP))
	if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		fail_suite "$name timed out after ${UNIT_TIMEOUT}s"
	elif [ "$rc" -ne 0 ] && [ "$TAP_FAIL" -eq 0 ]; then
		fail_suite "$name exited with status $rc"
	elif [ $((TAP_PASS + TAP_FAIL + TAP_SKIP)) -eq 0 ]; then
		fail_suite "$name reported no tests"
	fi
done
if [ "$units" -eq 0 ]; then
	echo "# no unit test binaries in $BUILD/tests"
fi

# (2) End-to-end tests.
if ! command -v bats >/dev/null 2>&1; then
	fail_suite "bats is not installed (make deps)"
elif ! ls tests/e2e/*.bats >/dev/null 2>&1; then
	echo "# no e2e tests in tests/e2e"
else
	echo "# e2e: bats --tap tests/e2e"
	# Shown as it runs; the copy is counted afterwards.
	timeout -k 10 "$E2E_TIMEOUT" bats --tap tests/e2e </dev/null 2>&1 |
	    tee "$work/e2e.out"
	rc=${PIPESTATUS[0]}
	count_tap "$work/e2e.out"
	pass=$((pass + TAP_PASS))
	fail=$((fail + TAP_FAIL))
	skip=$((skip + TAP_SKIP))
	if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		fail_suite "bats timed out after ${E2E_TIMEOUT}s"
	elif [ "$rc" -ne 0 ] && [ "$TAP_FAIL" -eq 0 ]; then
		fail_suite "bats exited with status $rc"
	fi
fi

# (3) The shared contract smoke test, when it is there.
smoke=../shared/contract/smoke.sh
if [ -f "$smoke" ]; then
	echo "# smoke: $smoke"
	# smoke.sh runs build/ of the directory it starts in: point that at
	# $BUILD (build-san/ under SANITIZE=1) through a link in a scratch dir.
	mkdir -p "$work/smoke"
	ln -s "$(cd "$BUILD" && pwd)" "$work/smoke/build"
	smoke=$(cd "$(dirname "$smoke")" && pwd)/$(basename "$smoke")
	(cd "$work/smoke" && timeout -k 10 "$SMOKE_TIMEOUT" bash "$smoke" \
	    </dev/null 2>&1) | tee "$work/smoke.out"
	rc=${PIPESTATUS[0]}
	last=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$work/smoke.out" |
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
fi

if [ "$skip" -gt 0 ]; then
	echo "# $skip skipped"
fi
echo "# $((SECONDS - started)) s"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ $((pass + fail)) -gt 0 ]
