#!/usr/bin/env bats
# Hostile and careless clients (docs/protocol.md, "Framing and
# connections"): whatever a peer sends, the daemon answers with an error or
# closes that connection, and keeps serving everyone else.  Each test ends by checking that.

load helpers

REQ='{"jsonrpc":"2.0","id":1,"method":'

setup() {
	wfv_setup
	write_conf
	start_daemon
	KNOWN="known-$(random_token)"
	put_value acme known "$KNOWN"
}

teardown() {
	wfv_teardown
}

# The test's daemon again, with extra config lines.
restart_with() {
	stop_daemon
	write_conf "$@"
	start_daemon
}

# Waits (10 s at most) until the daemon has closed every connection it
# accepted: its accepted sockets carry $SOCK's path in /proc/net/unix
# (state 03) until it closes them, even after the client went away.
wait_no_connections() {
	local _
	for _ in $(seq 200); do
		[ "$(awk -v s="$SOCK" '$6 == "03" && $8 == s' /proc/net/unix |
		    wc -l)" -eq 0 ] && return 0
		sleep 0.05
	done
	echo "wfvaultd still holds connections" >&2
	return 1
}

# Checks that the replies in $output (one JSON per line) are exactly the
# error codes given, in order.
assert_codes() {
	local got want="$*"
	got=$(printf '%s\n' "$output" | jq -r '.error.code' | tr '\n' ' ')
	if [ "${got% }" != "$want" ]; then
		echo "expected error codes '$want', got '${got% }' from:" >&2
		printf '%s\n' "$output" >&2
		return 1
	fi
}

@test "not JSON gets -32700" {
	run tp send <<<'this is not json'
	[ "$status" -eq 0 ]
	assert_codes -32700
	run tp send <<<'{"jsonrpc":"2.0","id":1,"method":"hello"'
	assert_codes -32700
	run tp send <<<'"a string"'
	[[ "$output" == *'"code":-32'* ]]
	assert_healthy
}

@test "a batch (JSON array) gets -32600" {
	run tp send <<<'[{"jsonrpc":"2.0","id":1,"method":"hello","params":{}}]'
	[ "$status" -eq 0 ]
	assert_codes -32600
	run tp send <<<'[]'
	assert_codes -32600
	assert_healthy
}

@test "invalid envelopes get -32600" {
	run tp send <<<'{"jsonrpc":"1.0","id":1,"method":"hello"}'
	assert_codes -32600
	run tp send <<<'{"id":1,"method":"hello"}'
	assert_codes -32600
	run tp send <<<'{"jsonrpc":"2.0","id":1,"method":7}'
	assert_codes -32600
	run tp send <<<'{"jsonrpc":"2.0","id":{"x":1},"method":"hello"}'
	assert_codes -32600
	run tp send <<<'{"jsonrpc":"2.0","id":1,"method":"hello","extra":1}'
	assert_codes -32600
	run tp send <<<'{"jsonrpc":"2.0","id":1,"method":"hello","params":[]}'
	[[ "$output" == *'"code":-3260'[02]* ]]
	assert_healthy
}

@test "an unknown method gets -32601 with the request's id" {
	run tp send <<<'{"jsonrpc":"2.0","id":77,"method":"no_such_method","params":{}}'
	[ "$status" -eq 0 ]
	assert_codes -32601
	printf '%s\n' "$output" | jq -e '.id == 77'
	run tp send <<<'{"jsonrpc":"2.0","id":"abc","method":"shutdown"}'
	assert_codes -32601
	printf '%s\n' "$output" | jq -e '.id == "abc"'
	assert_healthy
}

