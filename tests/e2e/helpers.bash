# Shared helpers of the e2e tests: a private directory, key, config and
# daemon per test, the CLI and test peer wrappers, and the waits they need.
# Nothing here touches a fixed path, $HOME or another test's files.

E2E_ROOT=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
E2E_BUILD=$(cd "$E2E_ROOT" && cd "${BUILD:-build}" 2>/dev/null && pwd)
WFVAULTD=$E2E_BUILD/wfvaultd
WFVAULT=$E2E_BUILD/wfvault
TESTPEER=$E2E_BUILD/tests/wfvault-testpeer

# How long one CLI call may take before the test calls it hung.
WFV_TIMEOUT=${WFV_TIMEOUT:-20}

# Creates the test's private directory and master key and names the files
# every test uses.  The directory is mode 0700 unless a test opens it up.
wfv_setup() {
	local b
	for b in "$WFVAULTD" "$WFVAULT" "$TESTPEER"; do
		if [ ! -x "$b" ]; then
			echo "missing $b: run make first" >&2
			return 1
		fi
	done
	T=$(mktemp -d "${TMPDIR:-/tmp}/wfv-e2e.XXXXXX")
	SOCK=$T/wfvault.sock
	CONF=$T/wfvaultd.conf
	DATA=$T/data
	KEY=$T/master.key
	AUDIT=$T/audit.log
	LOG=$T/daemon.log
	DAEMON_PID=
	DAEMON_PREFIX=
	BG_PIDS=
	unset WFVAULT_SOCKET
	mkdir -m 0700 "$DATA"
	"$WFVAULTD" --gen-key "$KEY" >"$T/gen-key.out" 2>&1 || {
		cat "$T/gen-key.out" >&2
		return 1
	}
}

# Stops the daemon and whatever else the test left in the background, and
# removes the directory.  Fails the test when the daemon did not exit 0 on
# SIGTERM or a sanitizer complained in its log (a leak, a bad access).
wfv_teardown() {
	local p rc=0
	for p in $BG_PIDS; do
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	BG_PIDS=
	if [ -n "${DAEMON_PID:-}" ]; then
		stop_daemon || rc=$?
		if [ "$rc" -ne 0 ]; then
			echo "wfvaultd exited with status $rc on SIGTERM" >&2
		fi
	fi
	if [ -n "${LOG:-}" ] && grep -qE 'Sanitizer|runtime error:' "$LOG" \
	    2>/dev/null; then
		echo "sanitizer report in the daemon's log:" >&2
		grep -E -A 12 'Sanitizer|runtime error:' "$LOG" | head -n 40 >&2
		rc=1
	fi
	if [ -n "${T:-}" ] && [ -d "$T" ]; then
		rm -rf "$T"
	fi
	return "$rc"
}

# Writes the daemon's config: the private paths, then each argument as one
# more line ("max_connections 20", "allow uid:4242 read acme", ...), then
# the repo's integration catalog unless an argument names integrations_dir.
write_conf() {
	{
		echo "# written by $BATS_TEST_FILENAME"
		echo "socket $SOCK"
		echo "data_dir $DATA"
		echo "master_key_file $KEY"
		echo "audit_log $AUDIT"
		printf '%s\n' "$@"
		# The repo's catalog, not an installed one, unless the test
		# names its own (last, so the lines above keep their numbers).
		case " $* " in
		*" integrations_dir "*) ;;
		*)	echo "integrations_dir none"
			echo "integrations_dir $E2E_ROOT/integrations" ;;
		esac
	} >"$CONF"
}

# 0 while pid exists and has not exited (a zombie counts as gone).
pid_alive() {
	local st
	[ -n "$1" ] || return 1
	st=$(sed -n 's/^State:[[:space:]]*\(.\).*/\1/p' "/proc/$1/status" \
	    2>/dev/null)
	[ -n "$st" ] && [ "$st" != Z ]
}

# Starts wfvaultd -c $CONF with extra arguments in the background (as
# $DAEMON_PREFIX, e.g. a setpriv command line, when set) and waits until it
# answers a hello.  Its stdout and stderr go to $LOG.
start_daemon() {
	# fd 3 is bats' own; a daemon holding it would hang the test run.
	$DAEMON_PREFIX "$WFVAULTD" -c "$CONF" "$@" >>"$LOG" 2>&1 3>&- </dev/null &
	DAEMON_PID=$!
	if ! wait_ready; then
		echo "wfvaultd did not come up; its log:" >&2
		cat "$LOG" >&2
		return 1
	fi
}

