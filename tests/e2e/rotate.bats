#!/usr/bin/env bats
# Key rotation and purging: the master key rotated online and offline (and
# a daemon killed in the middle of it), a tenant's data key rotated, and a
# tenant purged down to one delete change.

load helpers

setup() {
	wfv_setup
	NEXT=$T/next.key
	"$WFVAULTD" --gen-key "$NEXT" >/dev/null
}

teardown() {
	wfv_teardown
}

# What an operator does once a rotation committed: the next key becomes
# the master key, and a new next key is made for the rotation after.
install_next_key() {
	mv -f "$NEXT" "$KEY"
	"$WFVAULTD" --gen-key "$NEXT" >/dev/null
}

@test "online master-key rotation; restart with only the next key matching, then with it installed" {
	write_conf "master_key_next_file $NEXT" "keep_versions 3"
	start_daemon
	put_value acme a_key one
	put_value acme a_key two
	put_value beta b_key x
	put_value gone g_key y
	wfv rm gone
	local seq
	seq=$(tp call changes '{"since":0}' | jq .result.last_seq)

	run wfv rotate-master-key
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"re-wrapped 2 tenant data keys"* ]]
	# The running daemon uses the new key at once, for old and new data.
	[ "$(wfv get acme a_key)" = two ]
	[ "$(wfv get acme a_key --version 1)" = one ]
	put_value gamma c_key z
	[ "$(wfv get gamma c_key)" = z ]
	# Values did not change: nothing for the sync agent.
	[ "$(tp call changes '{"since":0}' | jq .result.last_seq)" = $((seq + 1)) ]
	grep -q '"method":"rotate_master_key"' "$AUDIT"

	# Rotating again to the same key is refused.
	run wfv rotate-master-key
	[ "$status" -eq 1 ]
	[[ "$output" == *"already"* ]]

	# Restarted before the key files were swapped: the next key opens it.
	stop_daemon
	: >"$LOG"
	start_daemon
	grep -q "the store is sealed with master_key_next_file: the rotation completed; install that key as master_key_file" "$LOG"
	[ "$(wfv get acme a_key)" = two ]

	# Installed as the master key (and no next key named): opens as usual.
	stop_daemon
	mv -f "$NEXT" "$KEY"
	write_conf "keep_versions 3"
	: >"$LOG"
	start_daemon
	refute grep -q "sealed with" "$LOG"
	[ "$(wfv get beta b_key)" = x ]
	[ "$(wfv get gamma c_key)" = z ]
	run wfv rotate-master-key
	[ "$status" -eq 1 ]
	[[ "$output" == *"set master_key_next_file"* ]]

	# Naming a next key needs no restart: the daemon re-reads its config.
	"$WFVAULTD" --gen-key "$NEXT" >/dev/null
	write_conf "keep_versions 3" "master_key_next_file $NEXT"
	run wfv rotate-master-key
	[ "$status" -eq 0 ]
	[ "$(wfv get acme a_key)" = two ]
}

@test "rotate-master-key needs admin on every tenant" {
	require_root
	# Other uids must reach the socket; the key and data stay private.
	chmod 0755 "$T"
	write_conf "socket_mode 0666" "master_key_next_file $NEXT" \
	    "allow uid:4242 write *" "allow uid:4243 admin acme"
	start_daemon
	put_value acme a_key one
	run wfv_as 4242 4242 rotate-master-key
	[ "$status" -eq 4 ]
	run wfv_as 4243 4243 rotate-master-key
	[ "$status" -eq 4 ]
	run wfv_as 4242 4242 backup
	[ "$status" -eq 4 ]
	run wfv_as 4242 4242 rotate-key acme
	[ "$status" -eq 0 ]
	[ "$(wfv get acme a_key)" = one ]
}

