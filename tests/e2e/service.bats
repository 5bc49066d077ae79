#!/usr/bin/env bats
# wfvaultd under systemd's protocols, exercised without systemd as PID 1:
# Type=notify (READY, STATUS, WATCHDOG, STOPPING on $NOTIFY_SOCKET) and
# socket activation (LISTEN_FDS), as wfvaultd.service and wfvaultd.socket
# use them.

load helpers

setup() {
	wfv_setup
	write_conf
}

teardown() {
	wfv_teardown
}

@test "Type=notify: READY=1 once serving, WATCHDOG=1 at half WATCHDOG_USEC, STOPPING=1 on SIGTERM" {
	bg socat -u "UNIX-RECVFROM:$T/notify,fork" "OPEN:$T/notes,creat,append"
	for _ in $(seq 50); do [ -S "$T/notify" ] && break; sleep 0.05; done
	NOTIFY_SOCKET=$T/notify WATCHDOG_USEC=400000 start_daemon
	wait_for_line "$T/notes" 50 '^READY=1'
	put_value acme k v
	# Several keep-alives 200 ms apart, with the tenant count as STATUS.
	for _ in $(seq 200); do
		[ "$(grep -c '^WATCHDOG=1' "$T/notes")" -ge 4 ] && break
		sleep 0.05
	done
	[ "$(grep -c '^WATCHDOG=1' "$T/notes")" -ge 4 ]
	grep -q '^STATUS=serving 1 tenants' "$T/notes"
	refute grep -q '^STOPPING=1' "$T/notes"
	stop_daemon
	wait_for_line "$T/notes" 50 '^STOPPING=1'
	# The notify socket is not handed on to anything the daemon starts.
	refute grep -qa NOTIFY_SOCKET "$LOG"
}

@test "socket activation: the daemon serves the socket systemd passes and leaves it in place" {
	command -v systemd-socket-activate >/dev/null || skip "no systemd-socket-activate"
	bg systemd-socket-activate -l "$SOCK" "$WFVAULTD" -c "$CONF"
	DAEMON_PID=$BG_PID
	for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.05; done
	put_value acme openai_api_key sk-activated
	[ "$(wfv get acme openai_api_key)" = sk-activated ]
	stop_daemon
	DAEMON_PID=
	# systemd owns the socket file; the daemon must not have removed it.
	[ -S "$SOCK" ]
}

@test "socket activation refuses what is not one listening Unix stream socket" {
	# LISTEN_PID must name the daemon itself: exec keeps the shell's pid.
	run timeout 10 sh -c 'LISTEN_PID=$$ LISTEN_FDS=2 exec "$0" -c "$1"' \
	    "$WFVAULTD" "$CONF"
	[ "$status" -eq 1 ]
	[[ "$output" == *"exactly one"* ]]
	run timeout 10 sh -c 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" -c "$1" 3</dev/null' \
	    "$WFVAULTD" "$CONF"
	[ "$status" -eq 1 ]
	[[ "$output" == *"not a stream socket"* ]]
}