wait_ready() {
	local _
	for _ in $(seq 200); do
		pid_alive "$DAEMON_PID" || return 1
		if [ -S "$SOCK" ] && "$TESTPEER" call "$SOCK" hello \
		    >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.05
	done
	return 1
}

# Sends SIGTERM and waits (10 s at most, then SIGKILL); returns the
# daemon's exit status.
stop_daemon() {
	local pid=$DAEMON_PID _ rc
	[ -n "$pid" ] || return 0
	DAEMON_PID=
	kill -TERM "$pid" 2>/dev/null
	for _ in $(seq 200); do
		pid_alive "$pid" || break
		sleep 0.05
	done
	if pid_alive "$pid"; then
		echo "wfvaultd ignored SIGTERM for 10 s; killing it" >&2
		kill -KILL "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null
	rc=$?
	return $rc
}

restart_daemon() {
	stop_daemon || return 1
	start_daemon "$@"
}

# Runs something in the background (fd 3 closed) and remembers it for
# teardown; BG_PID is its pid.
bg() {
	"$@" 3>&- &
	BG_PID=$!
	BG_PIDS="$BG_PIDS $BG_PID"
}

# The CLI against the test's daemon.
wfv() {
	timeout "$WFV_TIMEOUT" "$WFVAULT" -s "$SOCK" "$@"
}

# put TENANT FIELD with VALUE on stdin, exactly as given.
put_value() {
	printf '%s' "$3" | wfv put "$1" "$2"
}

# The test peer against the test's daemon: tp COMMAND [ARGS].
tp() {
	local cmd=$1
	shift
	timeout 120 "$TESTPEER" "$cmd" "$SOCK" "$@"
}

# Runs a command as another uid/gid with no supplementary groups:
# as_user UID GID COMMAND...
as_user() {
	local u=$1 g=$2
	shift 2
	setpriv --reuid="$u" --regid="$g" --clear-groups "$@"
}

# The CLI as another user.
wfv_as() {
	local u=$1 g=$2
	shift 2
	as_user "$u" "$g" timeout "$WFV_TIMEOUT" "$WFVAULT" -s "$SOCK" "$@"
}

# wait_until TENTHS COMMAND...: runs COMMAND every 0.1 s until it succeeds,
# TENTHS times at most; returns 1 when it never did.  Silent: the caller
# says what was not seen, as it stands after the wait.
wait_until() {
	local n=$1 _
	shift
	for _ in $(seq "$n"); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}

# Conditions for wait_until.  prints WANT COMMAND...: COMMAND's output is
# WANT.  prints_at_least N COMMAND...: it is a number >= N.  not
# COMMAND...: COMMAND fails.
prints() {
	[ "$("${@:2}")" = "$1" ]
}

prints_at_least() {
	[ "$("${@:2}")" -ge "$1" ]
}

not() {
	! "$@"
}

# Waits (up to $2 tenths of a second, default 50) until file $1 has a line
# matching regex $3.
wait_for_line() {
	wait_until "${2:-50}" grep -qE -- "$3" "$1" 2>/dev/null
}

# The daemon is alive and still serves acme.known (put by the test's setup).
assert_healthy() {
	if ! pid_alive "$DAEMON_PID"; then
		echo "wfvaultd died; its log:" >&2
		tail -n 30 "$LOG" >&2
		return 1
	fi
	local got
	got=$(wfv get acme known) || {
		echo "wfvault get acme known failed: $got" >&2
		return 1
	}
	if [ "$got" != "$KNOWN" ]; then
		echo "acme.known is '$got', expected '$KNOWN'" >&2
		return 1
	fi
}

# A value nobody would type, so finding it somewhere means it leaked.
random_token() {
	head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n'
}

# Fails when the command succeeds ("! cmd" does not fail a bats test).
refute() {
	if "$@"; then
		echo "unexpectedly succeeded: $*" >&2
		return 1
	fi
	return 0
}

# Tests that run clients as other uids need root (setpriv).
require_root() {
	if [ "$(id -u)" -ne 0 ]; then
		skip "needs root to run clients as other uids"
	fi
}