@test "wrong param types get -32602" {
	{
		echo "$REQ\"get\",\"params\":{\"tenant\":5}}"
		echo "$REQ\"get\",\"params\":{\"tenant\":\"acme\",\"field\":[]}}"
		echo "$REQ\"get\",\"params\":{\"tenant\":\"acme\",\"version\":-1}}"
		echo "$REQ\"get\",\"params\":{\"tenant\":\"acme\",\"version\":\"2\"}}"
		echo "$REQ\"get\",\"params\":{}}"
		echo "$REQ\"put\",\"params\":{\"tenant\":\"acme\",\"fields\":\"x\"}}"
		echo "$REQ\"put\",\"params\":{\"tenant\":\"acme\",\"fields\":{}}}"
		echo "$REQ\"put\",\"params\":{\"tenant\":\"acme\",\"fields\":{\"a\":\"b\"},\"replace\":\"yes\"}}"
		echo "$REQ\"put\",\"params\":{\"tenant\":\"acme\",\"fields\":{\"a\":\"b\"},\"cas\":1.5}}"
		echo "$REQ\"put\",\"params\":{\"tenant\":\"bad/id\",\"fields\":{\"a\":\"b\"}}}"
		echo "$REQ\"put\",\"params\":{\"tenant\":\"acme\",\"fields\":{\"Bad-Field\":\"b\"}}}"
		echo "$REQ\"list\",\"params\":{\"limit\":\"many\"}}"
		echo "$REQ\"list\",\"params\":{\"limit\":0}}"
		echo "$REQ\"list\",\"params\":{\"limit\":100000}}"
		echo "$REQ\"changes\",\"params\":{\"since\":true}}"
	} >"$T/reqs"
	run tp send <"$T/reqs"
	[ "$status" -eq 0 ]
	assert_codes -32602 -32602 -32602 -32602 -32602 -32602 -32602 -32602 \
	    -32602 -32602 -32602 -32602 -32602 -32602 -32602
	run wfv get acme
	echo "$output" | jq -e '. == {"known":"'"$KNOWN"'"}'
	assert_healthy
}

@test "an unknown param gets -32602" {
	run tp send <<<"$REQ\"get\",\"params\":{\"tenant\":\"acme\",\"bogus\":1}}"
	[ "$status" -eq 0 ]
	assert_codes -32602
	run tp send <<<"$REQ\"hello\",\"params\":{\"x\":1}}"
	assert_codes -32602
	assert_healthy
}

@test "invalid UTF-8 gets -32700" {
	printf '{"jsonrpc":"2.0","id":1,"method":"get","params":{"tenant":"\xff\xfe"}}\n' >"$T/req"
	run tp send <"$T/req"
	[ "$status" -eq 0 ]
	assert_codes -32700
	printf '{"jsonrpc":"2.0","id":1,"method":"he\xc0\xafllo"}\n' >"$T/req"
	run tp send <"$T/req"
	assert_codes -32700
	assert_healthy
}

@test "NUL bytes get an error" {
	printf '{"jsonrpc":"2.0","id":1,"method":"hello"\0}\n' >"$T/req"
	run tp send <"$T/req"
	[ "$status" -eq 0 ]
	[[ "$output" == *'"code":-32700'* || "$output" == *'"code":-32600'* ]]
	printf '{"jsonrpc":"2.0","id":1,"method":"get","params":{"tenant":"ac\\u0000me"}}\n' >"$T/req"
	run tp send <"$T/req"
	[[ "$output" == *'"code":-32'* ]]
	[[ "$output" != *'"result"'* ]]
	printf '\0\0\0\0\n' >"$T/req"
	run tp send <"$T/req"
	[[ "$output" == *'"code":-32'* ]]
	assert_healthy
}

@test "100000-deep nesting gets an error, not a crash" {
	{
		printf '{"jsonrpc":"2.0","id":1,"method":"get","params":{"tenant":'
		head -c 100000 /dev/zero | tr '\0' '['
		head -c 100000 /dev/zero | tr '\0' ']'
		printf '}}\n'
	} >"$T/req"
	run tp send <"$T/req"
	[ "$status" -eq 0 ]
	[[ "$output" == *'"code":-32'* ]]
	{
		head -c 100000 /dev/zero | tr '\0' '{' | sed 's/{/{"a":/g'
		echo
	} >"$T/req"
	run tp send <"$T/req"
	[[ "$output" == *'"code":-32'* ]]
	assert_healthy
}

