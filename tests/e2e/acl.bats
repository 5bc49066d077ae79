#!/usr/bin/env bats
# Access control by peer credentials (README.md "Access control"): the CLI
# runs as other uids/gids through setpriv; uids without passwd entries.

load helpers

# uid 4249 has no rule at all.
RULES=(
	"allow uid:4242 read acme"
	"allow uid:4243 list acme,beta-*"
	"allow uid:4244 read beta-*"
	"allow gid:4300 read acme"
	"allow uid:4246 write acme"
	"allow uid:4247 admin *"
)

setup() {
	require_root
	wfv_setup
	# Other uids must reach the socket; the key and data stay private.
	chmod 0755 "$T"
	write_conf "socket_mode 0666" "${RULES[@]}"
	start_daemon
	local t
	for t in acme beta beta-1 beta-2 gamma; do
		put_value "$t" f "$t-value"
	done
}

teardown() {
	wfv_teardown
}

@test "a uid with no rule is denied everything (exit 4)" {
	run wfv_as 4249 4249 get acme f
	[ "$status" -eq 4 ]
	[[ "$output" != *acme-value* ]]
	run wfv_as 4249 4249 get acme
	[ "$status" -eq 4 ]
	run wfv_as 4249 4249 put acme g <<<'x'
	[ "$status" -eq 4 ]
	run wfv_as 4249 4249 rm acme f
	[ "$status" -eq 4 ]
	run wfv_as 4249 4249 rm acme
	[ "$status" -eq 4 ]
	run wfv_as 4249 4249 status
	[ "$status" -eq 4 ]
	# list reveals no tenant (an empty answer or a denial).
	run wfv_as 4249 4249 list
	[ "$status" -eq 0 ] || [ "$status" -eq 4 ]
	[[ "$output" != *acme* && "$output" != *beta* && "$output" != *gamma* ]]
	# Nothing changed.
	run wfv get acme
	echo "$output" | jq -e '. == {"f":"acme-value"}'
}

@test "read on acme: get acme works, other tenants and writes are denied" {
	run wfv_as 4242 4242 get acme f
	[ "$status" -eq 0 ]
	[ "$output" = "acme-value" ]
	run wfv_as 4242 4242 get acme
	[ "$status" -eq 0 ]
	echo "$output" | jq -e '.f == "acme-value"'
	run wfv_as 4242 4242 get beta f
	[ "$status" -eq 4 ]
	[[ "$output" != *beta-value* ]]
	run wfv_as 4242 4242 put acme f <<<'overwritten'
	[ "$status" -eq 4 ]
	run wfv_as 4242 4242 rm acme f
	[ "$status" -eq 4 ]
	run wfv get acme f
	[ "$output" = "acme-value" ]
}

@test "list shows only the tenants the caller may list" {
	run wfv_as 4243 4243 list
	[ "$status" -eq 0 ]
	[ "$(printf '%s\n' "$output" | sort | tr '\n' ' ')" = "acme beta-1 beta-2 " ]
	run wfv_as 4243 4243 list beta
	[ "$status" -eq 0 ]
	[ "$(printf '%s\n' "$output" | sort | tr '\n' ' ')" = "beta-1 beta-2 " ]
	# list is names only: it does not grant reading values.
	run wfv_as 4243 4243 get acme f
	[ "$status" -eq 4 ]
	# read alone does not grant list.
	run wfv_as 4242 4242 list
	[[ "$output" != *acme* && "$output" != *beta* ]]
}

@test "a prefix* pattern matches ids with that prefix only" {
	run wfv_as 4244 4244 get beta-1 f
	[ "$status" -eq 0 ]
	[ "$output" = "beta-1-value" ]
	run wfv_as 4244 4244 get beta-2 f
	[ "$status" -eq 0 ]
	run wfv_as 4244 4244 get beta f
	[ "$status" -eq 4 ]
	run wfv_as 4244 4244 get acme f
	[ "$status" -eq 4 ]
	run wfv_as 4244 4244 get gamma f
	[ "$status" -eq 4 ]
}

