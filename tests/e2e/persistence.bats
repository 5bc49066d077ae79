#!/usr/bin/env bats
# Start-up, shutdown and durability of wfvaultd: restarts keep the data,
# SIGTERM is clean, the master key is checked, the config is checked.

load helpers

setup() {
	wfv_setup
	write_conf
}

teardown() {
	wfv_teardown
}

@test "values survive a restart" {
	start_daemon
	put_value acme a_key one
	printf '{"b_key":"two","c_key":{"n":3}}' | wfv put acme --json
	put_value beta a_key gone-soon
	put_value gamma x_key removed
	put_value gamma y_key kept-too
	wfv rm beta
	wfv rm gamma x_key
	# Not under run: the daemon is a child of this shell only.
	stop_daemon
	start_daemon
	run wfv get acme
	[ "$status" -eq 0 ]
	echo "$output" | jq -e '. == {"a_key":"one","b_key":"two","c_key":{"n":3}}'
	run wfv get beta
	[ "$status" -eq 3 ]
	run wfv get gamma
	echo "$output" | jq -e '. == {"y_key":"kept-too"}'
	run wfv list
	[ "$(printf '%s\n' "$output" | sort | tr '\n' ' ')" = "acme gamma " ]
	# Versions carry on from where they were: acme is at 2.
	run wfv put acme d_key --cas 2 <<<'four'
	[ "$status" -eq 0 ]
}

@test "SIGTERM exits 0 and removes the socket" {
	start_daemon
	put_value acme a_key one
	stop_daemon
	[ ! -e "$SOCK" ]
	grep -qi 'shutting down\|SIGTERM' "$LOG"
}

@test "SIGTERM with clients connected still exits 0 promptly" {
	start_daemon
	put_value acme a_key one
	bg "$TESTPEER" idle "$SOCK" 5 20000
	local _
	for _ in $(seq 200); do
		tp call status | jq -e '.result.connections >= 6' >/dev/null &&
		    break
		sleep 0.05
	done
	tp call status | jq -e '.result.connections >= 6' >/dev/null
	# Not under run: the daemon is a child of this shell only.  Waiting
	# for the idle clients would take 20 s; stop_daemon gives SIGTERM
	# 10 s and then kills, so status 0 means it did not wait for them.
	stop_daemon
}

@test "a wrong master key is refused at start-up with a clear message" {
	start_daemon
	put_value acme a_key one
	stop_daemon
	"$WFVAULTD" --gen-key "$T/other.key"
	sed "s|^master_key_file .*|master_key_file $T/other.key|" "$CONF" \
	    >"$T/wrong.conf"
	run timeout 10 "$WFVAULTD" -c "$T/wrong.conf"
	[ "$status" -ne 0 ]
	[ "$status" -ne 124 ]
	[[ "$output" == *key* ]]
	refute "$TESTPEER" call "$SOCK" hello
	# The data is untouched and the right key still opens it.
	start_daemon
	run wfv get acme a_key
	[ "$output" = "one" ]
}

@test "a master key file others may read is refused" {
	chmod 0644 "$KEY"
	run timeout 10 "$WFVAULTD" -c "$CONF"
	[ "$status" -ne 0 ]
	[ "$status" -ne 124 ]
	[[ "$output" == *"$KEY"* ]]
	chmod 0640 "$KEY"
	run timeout 10 "$WFVAULTD" -c "$CONF"
	[ "$status" -ne 0 ]
	[ "$status" -ne 124 ]
	chmod 0600 "$KEY"
	start_daemon
}

@test "a missing or malformed master key file is refused" {
	rm -f "$KEY"
	run timeout 10 "$WFVAULTD" -c "$CONF"
	[ "$status" -ne 0 ]
	[ "$status" -ne 124 ]
	[[ "$output" == *"$KEY"* ]]
	printf 'not base64 at all!\n' >"$KEY"
	chmod 0400 "$KEY"
	run timeout 10 "$WFVAULTD" -c "$CONF"
	[ "$status" -ne 0 ]
	[ "$status" -ne 124 ]
	rm -f "$KEY"
	# 16 bytes: too short for a key.
	head -c 16 /dev/urandom | base64 >"$KEY"
	chmod 0400 "$KEY"
	run timeout 10 "$WFVAULTD" -c "$CONF"
	[ "$status" -ne 0 ]
	[ "$status" -ne 124 ]
}