@test "a line over max_message_bytes gets -32004, then the connection closes" {
	restart_with "max_message_bytes 128K"
	{
		printf '{"jsonrpc":"2.0","id":1,"method":"put","params":{"tenant":"acme","fields":{"big":"'
		head -c 200000 /dev/zero | tr '\0' a
		printf '"}}}\n'
		# Never answered: the connection is gone by then.
		printf '{"jsonrpc":"2.0","id":2,"method":"hello","params":{}}\n'
	} >"$T/req"
	run tp send <"$T/req"
	[ "$status" -eq 0 ]
	assert_codes -32004
	# Without any newline at all.
	head -c 300000 /dev/zero | tr '\0' a >"$T/req"
	run tp send 10000 <"$T/req"
	[ "$status" -eq 0 ]
	assert_codes -32004
	run wfv get acme big
	[ "$status" -eq 3 ]
	# Just under the limit still works.
	{
		printf '{"jsonrpc":"2.0","id":3,"method":"hello","params":{},"x":"'
		head -c 130000 /dev/zero | tr '\0' a
		printf '"}\n'
	} >"$T/req"
	run tp send <"$T/req"
	assert_codes -32600
	assert_healthy
}

@test "half a message, then a close" {
	printf '{"jsonrpc":"2.0","id":1,"meth' >"$T/req"
	run tp fire <"$T/req"
	[ "$status" -eq 0 ]
	# Half a message and a half-close: no reply, the connection ends.
	run tp send <"$T/req"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	assert_healthy
}

@test "64 KiB of random bytes" {
	head -c 65536 /dev/urandom >"$T/noise"
	run tp send <"$T/noise"
	[ "$status" -eq 0 ]
	# Whatever came back is error replies, each one line of JSON.
	if [ -n "$output" ]; then
		printf '%s\n' "$output" | jq -e 'has("error")' >/dev/null
	fi
	head -c 65536 /dev/urandom | tr -d '\n' >"$T/noise"
	run tp fire <"$T/noise"
	assert_healthy
}

@test "1000 pipelined requests are answered in order" {
	run tp pipeline 1000 acme known
	[ "$status" -eq 0 ]
	[ "$output" = "replies=1000 in_order=yes errors=0" ]
	assert_healthy
}

@test "200 pipelined puts on one connection are applied in order" {
	local i
	for i in $(seq 1 200); do
		printf '{"jsonrpc":"2.0","id":%d,"method":"put","params":{"tenant":"counter","fields":{"n":%d}}}\n' "$i" "$i"
	done >"$T/reqs"
	run tp send 30000 <"$T/reqs"
	[ "$status" -eq 0 ]
	[ "$(printf '%s\n' "$output" | jq -s 'map(.id)' -c)" = "$(seq 1 200 | jq -s -c .)" ]
	printf '%s\n' "$output" | jq -se 'all(.[]; .result.version > 0)'
	# Versions increase with the ids.
	printf '%s\n' "$output" | jq -se 'map(.result.version) as $v |
	    [range(1; length)] | all(.[]; $v[.] > $v[. - 1])'
	run wfv get counter n
	[ "$output" = "200" ]
	assert_healthy
}

@test "300 idle connections while a normal client still works" {
	# Into a file, so the test can watch it while it holds them.
	bg "$TESTPEER" idle "$SOCK" 300 4000 >"$T/idle.out" 2>&1
	local idle_pid=$BG_PID
	wait_for_line "$T/idle.out" 50 '^opened=300$'
	run wfv get acme known
	[ "$status" -eq 0 ]
	[ "$output" = "$KNOWN" ]
	run tp call status
	[ "$status" -eq 0 ]
	printf '%s\n' "$output" | jq -e '.result.connections >= 300'
	put_value acme other busy
	wait "$idle_pid" || true
	cat "$T/idle.out"
	grep -qx 'open=300 answered=300' "$T/idle.out"
	assert_healthy
}

@test "max_connections: extra connections are refused, the others go on" {
	restart_with "max_connections 20"
	# No connection may be open now: not even a probe's, still closing.
	wait_no_connections
	run tp flood 30
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "accepted=20 refused=10 pending=0" ]
	[ "${lines[1]}" = "still_ok=20" ]
	wait_no_connections
	assert_healthy
}

