#!/usr/bin/env bash
# How long the CLI takes to start, against /bin/true: `wfvault --version`
# and `wfvault help`, RUNS times each (default 1000).  wfvault links only
# jansson; libcurl lives in wfvault-test (README.md "Live tests"), and
# this is the number that shows it stayed out.  A benchmark, not a test:
# it prints numbers and checks nothing.  Usage: BUILD=build
# tests/bench_startup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
B=$(cd "${BUILD:-build}" && pwd)
RUNS=${RUNS:-1000}

# Prints the mean time of one run of "$@" in microseconds.
per_run() {
	local s e i
	s=$(date +%s%N)
	for ((i = 0; i < RUNS; i++)); do
		"$@" >/dev/null
	done
	e=$(date +%s%N)
	echo $(((e - s) / RUNS / 1000))
}

printf '%-28s %s\n' "program ($RUNS runs)" "µs per run"
printf '%-28s %s\n' "/bin/true" "$(per_run /bin/true)"
printf '%-28s %s\n' "wfvault --version" "$(per_run "$B/wfvault" --version)"
printf '%-28s %s\n' "wfvault help" "$(per_run "$B/wfvault" help)"
printf '%-28s %s\n' "libraries of wfvault" "$(ldd "$B/wfvault" | wc -l)"
printf '%-28s %s\n' "libraries of wfvault-test" \
    "$(ldd "$B/wfvault-test" | wc -l)"
