#!/usr/bin/env bats
# Secret values never leave the vault in plaintext (README.md "Security
# model"): not on disk, not in the daemon's log (even at debug level), not
# in the audit log, not in error replies, not in any process's argv, not in
# a core.

# The paths some tests set are read by helpers.bash.
# shellcheck disable=SC2034

load helpers

setup() {
	require_root
	wfv_setup
	chmod 0755 "$T"
	write_conf "socket_mode 0666" "allow uid:4242 read acme"
	start_daemon -d
	# Every canary goes in one patterns file, so grep never has one in argv.
	C1="canary1-$(random_token)"
	C2="canary2-$(random_token)"
	C3="canary3-$(random_token)"
	C4="canary4-$(random_token)"
	C5="canary5-$(random_token)"
	printf '%s\n' "$C1" "$C2" "$C3" "$C4" "$C5" >"$T/patterns"
}

teardown() {
	wfv_teardown
}

# Lists the /proc/PID/cmdline files that hold any canary.
cmdlines_with_canary() {
	local f
	for f in /proc/[0-9]*/cmdline; do
		grep -qaFf "$T/patterns" "$f" 2>/dev/null && echo "$f"
	done
	return 0
}

# 0 when a process's argv, joined by spaces, is exactly $1.
cli_running() {
	local f
	for f in /proc/[0-9]*/cmdline; do
		[ "$(tr '\0' ' ' <"$f" 2>/dev/null)" = "$1 " ] && return 0
	done
	return 1
}

@test "a canary secret is never in plaintext on disk, in logs or in argv" {
	# The argv scan itself finds a canary where there is one.  The
	# holder lives until killed, and the scan is retried until the
	# exec has happened, so neither waits on a guess about timing.
	bg bash -c 'exec -a "$0" sleep 1000' "$C5"
	local _ seen=
	for _ in $(seq 200); do
		seen=$(cmdlines_with_canary)
		[ -n "$seen" ] && break
		sleep 0.05
	done
	[ -n "$seen" ]
	kill "$BG_PID" 2>/dev/null || true
	wait "$BG_PID" 2>/dev/null || true
	printf '%s\n' "$C1" | wfv put acme openai_api_key
	printf '{"stripe_key":"%s","n":1}' "$C2" | wfv put beta --json
	printf '%s' "$C3" >"$T/c3"
	wfv put acme sendgrid_key --file "$T/c3"
	rm -f "$T/c3"
	# A put whose value arrives late: scan every argv while it waits.
	# The value comes through a FIFO that is written only after the
	# scan, and the scan starts once the CLI is the process reading it.
	mkfifo "$T/slow"
	wfv put gamma slow_key <"$T/slow" 3>&- &
	local put_pid=$!
	exec 7>"$T/slow"
	for _ in $(seq 200); do
		cli_running "$WFVAULT -s $SOCK put gamma slow_key" && break
		sleep 0.05
	done
	cli_running "$WFVAULT -s $SOCK put gamma slow_key"
	local found
	found=$(cmdlines_with_canary)
	printf '%s' "$C4" >&7
	exec 7>&-
	wait "$put_pid"
	[ -z "$found" ] || { echo "canary in: $found"; false; }

	# Read them all back (the values really are there), list, overwrite.
	[ "$(wfv get acme openai_api_key)" = "$C1" ]
	[ "$(wfv get beta stripe_key)" = "$C2" ]
	[ "$(wfv get acme sendgrid_key)" = "$C3" ]
	[ "$(wfv get gamma slow_key)" = "$C4" ]
	wfv get acme >/dev/null
	wfv get beta --json >/dev/null
	wfv list >/dev/null
	wfv fields acme >/dev/null
	wfv status >/dev/null
	printf 'replaced' | wfv put acme openai_api_key
	# Denied, and refused requests that carry a canary.
	run wfv_as 4242 4242 get beta stripe_key
	[ "$status" -eq 4 ]
	run wfv_as 4242 4242 put acme x_key --file "$T/patterns"
	[ "$status" -eq 4 ]
	{
		echo "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"put\",\"params\":{\"tenant\":\"bad/id\",\"fields\":{\"a\":\"$C5\"}}}"
		echo "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"put\",\"params\":{\"tenant\":\"acme\",\"fields\":{\"Bad-Name\":\"$C5\"}}}"
		echo "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"put\",\"params\":{\"tenant\":\"acme\",\"fields\":{\"a\":\"$C5\"},\"bogus\":\"$C5\"}}"
		echo "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"put\",\"params\":{\"tenant\":\"acme\",\"fields\":{\"a\":\"$C5\"},\"cas\":\"$C5\"}}"
		echo "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"put\",\"params\":{\"tenant\":\"acme\",\"fields\":{\"a\" \"$C5\"}}}"
		echo "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"put\",\"params\":{\"tenant\":\"acme\",\"fields\":{\"a\":\"$C5$(head -c 70000 /dev/zero | tr '\0' x)\"}}}"
		echo "{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"put\",\"params\":{\"tenant\":\"acme\",\"fields\":{\"a\":\"$C5\"},\"cas\":99}}"
	} >"$T/reqs"
	run tp send <"$T/reqs"
	[ "$status" -eq 0 ]
	[ "$(printf '%s\n' "$output" | grep -c '"error"')" -eq 7 ]
	refute grep -qaFf "$T/patterns" <<<"$output"
	rm -f "$T/reqs"

	found=$(cmdlines_with_canary)
	[ -z "$found" ] || { echo "canary in: $found"; false; }
	stop_daemon
	[ -s "$LOG" ]
	[ -s "$AUDIT" ]
	refute grep -rqaFf "$T/patterns" "$DATA"
	refute grep -qaFf "$T/patterns" "$LOG"
	refute grep -qaFf "$T/patterns" "$AUDIT"
}

@test "the daemon runs with core dumps disabled" {
	local limit
	limit=$(awk '/^Max core file size/ { print $5, $6 }' \
	    "/proc/$DAEMON_PID/limits")
	[ "$limit" = "0 0" ] || { echo "core limit: $limit"; false; }
}

@test "the daemon is not dumpable (as a non-root uid)" {
	stop_daemon
	local u=$T/u
	mkdir -m 0755 "$u"
	mkdir -m 0700 "$u/data"
	cp "$KEY" "$u/master.key"
	chown -R 4260:4260 "$u"
	SOCK=$u/wfvault.sock
	DATA=$u/data
	KEY=$u/master.key
	AUDIT=$u/audit.log
	write_conf "socket_mode 0666"
	DAEMON_PREFIX="setpriv --reuid=4260 --regid=4260 --clear-groups"
	start_daemon
	[ "$(awk '/^Uid:/ { print $2 }' "/proc/$DAEMON_PID/status")" = 4260 ]
	# A dumpable process owns its /proc files; PR_SET_DUMPABLE 0 gives
	# them to root, and keeps ptrace and core dumps away.
	[ "$(stat -c %u "/proc/$DAEMON_PID/status")" = 0 ]
	[ "$(awk '/^Max core file size/ { print $5 }' \
	    "/proc/$DAEMON_PID/limits")" = 0 ]
	# It works as that uid, and root is still admin.
	put_value acme a_key one
	[ "$(wfv get acme a_key)" = one ]
	[ -z "$(find "$DATA" ! -user 4260)" ]
}