@test "kill -9 during a master-key rotation loses nothing" {
	write_conf "master_key_next_file $NEXT"
	start_daemon
	load_tenants 3000
	local delay outcome rotated=0 kept=0
	for delay in 0 0.002 0.01 0.05 0.5; do
		printf '%s\n' '{"jsonrpc":"2.0","id":1,"method":"rotate_master_key","params":{}}' |
		    tp fire
		[ "$delay" = 0 ] || sleep "$delay"
		kill -KILL "$DAEMON_PID"
		wait "$DAEMON_PID" 2>/dev/null || true
		DAEMON_PID=
		: >"$LOG"
		start_daemon
		check_tenants 3000
		if grep -q "sealed with master_key_next_file" "$LOG"; then
			outcome=rotated
			rotated=$((rotated + 1))
			# Install the key the store is sealed with now.
			stop_daemon
			install_next_key
			start_daemon
			check_tenants 3000
		else
			outcome=kept
			kept=$((kept + 1))
		fi
		echo "# killed after ${delay}s: $outcome" >&3
	done
	# At the longest delay the rotation had finished.
	[ "$outcome" = rotated ]
	echo "# rotated $rotated times, old key kept $kept times" >&3
}

@test "offline master-key rotation, refused while wfvaultd runs" {
	write_conf "master_key_next_file $NEXT"
	start_daemon
	put_value acme a_key one
	put_value beta b_key two
	run "$WFVAULTD" -c "$CONF" --rotate-master-key
	[ "$status" -eq 1 ]
	[[ "$output" == *"wfvaultd is running on $SOCK"* ]]
	stop_daemon

	run "$WFVAULTD" -c "$CONF" --rotate-master-key
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"re-wrapped 2 tenant data keys"* ]]
	# Done already: says so, changes nothing.
	run "$WFVAULTD" -c "$CONF" --rotate-master-key
	[ "$status" -eq 0 ]
	[[ "$output" == *"already sealed with master_key_next_file"* ]]

	# The old key alone no longer opens the store.
	write_conf
	run timeout 10 "$WFVAULTD" -c "$CONF"
	[ "$status" -eq 1 ]
	[[ "$output" == *"master key does not match"* ]]
	install_next_key
	start_daemon
	[ "$(wfv get acme a_key)" = one ]
	[ "$(wfv get beta b_key)" = two ]

	# Without a next key there is nothing to rotate to.
	stop_daemon
	run "$WFVAULTD" -c "$CONF" --rotate-master-key
	[ "$status" -eq 1 ]
	[[ "$output" == *"master_key_next_file"* ]]
}

@test "rotate-key gives a tenant a new data key; every kept version still reads" {
	write_conf "keep_versions 3"
	start_daemon
	put_value acme a_key one
	put_value acme a_key two
	put_value acme a_key three
	put_value acme a_key four
	put_value beta b_key x
	local seq
	seq=$(tp call changes '{"since":0}' | jq .result.last_seq)
	run wfv rotate-key acme
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "acme: new data key, 3 versions re-sealed" ]
	[ "$(wfv get acme a_key --version 2)" = two ]
	[ "$(wfv get acme a_key --version 3)" = three ]
	[ "$(wfv get acme a_key --version 4)" = four ]
	[ "$(wfv get acme a_key)" = four ]
	[ "$(wfv get beta b_key)" = x ]
	# Same version, no change in the feed.
	run wfv put acme a_key --cas 4 <<<'five'
	[ "$status" -eq 0 ]
	[ "$(tp call changes '{"since":0}' | jq .result.last_seq)" = $((seq + 1)) ]
	restart_daemon
	[ "$(wfv get acme a_key --version 3)" = three ]
	[ "$(wfv get acme a_key)" = five ]

	run wfv rotate-key nobody
	[ "$status" -eq 3 ]
	run wfv rotate-key ../x
	[ "$status" -eq 2 ]
	run wfv rotate-key acme --json
	echo "$output" | jq -e '.tenant == "acme" and .resealed == 3'
}