@test "a client that dribbles bytes is closed after message_timeout" {
	restart_with "message_timeout 2s"
	printf '{"jsonrpc":"2.0","id":1,"method":"hello","params":{}}\n' >"$T/req"
	# 200 ms a byte: the whole line would take about 11 s.
	run tp dribble 200 10000 <"$T/req"
	[ "$status" -eq 0 ]
	local ms
	ms=$(printf '%s\n' "$output" | sed -n 's/^closed after_ms=\([0-9]*\) .*/\1/p')
	[ -n "$ms" ]
	# Closed after message_timeout and before the line was whole (no
	# reply); how long after is up to the machine's load.
	[ "$ms" -ge 1500 ]
	[[ "$output" != *'"result"'* ]]
	# A client that sends its line in time (0.3 s of 2) is fine.
	run tp dribble 5 3000 <"$T/req"
	[[ "$output" == *'"result"'* ]]
	assert_healthy
}

@test "message_timeout is per line: a pipeline that always has a partial line goes on" {
	restart_with "message_timeout 2s"
	local i line chunk out in
	coproc PIPE { socat - "UNIX-CONNECT:$SOCK"; }
	out=${PIPE[1]} in=${PIPE[0]}
	# Each write (one write(2): the chunk is built first) completes the
	# line before it and starts the next, so the input is never empty;
	# every line is whole within a reply's time, and the whole pipeline
	# lasts longer than message_timeout.
	printf '{"jsonrpc":"2.0",' >&"$out"
	for i in $(seq 1 30); do
		printf -v chunk \
		    '"id":%d,"method":"hello","params":{}}\n{"jsonrpc":"2.0",' "$i"
		printf '%s' "$chunk" >&"$out"
		read -r -t 20 line <&"$in"
		[[ "$line" == *"\"id\":$i,\"result\""* ]]
		sleep 0.1
	done
	exec {out}>&-
	wait "$PIPE_PID" 2>/dev/null || true
	assert_healthy
}

@test "idle_timeout closes silent connections, not busy ones" {
	restart_with "idle_timeout 2s"
	run tp idle 3 6000
	[ "${lines[0]}" = "opened=3" ]
	[ "${lines[1]}" = "open=0 answered=0" ]
	run tp idle 3 300
	[ "$status" -eq 0 ]
	[ "${lines[1]}" = "open=3 answered=3" ]
	assert_healthy
}

@test "a client that disconnects before its reply" {
	head -c 30000 /dev/zero | tr '\0' z | wfv put acme big
	local i
	for i in $(seq 1 200); do
		printf '{"jsonrpc":"2.0","id":%d,"method":"get","params":{"tenant":"acme"}}\n' "$i"
	done >"$T/reqs"
	for _ in 1 2 3; do
		run tp fire <"$T/reqs"
		[ "$status" -eq 0 ]
	done
	# A write, gone before its group commit answers.
	printf '{"jsonrpc":"2.0","id":1,"method":"put","params":{"tenant":"acme","fields":{"w":"x"}}}\n' >"$T/req"
	for _ in 1 2 3 4 5; do
		run tp fire <"$T/req"
	done
	sleep 0.3
	assert_healthy
	# Whether an unanswered write landed is the daemon's choice; reading
	# the tenant must work either way.
	run wfv get acme w
	[ "$status" -eq 0 ] || [ "$status" -eq 3 ]
}

@test "replies stay in request order when writes, failed writes and reads are pipelined" {
	# Queued writes must not be overtaken by the error of a later write,
	# an unknown method or a read.
	run tp send <<-'REQS'
	{"jsonrpc":"2.0","id":1,"method":"put","params":{"tenant":"acme","fields":{"a_key":"x"}}}
	{"jsonrpc":"2.0","id":2,"method":"put","params":{"tenant":"acme"}}
	{"jsonrpc":"2.0","id":3,"method":"put","params":{"tenant":"acme","fields":{"b_key":"y"}}}
	{"jsonrpc":"2.0","id":4,"method":"nope"}
	{"jsonrpc":"2.0","id":5,"method":"get","params":{"tenant":"acme","field":"b_key"}}
	REQS
	[ "$status" -eq 0 ]
	[ "$(printf '%s\n' "$output" | jq -c .id | tr '\n' ' ')" = "1 2 3 4 5 " ]
	[ "$(printf '%s\n' "$output" | jq -r 'select(.id == 5).result.value')" = y ]
	[ "$(printf '%s\n' "$output" | jq -r 'select(.id == 2).error.code')" = -32602 ]
	assert_healthy
}

