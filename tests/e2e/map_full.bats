#!/usr/bin/env bats
# A full LMDB map (README.md, map_size and "Security model"): puts fail
# with a clear "unavailable" error, reads go on, nothing acknowledged is
# lost, and a bigger map_size after a restart makes room again.

load helpers

setup() {
	wfv_setup
	write_conf "map_size 1M" "keep_versions 1"
	start_daemon
}

teardown() {
	wfv_teardown
}

# Checks that every tenant in $T/acked still holds the value in its file.
assert_all_acked() {
	local t n=0
	while read -r t; do
		if [ "$(wfv get "$t" blob)" != "$(cat "$T/vals/$t")" ]; then
			echo "tenant $t lost its acknowledged value" >&2
			return 1
		fi
		n=$((n + 1))
	done <"$T/acked"
	[ "$n" -gt 0 ]
}

@test "a full map refuses writes clearly, keeps reads, grows after restart" {
	local i t rc=0 out
	mkdir "$T/vals"
	: >"$T/acked"
	# 16000 bytes a tenant: 1M holds a few dozen of them at most.
	for i in $(seq 1 200); do
		t=tenant-$i
		head -c 12000 /dev/urandom | base64 -w0 >"$T/vals/$t"
		out=$(wfv put "$t" blob --file "$T/vals/$t" 2>&1) && rc=0 ||
		    rc=$?
		if [ "$rc" -ne 0 ]; then
			break
		fi
		echo "$t" >>"$T/acked"
	done
	echo "put $t exited $rc: $out"
	[ "$rc" -eq 1 ]
	[[ "$out" == *full* ]]
	[[ "$out" == *map_size* ]]
	[ "$(wc -l <"$T/acked")" -ge 10 ]
	pid_alive "$DAEMON_PID"

	# Reads still work, and the daemon stays full but sane.
	assert_all_acked
	run wfv list
	[ "$status" -eq 0 ]
	run wfv put "$t" blob --file "$T/vals/$t"
	[ "$status" -eq 1 ]
	run tp call status
	[ "$status" -eq 0 ]

	# A bigger map after a restart makes room again.
	# Not under run: the daemon is a child of this shell only.
	stop_daemon
	write_conf "map_size 8M" "keep_versions 1"
	start_daemon
	assert_all_acked
	for i in $(seq 201 220); do
		t=tenant-$i
		head -c 12000 /dev/urandom | base64 -w0 >"$T/vals/$t"
		wfv put "$t" blob --file "$T/vals/$t"
		echo "$t" >>"$T/acked"
	done
	assert_all_acked
}

@test "a full map still allows deleting to make room" {
	local i rc=0
	for i in $(seq 1 200); do
		head -c 12000 /dev/urandom | base64 -w0 >"$T/v"
		wfv put "t-$i" blob --file "$T/v" >/dev/null 2>&1 || {
			rc=$?
			break
		}
	done
	[ "$rc" -eq 1 ]
	# Whatever rm does while full, it answers and the daemon lives.
	run wfv rm t-1
	[ "$status" -eq 0 ] || [ "$status" -eq 1 ]
	pid_alive "$DAEMON_PID"
	run wfv get t-2 blob
	[ "$status" -eq 0 ]
}