@test "rm --purge leaves one delete change and no other trace" {
	write_conf
	start_daemon
	put_value acme a_key one
	put_value beta b_key x
	put_value acme a_key two
	wfv rm acme a_key
	put_value acme c_key three
	put_value gamma g_key y
	run wfv rm acme --purge
	[ "$status" -eq 0 ]
	run wfv get acme
	[ "$status" -eq 3 ]
	[ "$(wfv list | sort | tr '\n' ' ')" = "beta gamma " ]
	run tp call changes '{"since":0}'
	echo "$output" | jq -e '[.result.changes[] | select(.tenant == "acme")] |
	    length == 1 and .[0].op == "delete" and .[0].version == 5 and
	    .[0].seq == 7'
	echo "$output" | jq -e '.result.last_seq == 7 and
	    (.result.changes | length) == 3'
	# No tombstone: a new tenant by that name starts at version 1.
	run wfv put acme a_key --json <<<'new'
	echo "$output" | jq -e '.version == 1'
	run wfv rm acme a_key --purge
	[ "$status" -eq 2 ]

	# A deleted tenant can be purged too; an unknown one is not found.
	wfv rm beta
	run wfv rm beta --purge
	[ "$status" -eq 0 ]
	run tp call changes '{"since":0}'
	echo "$output" | jq -e '[.result.changes[] | select(.tenant == "beta")] |
	    length == 1 and .[0].op == "delete"'
	run wfv rm nobody --purge
	[ "$status" -eq 3 ]
	run tp call delete '{"tenant":"gamma","field":"g_key","purge":true}'
	echo "$output" | jq -e '.error.data.kind == "invalid_params"'
	run tp call delete '{"tenant":"gamma","purge":"yes"}'
	echo "$output" | jq -e '.error.data.kind == "invalid_params"'
	[ "$(wfv get gamma g_key)" = y ]
}

# WFVAULTD_TEST_ROTATE_HOLD (tests only) makes a rotation wait between its
# steps while that file exists, so "served while it runs" needs no timing:
# the rotation cannot have finished while the file is there.
@test "other clients are served while a master-key rotation runs" {
	write_conf "master_key_next_file $NEXT"
	export WFVAULTD_TEST_ROTATE_BATCH=50 WFVAULTD_TEST_ROTATE_HOLD=$T/hold
	start_daemon
	load_tenants 1000
	touch "$T/hold"
	bg wfv rotate-master-key >"$T/rot.out" 2>&1
	local rotpid=$BG_PID
	wait_for_line "$LOG" 100 "master key rotation started"

	# On other connections: reads, writes, new and deleted tenants.
	[ "$(wfv get t-7 k)" = v-7 ]
	put_value t-8 k v-8b
	put_value newbie k n
	put_value gone k g
	wfv rm gone
	[ "$(wfv get newbie k)" = n ]
	run wfv rotate-master-key
	[ "$status" -ne 0 ]
	[[ "$output" == *"already running"* ]]
	# ... answered while the rotation's own reply is still due.
	pid_alive "$rotpid"
	[ ! -s "$T/rot.out" ]

	rm -f "$T/hold"
	wait "$rotpid"
	cat "$T/rot.out"
	# Every live tenant: the 1000, newbie (made under the new key).
	grep -q "re-wrapped 1001 tenant data keys" "$T/rot.out"
	grep -q "master key rotated" "$LOG"
	put_value t-8 k v-8
	check_tenants 1000
	[ "$(wfv get newbie k)" = n ]

	# The store is sealed with the next key alone now.
	stop_daemon
	install_next_key
	write_conf
	start_daemon
	check_tenants 1000
	[ "$(wfv get newbie k)" = n ]
}