# Stores tenants t-1..t-N (field k = "v-I") through one pipelined
# connection, so the daemon commits them in a few group commits.
load_tenants() {
	local n=$1
	awk -v n="$n" 'BEGIN { for (i = 1; i <= n; i++) printf \
	    "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"put\",\"params\":" \
	    "{\"tenant\":\"t-%d\",\"fields\":{\"k\":\"v-%d\"}}}\n", i, i, i }' \
	    >"$T/load.jsonl"
	tp send 60000 <"$T/load.jsonl" >"$T/load.out"
	[ "$(grep -c '"result"' "$T/load.out")" -eq "$n" ]
}

# Checks, in one pipelined connection, that t-1..t-N all read "v-I".
check_tenants() {
	local n=$1
	awk -v n="$n" 'BEGIN { for (i = 1; i <= n; i++) printf \
	    "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"get\",\"params\":" \
	    "{\"tenant\":\"t-%d\",\"field\":\"k\"}}\n", i, i }' \
	    >"$T/check.jsonl"
	tp send 60000 <"$T/check.jsonl" >"$T/check.out"
	jq -e -s --argjson n "$n" 'length == $n and
	    all(.[]; .result.value == ("v-" + (.id | tostring)))' \
	    "$T/check.out" >/dev/null
}

# setup_file of the files that drive wfvault-sync against the stand-in:
# the agent and the stand-in's node_modules must be there (a suite that
# cannot run fails: a skip would read as a pass), then one stand-in for
# the file, started with the arguments given.
sync_suite_start() {
	local name
	name=$(basename "$BATS_TEST_FILENAME")
	if [ ! -x "$E2E_BUILD/wfvault-sync" ]; then
		echo "$name cannot run: $E2E_BUILD/wfvault-sync is missing" \
		    "(make build)" >&2
		return 1
	fi
	if [ ! -d "$E2E_ROOT/tests/worker/node_modules" ]; then
		echo "$name cannot run: tests/worker/node_modules is missing" \
		    "(make test runs npm ci there)" >&2
		return 1
	fi
	harness_start "$@"
}

# h METHOD PATH [JSON]: a request to the stand-in (its controls, its
# consumer routes); the reply on stdout.
h() {
	curl -sS --max-time 60 -X "$1" \
	    ${3:+-H 'Content-Type: application/json' --data-binary "$3"} \
	    "$HURL$2"
}

# setup of those files: the test's own daemon, a stand-in with no KV data
# and no secrets left from the test before, and the API token in
# $T/token.
sync_test_setup() {
	wfv_setup
	write_conf
	start_daemon
	curl -sS --max-time 30 -X POST "$HURL/__harness/reset?data=1" \
	    >/dev/null
	printf 'test-token\n' >"$T/token"
	chmod 0400 "$T/token"
}

# Starts the local Cloudflare stand-in (tests/worker/harness.mjs) for a
# whole bats file, with harness.mjs's options "$@": exports HD (its
# directory) and HURL (its base URL).  Returns 1, with its log on stderr,
# when it does not come up.  Stop it with harness_stop in teardown_file.
harness_start() {
	local word url
	HD=$(mktemp -d "${TMPDIR:-/tmp}/wfv-harness.XXXXXX")
	mkfifo "$HD/ready"
	node "$E2E_ROOT/tests/worker/harness.mjs" --port 0 "$@" \
	    >"$HD/ready" 2>"$HD/harness.log" 3>&- &
	echo $! >"$HD/pid"
	read -r -t 60 word url <"$HD/ready" || true
	[ "$word" = READY ] || {
		echo "harness did not start:" >&2
		cat "$HD/harness.log" >&2
		return 1
	}
	# Keep reading its stdout so it never blocks on a full pipe.
	cat "$HD/ready" >/dev/null 3>&- &
	export HD HURL=$url
}

# Stops the stand-in harness_start started (bounded wait), removes HD.
harness_stop() {
	[ -n "${HD:-}" ] || return 0
	kill -TERM "$(cat "$HD/pid")" 2>/dev/null || true
	wait_until 100 not kill -0 "$(cat "$HD/pid")" 2>/dev/null || true
	rm -rf "$HD"
}

# Sends SIGTERM to pid $1, a child of this shell (bg) that may have exited
# already, and waits for it (60 s at most, then kills it and returns 255);
# returns its exit status.  Not under `run`: a subshell cannot wait for it.
stop_bg() {
	local pid=$1
	kill -TERM "$pid" 2>/dev/null || true
	wait_until 600 not pid_alive "$pid" || true
	if pid_alive "$pid"; then
		echo "pid $pid did not stop within 60 s of SIGTERM" >&2
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		return 255
	fi
	wait "$pid"
}