@test "--gen-key makes a private 32-byte key and never overwrites" {
	run "$WFVAULTD" --gen-key "$T/new.key"
	[ "$status" -eq 0 ]
	[ "$(stat -c %a "$T/new.key")" = 400 ]
	[ "$(base64 -d <"$T/new.key" | wc -c)" -eq 32 ]
	local before
	before=$(sha256sum <"$T/new.key")
	run "$WFVAULTD" --gen-key "$T/new.key"
	[ "$status" -ne 0 ]
	[[ "$output" == *"$T/new.key"* ]]
	[ "$(sha256sum <"$T/new.key")" = "$before" ]
	# Nor through a symlink.
	ln -s "$T/new.key" "$T/link.key"
	run "$WFVAULTD" --gen-key "$T/link.key"
	[ "$status" -ne 0 ]
	[ "$(sha256sum <"$T/new.key")" = "$before" ]
	# Two keys differ.
	"$WFVAULTD" --gen-key "$T/second.key"
	[ "$(cat "$T/second.key")" != "$(cat "$T/new.key")" ]
}

@test "-n prints 'configuration OK' and starts nothing" {
	run timeout 10 "$WFVAULTD" -c "$CONF" -n
	[ "$status" -eq 0 ]
	[[ "$output" == *"configuration OK"* ]]
	[ ! -e "$SOCK" ]
}

@test "-n rejects a bad config naming FILE:LINE" {
	local bad
	for bad in "no_such_keyword 1" "max_connections 0" \
	    "max_connections many" "map_size 12Q" "socket_mode 0999" \
	    "idle_timeout -5s" "allow uid:4242 fly acme" "allow uid:x read acme" \
	    "socket relative/path.sock" "socket $SOCK"; do
		write_conf "# line 6" "$bad"
		run timeout 10 "$WFVAULTD" -c "$CONF" -n
		[ "$status" -ne 0 ] || { echo "accepted: $bad"; false; }
		[[ "$output" == *"$CONF:7"* ]] ||
		    { echo "'$bad' gave: $output"; false; }
		[[ "$output" != *"configuration OK"* ]]
	done
	# A missing file is named too.
	run timeout 10 "$WFVAULTD" -c "$T/no-such.conf" -n
	[ "$status" -ne 0 ]
	[[ "$output" == *"$T/no-such.conf"* ]]
	# And a bad config does not start the daemon either.
	write_conf "no_such_keyword 1"
	run timeout 10 "$WFVAULTD" -c "$CONF"
	[ "$status" -ne 0 ]
	[ "$status" -ne 124 ]
	[ ! -e "$SOCK" ]
}

@test "a second daemon on the same socket is refused; the first keeps serving" {
	start_daemon
	put_value acme a_key one
	run timeout 10 "$WFVAULTD" -c "$CONF"
	[ "$status" -ne 0 ]
	[ "$status" -ne 124 ]
	run wfv get acme a_key
	[ "$status" -eq 0 ]
	[ "$output" = "one" ]
}

@test "-n also refuses a master key file the daemon would refuse" {
	write_conf
	run "$WFVAULTD" -c "$CONF" -n
	[ "$status" -eq 0 ]
	chmod 0644 "$KEY"
	run "$WFVAULTD" -c "$CONF" -n
	[ "$status" -eq 1 ]
	[[ "$output" == *"readable by group or others"* ]]
	rm -f "$KEY"
	run "$WFVAULTD" -c "$CONF" -n
	[ "$status" -eq 1 ]
	[[ "$output" != *"configuration OK"* ]]
}