@test "a client that pipelines faster than it reads is slowed, not cut off" {
	restart_with "max_output_bytes 128K" "message_timeout 1s"
	head -c 30000 /dev/zero | tr '\0' v >"$T/big"
	wfv put acme big --file "$T/big"
	# 400 requests for a 30 KB value: 12 MB of replies, far over the
	# bound; the peer reads nothing for longer than message_timeout.
	for i in $(seq 400); do
		printf '{"jsonrpc":"2.0","id":%d,"method":"get","params":{"tenant":"acme","field":"big"}}\n' "$i"
	done >"$T/reqs"
	run tp lazy 2500 <"$T/reqs"
	[ "$status" -eq 0 ]
	[ "$(printf '%s\n' "$output" | grep -c '"result"')" -eq 400 ]
	assert_healthy
}

# Lets uids other than root reach the socket (the key and data stay
# private) and restarts with the extra config lines.
restart_open() {
	require_root
	chmod 0755 "$T"
	restart_with "socket_mode 0666" "$@"
}

# The daemon's resident memory in KiB.
daemon_rss() {
	sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$DAEMON_PID/status"
}

# Waits (up to 10 s) until `wfv get acme known` works again, for tests
# whose peers held slots the daemon frees once it sees them close.
wait_served() {
	local _
	for _ in $(seq 100); do
		wfv get acme known >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}

@test "max_connections: a refused CLI is told too many connections" {
	restart_with "max_connections 3"
	bg "$TESTPEER" idle "$SOCK" 3 60000 >"$T/idle.out" 2>&1
	local idle_pid=$BG_PID
	wait_for_line "$T/idle.out" 50 '^opened=3$'
	# Accepted in order: the CLI's connection is the fourth.
	run wfv get acme known
	[ "$status" -ne 0 ]
	[[ "$output" == *"too many connections; try again later"* ]]
	[[ "$output" != *"did wfvaultd stop"* ]]
	# The raw reply is an ordinary error reply.
	run tp send <<<"${REQ}\"hello\",\"params\":{}}"
	[ "$(printf '%s\n' "$output" | jq -r .error.data.kind)" = unavailable ]
	kill "$idle_pid"
	wait_served
	assert_healthy
}

@test "max_connections_per_uid: one uid cannot take every slot" {
	restart_open "allow uid:4250 read acme" "allow uid:4251 read acme"
	# 64 connections (the default cap) held by uid 4250.
	bg as_user 4250 4250 "$TESTPEER" idle "$SOCK" 64 60000 \
	    >"$T/idle.out" 2>&1
	local idle_pid=$BG_PID
	wait_for_line "$T/idle.out" 50 '^opened=64$'
	run wfv_as 4250 4250 get acme known
	[ "$status" -ne 0 ]
	[[ "$output" == *"too many connections from uid 4250"* ]]
	# Another uid and root are still served.
	run wfv_as 4251 4251 get acme known
	[ "$status" -eq 0 ]
	[ "$output" = "$KNOWN" ]
	run tp flood 70
	[ "${lines[0]}" = "accepted=70 refused=0 pending=0" ]
	kill "$idle_pid"
	wait_served
	assert_healthy
}