@test "a daemon killed mid-rotation needs both keys, then finishes it" {
	mkdir -m 700 "$T/backups"
	write_conf "master_key_next_file $NEXT" "backup_dir $T/backups"
	export WFVAULTD_TEST_ROTATE_BATCH=50 WFVAULTD_TEST_ROTATE_HOLD=$T/hold
	start_daemon
	load_tenants 500
	touch "$T/hold"
	printf '%s\n' '{"jsonrpc":"2.0","id":1,"method":"rotate_master_key","params":{}}' |
	    tp fire
	wait_for_line "$LOG" 100 "master key rotation started"
	put_value newbie k n
	# A backup taken now holds data keys under both keys.
	wfv backup mid.mdb
	kill -KILL "$DAEMON_PID"
	wait "$DAEMON_PID" 2>/dev/null || true
	DAEMON_PID=
	rm -f "$T/hold"

	# With the current key alone it refuses, naming what to set.
	write_conf
	run timeout 10 "$WFVAULTD" -c "$CONF"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"master key rotation is under way"* ]]
	[[ "$output" == *"set master_key_next_file"* ]]
	# So does restoring the backup.
	run "$WFVAULTD" -c "$CONF" --restore "$T/backups/mid.mdb"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"set master_key_next_file"* ]]
	[[ "$output" == *"nothing was changed"* ]]
	write_conf "master_key_next_file $NEXT"
	run "$WFVAULTD" -c "$CONF" --restore "$T/backups/mid.mdb"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"taken during a master key rotation"* ]]

	# With both it resumes and finishes on its own.
	: >"$LOG"
	start_daemon
	check_tenants 500
	[ "$(wfv get newbie k)" = n ]
	wait_for_line "$LOG" 100 "master key rotated"
	grep -q "master key rotation resumed" "$LOG"
	check_tenants 500
	stop_daemon
	install_next_key
	write_conf
	start_daemon
	check_tenants 500
	[ "$(wfv get newbie k)" = n ]
}

@test "other clients are served while a tenant key rotation runs" {
	write_conf "keep_versions 5"
	export WFVAULTD_TEST_ROTATE_BATCH=1 WFVAULTD_TEST_ROTATE_HOLD=$T/hold
	start_daemon
	local i
	for i in 1 2 3 4 5; do
		put_value acme a_key "v$i"
	done
	touch "$T/hold"
	bg wfv rotate-key acme >"$T/rot.out" 2>&1
	local rotpid=$BG_PID
	wait_for_line "$LOG" 100 "tenant 'acme': data key rotation started"
	# Its reply waits; another connection reads and writes that tenant
	# (v6 is sealed under the new key at once, v1 pruned).
	[ "$(wfv get acme a_key)" = v5 ]
	[ "$(wfv get acme a_key --version 1)" = v1 ]
	put_value acme a_key v6
	[ "$(wfv get acme a_key)" = v6 ]
	pid_alive "$rotpid"
	[ ! -s "$T/rot.out" ]
	rm -f "$T/hold"
	wait "$rotpid"
	cat "$T/rot.out"
	# v2..v5; v6 was sealed under the new key by its put.
	grep -q "acme: new data key, 4 versions re-sealed" "$T/rot.out"
	for i in 2 3 4 5 6; do
		[ "$(wfv get acme a_key --version $i)" = "v$i" ]
	done
	restart_daemon
	[ "$(wfv get acme a_key --version 2)" = v2 ]
	[ "$(wfv get acme a_key)" = v6 ]

	# Killed in the middle: every version still reads, and asking again
	# finishes it.
	touch "$T/hold"
	: >"$LOG"
	bg wfv rotate-key acme >"$T/rot2.out" 2>&1
	wait_for_line "$LOG" 100 "tenant 'acme': data key rotation started"
	put_value acme a_key v7
	kill -KILL "$DAEMON_PID"
	wait "$DAEMON_PID" 2>/dev/null || true
	DAEMON_PID=
	rm -f "$T/hold"
	start_daemon
	for i in 3 4 5 6 7; do
		[ "$(wfv get acme a_key --version $i)" = "v$i" ]
	done
	run wfv rotate-key acme
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"acme: new data key, 4 versions re-sealed"* ]]
	for i in 3 4 5 6 7; do
		[ "$(wfv get acme a_key --version $i)" = "v$i" ]
	done
}