@test "a gid: rule matches the primary group" {
	run wfv_as 4245 4300 get acme f
	[ "$status" -eq 0 ]
	[ "$output" = "acme-value" ]
	run wfv_as 4245 4300 get beta f
	[ "$status" -eq 4 ]
	run wfv_as 4245 4301 get acme f
	[ "$status" -eq 4 ]
}

@test "a gid: rule matches a supplementary group" {
	run setpriv --reuid=4245 --regid=4301 --groups=4300 \
	    timeout "$WFV_TIMEOUT" "$WFVAULT" -s "$SOCK" get acme f
	[ "$status" -eq 0 ]
	[ "$output" = "acme-value" ]
	run setpriv --reuid=4245 --regid=4301 --groups=4302,4303 \
	    timeout "$WFV_TIMEOUT" "$WFVAULT" -s "$SOCK" get acme f
	[ "$status" -eq 4 ]
}

@test "write without read: put and rm work, get is denied" {
	run wfv_as 4246 4246 put acme g <<<'written-by-4246'
	[ "$status" -eq 0 ]
	run wfv_as 4246 4246 get acme g
	[ "$status" -eq 4 ]
	[[ "$output" != *written-by-4246* ]]
	run wfv get acme g
	[ "$output" = "written-by-4246" ]
	# The merge kept the field 4246 could not see.
	run wfv get acme f
	[ "$output" = "acme-value" ]
	run wfv_as 4246 4246 rm acme g
	[ "$status" -eq 0 ]
	run wfv_as 4246 4246 put beta g <<<'x'
	[ "$status" -eq 4 ]
}

@test "write without read cannot tell a right guess of a value from a wrong one" {
	v0=$(wfv get acme --json | jq .version)
	# The right value and a wrong one: both make a new version.
	run wfv_as 4246 4246 put acme f <<<'acme-value'
	[ "$status" -eq 0 ]
	v1=$(wfv get acme --json | jq .version)
	[ "$v1" = "$((v0 + 1))" ]
	run wfv_as 4246 4246 put acme f <<<'a-wrong-guess'
	[ "$status" -eq 0 ]
	[ "$(wfv get acme --json | jq .version)" = "$((v1 + 1))" ]
	put_value acme f acme-value
	v2=$(wfv get acme --json | jq .version)
	printf '{"f":"acme-value"}' | wfv_as 4246 4246 put acme --json \
	    --replace >/dev/null
	[ "$(wfv get acme --json | jq .version)" = "$((v2 + 1))" ]
	# A reader still gets the shortcut.
	put_value acme f acme-value
	[ "$(wfv get acme --json | jq .version)" = "$((v2 + 1))" ]
	run wfv get acme f
	[ "$output" = "acme-value" ]
}

@test "admin may do everything, including status" {
	run wfv_as 4247 4247 status
	[ "$status" -eq 0 ]
	run wfv_as 4247 4247 get beta f
	[ "$status" -eq 0 ]
	[ "$output" = "beta-value" ]
	run wfv_as 4247 4247 put delta f <<<'new'
	[ "$status" -eq 0 ]
	run wfv_as 4247 4247 list
	[ "$(printf '%s\n' "$output" | sort | tr '\n' ' ')" = "acme beta beta-1 beta-2 delta gamma " ]
	run wfv_as 4247 4247 rm gamma
	[ "$status" -eq 0 ]
	run wfv_as 4242 4242 status
	[ "$status" -eq 4 ]
}

@test "hello reports the peer's uid, gid and permissions" {
	run as_user 4242 4242 "$TESTPEER" call "$SOCK" hello
	[ "$status" -eq 0 ]
	echo "$output" | jq -e '.result.uid == 4242 and .result.gid == 4242 and
	    .result.protocol == 1 and .result.server == "wfvaultd" and
	    (.result.permissions | index("read") != null) and
	    (.result.permissions | index("write") == null) and
	    (.result.permissions | index("admin") == null)'
	run as_user 4249 4249 "$TESTPEER" call "$SOCK" hello
	[ "$status" -eq 0 ]
	echo "$output" | jq -e '.result.uid == 4249 and .result.permissions == []'
	run "$TESTPEER" call "$SOCK" hello
	echo "$output" | jq -e '.result.uid == 0 and
	    (.result.permissions | index("admin") != null)'
}