@test "a uid that pipelines without reading on many connections stays bounded" {
	restart_open "max_output_total 1M" "allow uid:4250 read acme" \
	    "allow uid:4251 read acme"
	head -c 30000 /dev/zero | tr '\0' v >"$T/big"
	wfv put acme big --file "$T/big"
	# 16 connections asking for 20000 x 30 KB each and reading nothing:
	# without a global bound 16 x max_output_bytes (256 MiB) get queued.
	bg as_user 4250 4250 "$TESTPEER" hog "$SOCK" 16 20000 6000 acme big \
	    >"$T/hog.out" 2>&1
	local hog_pid=$BG_PID rss max=0 base
	base=$(daemon_rss)
	wait_for_line "$T/hog.out" 50 '^opened=16$'
	while pid_alive "$hog_pid"; do
		rss=$(daemon_rss)
		[ "$rss" -gt "$max" ] && max=$rss
		# Far above the few MB expected (tens under a sanitizer), far
		# below the 256 MiB queued without the bound.
		if [ "$rss" -gt $((base + 131072)) ]; then
			echo "wfvaultd holds ${rss} KiB (from ${base})" >&2
			return 1
		fi
		sleep 0.2
	done
	echo "RSS ${base} KiB before, at most ${max} KiB" >&3
	cat "$T/hog.out"
	grep -q '^sent=' "$T/hog.out"
	# Served while the hog held its connections, and after.
	run wfv_as 4251 4251 get acme big
	[ "$status" -eq 0 ]
	[ "${#output}" -eq 30000 ]
	assert_healthy
}

@test "a second uid is served while another floods without reading" {
	restart_open "allow uid:4250 read acme" "allow uid:4251 read acme"
	bg as_user 4250 4250 "$TESTPEER" hog "$SOCK" 64 200000 60000 \
	    >"$T/hog.out" 2>&1
	local hog_pid=$BG_PID
	wait_for_line "$T/hog.out" 50 '^opened=64$'
	run wfv_as 4251 4251 get acme known
	[ "$status" -eq 0 ]
	[ "$output" = "$KNOWN" ]
	run wfv_as 4250 4250 get acme known
	[[ "$output" == *"too many connections from uid 4250"* ]]
	kill "$hog_pid"
	wait_served
	assert_healthy
}

@test "a peer with no grant is closed after ungranted_timeout whatever it sends" {
	restart_open "allow uid:4251 read acme"
	for i in $(seq 2000); do
		printf '{"jsonrpc":"2.0","id":%d,"method":"hello","params":{}}\n' "$i"
	done >"$T/hellos"
	# A hello every ~55 ms keeps idle_timeout (300 s) from ever firing;
	# ungranted_timeout (default 10 s) closes it anyway.
	run as_user 4260 4260 timeout 120 "$TESTPEER" dribble "$SOCK" 1 60000 \
	    <"$T/hellos"
	[ "$status" -eq 0 ]
	[[ "$output" == *"closed after_ms="* ]]
	[[ "$output" == *"uid 4260 has no permission on any tenant"* ]]
	assert_healthy
}

@test "ungranted_timeout leaves a peer with a grant alone" {
	restart_open "allow uid:4251 read acme" "ungranted_timeout 1s"
	for i in $(seq 200); do
		printf '{"jsonrpc":"2.0","id":%d,"method":"hello","params":{}}\n' "$i"
	done >"$T/hellos"
	run as_user 4251 4251 timeout 60 "$TESTPEER" dribble "$SOCK" 1 4000 \
	    <"$T/hellos"
	[ "$status" -eq 1 ]
	[[ "$output" == *"open after_ms="* ]]
	run as_user 4260 4260 timeout 60 "$TESTPEER" dribble "$SOCK" 1 30000 \
	    <"$T/hellos"
	[ "$status" -eq 0 ]
	[[ "$output" == *"ungranted_timeout (1 s)"* ]]
	assert_healthy
}

# Denials of uid 4260 in the audit log: full lines count one each, summary
# lines their "count".
audit_denials() {
	jq -s '[.[] | select(.uid == 4260 and .outcome == "permission_denied") |
	    (.count // 1)] | add // 0' "$AUDIT"
}

@test "repeated denials are coalesced in the audit log, none uncounted" {
	restart_open "allow uid:4251 read acme"
	for i in $(seq 3000); do
		printf '{"jsonrpc":"2.0","id":%d,"method":"get","params":{"tenant":"acme"}}\n' "$i"
	done >"$T/reqs"
	run as_user 4260 4260 timeout 60 "$TESTPEER" send "$SOCK" 30000 \
	    <"$T/reqs"
	[ "$status" -eq 0 ]
	[ "$(printf '%s\n' "$output" | grep -c '"code":-32001')" -eq 3000 ]
	# The counts are written when their interval ends.
	local _ n=0
	for _ in $(seq 100); do
		n=$(audit_denials)
		[ "$n" -eq 3000 ] && break
		sleep 0.1
	done
	[ "$n" -eq 3000 ]
	# A handful of lines, not one per denial.
	local lines
	lines=$(jq -c 'select(.uid == 4260)' "$AUDIT" | wc -l)
	echo "audit lines: $lines" >&3
	[ "$lines" -lt 100 ]
	[ "$(grep -c 'denied: uid 4260' "$LOG")" -lt 100 ]
	jq -e 'select(.uid == 4260 and .count != null) |
	    .since != null and .time != null' "$AUDIT" >/dev/null
	assert_healthy
}

@test "denial counts are written at shutdown" {
	restart_open "allow uid:4251 read acme"
	for i in $(seq 500); do
		printf '{"jsonrpc":"2.0","id":%d,"method":"get","params":{"tenant":"acme"}}\n' "$i"
	done >"$T/reqs"
	run as_user 4260 4260 timeout 60 "$TESTPEER" send "$SOCK" 30000 \
	    <"$T/reqs"
	[ "$status" -eq 0 ]
	stop_daemon
	[ "$(audit_denials)" -eq 500 ]
	[ "$(jq -c 'select(.uid == 4260)' "$AUDIT" | wc -l)" -lt 100 ]
}

# Sends the lines of $1 as uid 4260 (no grant) and checks that the audit
# log holds them as a handful of lines whose counts of outcome $2 add up to
# $3 exactly, and that the daemon's log did not grow by one line each.
flood_coalesced() {
	local reqs=$1 outcome=$2 want=$3 before after lines _ n=0
	before=$(wc -l <"$LOG")
	run as_user 4260 4260 timeout 60 "$TESTPEER" send "$SOCK" 30000 \
	    <"$reqs"
	[ "$status" -eq 0 ]
	[ "$(printf '%s\n' "$output" | grep -c '"kind":"'"$outcome"'"')" \
	    -eq "$want" ]
	# The counts are written when their interval ends.
	for _ in $(seq 100); do
		n=$(jq -s --arg o "$outcome" '[.[] | select(.uid == 4260 and
		    .outcome == $o) | (.count // 1)] | add // 0' "$AUDIT")
		[ "$n" -eq "$want" ] && break
		sleep 0.1
	done
	[ "$n" -eq "$want" ]
	lines=$(jq -c 'select(.uid == 4260)' "$AUDIT" | wc -l)
	echo "audit lines: $lines" >&3
	[ "$lines" -lt 100 ]
	jq -e 'select(.uid == 4260 and .count != null) |
	    .since != null and .time != null' "$AUDIT" >/dev/null
	after=$(wc -l <"$LOG")
	echo "daemon log lines: $((after - before))" >&3
	[ "$((after - before))" -lt 100 ]
}

@test "repeated invalid JSON from a peer is coalesced in the audit log" {
	restart_open "allow uid:4251 read acme"
	for i in $(seq 3000); do
		printf '{"jsonrpc":"2.0","id":%d,"method":\n' "$i"
	done >"$T/reqs"
	flood_coalesced "$T/reqs" parse_error 3000
	assert_healthy
}

@test "repeated unknown methods from a peer are coalesced in the audit log" {
	restart_open "allow uid:4251 read acme"
	for i in $(seq 3000); do
		printf '{"jsonrpc":"2.0","id":%d,"method":"nosuch%d"}\n' "$i" "$i"
	done >"$T/reqs"
	flood_coalesced "$T/reqs" method_not_found 3000
	assert_healthy
}

@test "repeated hellos and bad params are coalesced, each outcome counted" {
	restart_open "allow uid:4251 read acme"
	for i in $(seq 1500); do
		printf '{"jsonrpc":"2.0","id":%d,"method":"hello","params":{}}\n' "$i"
		printf '{"jsonrpc":"2.0","id":%d,"method":"get","params":{"x":1}}\n' "$i"
	done >"$T/reqs"
	flood_coalesced "$T/reqs" invalid_params 1500
	[ "$(jq -s '[.[] | select(.uid == 4260 and .method == "hello" and
	    .outcome == "ok") | (.count // 1)] | add // 0' "$AUDIT")" -eq 1500 ]
	assert_healthy
}

@test "a backup sent as a notification does not pin its connection" {
	restart_with "backup_dir $T/backups"
	mkdir -m 0700 "$T/backups"
	load_tenants 300
	# Half-closed: no reply is owed, so the daemon closes once the backup
	# is done (tp send exits 0 at that EOF).
	run tp send 20000 <<<'{"jsonrpc":"2.0","method":"backup","params":{}}'
	[ "$status" -eq 0 ]
	# Closed at once: the slot is not held for ever either.
	local i
	for i in 1 2 3 4 5; do
		printf '{"jsonrpc":"2.0","method":"backup","params":{"name":"b%d"}}\n' "$i" |
		    tp fire
	done
	local _ ok=0
	for _ in $(seq 100); do
		if tp call status | jq -e '.result.connections == 1' \
		    >/dev/null; then
			ok=1
			break
		fi
		sleep 0.1
	done
	[ "$ok" -eq 1 ]
	assert_healthy
}

@test "an audit line stays small: no unchecked tenant id, at most 64 field names" {
	restart_open "allow uid:4251 read acme"
	local big i
	big=$(head -c 200000 /dev/zero | tr '\0' 'a')
	for i in 1 2 3; do
		printf '{"jsonrpc":"2.0","id":%d,"method":"get","params":{"tenant":"%s/"}}\n' \
		    "$i" "$big"
	done >"$T/big"
	run tp send 10000 <"$T/big"
	[ "$(grep -c invalid_params <<<"$output")" -eq 3 ]
	# 1000 valid field names in a put uid 4251 may not make.
	{
		printf '{"jsonrpc":"2.0","id":1,"method":"put","params":{"tenant":"acme","fields":{'
		for i in $(seq 1000); do
			printf '"field_%04d":"v"%s' "$i" "$([ "$i" -lt 1000 ] && echo ,)"
		done
		printf '}}}\n'
	} >"$T/wide"
	run as_user 4251 4251 "$TESTPEER" send "$SOCK" 10000 <"$T/wide"
	[[ "$output" == *permission_denied* ]]
	stop_daemon
	# 3 x 200 KB and 1000 names would be over 600 KB.
	[ "$(stat -c %s "$AUDIT")" -lt 20000 ]
	! grep -q aaaaaaaaaa "$AUDIT"
	run jq -c 'select(.uid == 4251 and .method == "put") | .fields' "$AUDIT"
	[ "$(jq length <<<"$output")" -eq 65 ]
	[ "$(jq -r '.[64]' <<<"$output")" = "+936 more" ]
}

@test "a reload that takes a peer's last grant away closes it after ungranted_timeout" {
	restart_open "allow uid:4251 read acme" "ungranted_timeout 1s"
	local i
	for i in $(seq 200); do
		printf '{"jsonrpc":"2.0","id":%d,"method":"hello","params":{}}\n' "$i"
	done >"$T/hellos"
	# About 11 s of hellos, a byte a millisecond.
	bg as_user 4251 4251 "$TESTPEER" dribble "$SOCK" 1 20000 \
	    <"$T/hellos" >"$T/dribble.out" 2>&1
	for i in $(seq 100); do
		[ "$(wfv status --json | jq .connections)" -ge 2 ] && break
		sleep 0.1
	done
	write_conf "socket_mode 0666" "ungranted_timeout 1s"
	kill -HUP "$DAEMON_PID"
	wait_for_line "$T/dribble.out" 300 '^closed after_ms='
	grep -q "ungranted_timeout (1 s)" "$T/dribble.out"
	assert_healthy
}