@test "denials are audited, without values" {
	local canary
	canary="canary-$(random_token)"
	printf '%s' "$canary" | wfv put beta secret_field
	run wfv_as 4242 4242 get beta secret_field
	[ "$status" -eq 4 ]
	printf '%s' "$canary" >"$T/canary"
	run wfv_as 4242 4242 put acme other_field --file "$T/canary"
	[ "$status" -eq 4 ]
	[ -s "$AUDIT" ]
	# One JSON object per line.
	jq -e . "$AUDIT" >/dev/null
	grep -F 4242 "$AUDIT" | grep -F beta | grep -q permission_denied
	grep -F 4242 "$AUDIT" | grep -F acme | grep -q permission_denied
	refute grep -qaFf "$T/canary" "$AUDIT"
	refute grep -qaF beta-value "$AUDIT"
	refute grep -qaFf "$T/canary" "$LOG"
}

@test "SIGHUP reloads the allow rules; a broken file keeps the old ones" {
	run wfv_as 4250 4250 get acme f
	[ "$status" -eq 4 ]
	echo "allow uid:4250 read acme" >>"$CONF"
	kill -HUP "$DAEMON_PID"
	local _
	for _ in $(seq 50); do
		wfv_as 4250 4250 get acme f >/dev/null 2>&1 && break
		sleep 0.1
	done
	run wfv_as 4250 4250 get acme f
	[ "$status" -eq 0 ]
	[ "$output" = "acme-value" ]

	# A file that no longer parses: the daemon says where, keeps going.
	echo "allow uid:4251 read acme" >>"$CONF"
	echo "no_such_keyword 1" >>"$CONF"
	local bad_line
	bad_line=$(wc -l <"$CONF")
	kill -HUP "$DAEMON_PID"
	wait_for_line "$LOG" 50 "$CONF:$bad_line"
	pid_alive "$DAEMON_PID"
	run wfv_as 4250 4250 get acme f
	[ "$status" -eq 0 ]
	run wfv_as 4242 4242 get acme f
	[ "$status" -eq 0 ]
	run wfv_as 4251 4251 get acme f
	[ "$status" -eq 4 ]
	# Removing a rule takes effect too.
	write_conf "socket_mode 0666"
	kill -HUP "$DAEMON_PID"
	for _ in $(seq 50); do
		wfv_as 4242 4242 get acme f >/dev/null 2>&1 || break
		sleep 0.1
	done
	run wfv_as 4242 4242 get acme f
	[ "$status" -eq 4 ]
}

@test "a rule naming a deleted account is skipped with a warning, not fatal" {
	write_conf "socket_mode 0666" "allow uid:4242 read acme" \
	    "allow user:no-such-user-wfvault read acme" \
	    "allow group:no-such-group-wfvault admin *"
	run "$WFVAULTD" -n -c "$CONF"
	[ "$status" -eq 0 ]
	[[ "$output" == *"unknown user 'no-such-user-wfvault'; rule skipped"* ]]
	[[ "$output" == *"unknown group 'no-such-group-wfvault'; rule skipped"* ]]
	restart_daemon
	grep -q "unknown user 'no-such-user-wfvault'; rule skipped" "$LOG"
	run wfv_as 4242 4242 get acme f
	[ "$status" -eq 0 ]
	[ "$output" = "acme-value" ]
	run wfv_as 4243 4243 get acme f
	[ "$status" -eq 4 ]
}

@test "a reload with a rule naming a deleted account applies the others" {
	run wfv_as 4250 4250 get acme f
	[ "$status" -eq 4 ]
	# 4242 loses its rule, 4250 gains one, the unknown name is skipped.
	write_conf "socket_mode 0666" "allow uid:4250 read acme" \
	    "allow user:no-such-user-wfvault read acme"
	kill -HUP "$DAEMON_PID"
	local _
	for _ in $(seq 50); do
		wfv_as 4250 4250 get acme f >/dev/null 2>&1 && break
		sleep 0.1
	done
	run wfv_as 4250 4250 get acme f
	[ "$status" -eq 0 ]
	run wfv_as 4242 4242 get acme f
	[ "$status" -eq 4 ]
	grep -q "unknown user 'no-such-user-wfvault'; rule skipped" "$LOG"
}
