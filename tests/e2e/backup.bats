#!/usr/bin/env bats
# Backups and restores: `wfvault backup` writes a consistent hot copy into
# the daemon's backup_dir while clients go on writing, `wfvaultd --restore`
# verifies every record before it installs one, and refuses a tampered
# backup, a backup sealed with another key, or a running daemon.

load helpers

setup() {
	wfv_setup
	BACKUPS=$T/backups
}

teardown() {
	wfv_teardown
}

# Flips the lowest bit of the byte at offset $2 of file $1.
flip_byte() {
	local b
	b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
	[ -n "$b" ]
	# shellcheck disable=SC2059
	printf "$(printf '\\%03o' $((b ^ 1)))" |
	    dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

@test "backup is refused without backup_dir" {
	write_conf
	start_daemon
	put_value acme a_key one
	run wfv backup
	[ "$status" -eq 1 ]
	[[ "$output" == *"set backup_dir in the configuration"* ]]
	run tp call backup '{}'
	[ "$status" -eq 1 ]
	echo "$output" | jq -e '.error.data.kind == "unavailable"'
}

@test "backup names are plain file names in backup_dir, never paths" {
	write_conf "backup_dir $BACKUPS"
	start_daemon
	put_value acme a_key one
	# The CLI refuses them itself...
	run wfv backup ../escape.mdb
	[ "$status" -eq 2 ]
	[[ "$output" == *"invalid backup name"* ]]
	run wfv backup "$T/escape.mdb"
	[ "$status" -eq 2 ]
	# ... and so does the daemon, whatever a client sends.
	local name
	for name in ../escape.mdb "$T/escape.mdb" a/b .hidden '' ..; do
		run tp call backup "$(jq -nc --arg n "$name" '{name: $n}')"
		[ "$status" -eq 1 ]
		echo "$output" | jq -e '.error.data.kind == "invalid_params"'
	done
	run tp call backup '{"name":7}'
	echo "$output" | jq -e '.error.data.kind == "invalid_params"'
	run tp call backup '{"path":"/tmp/x"}'
	echo "$output" | jq -e '.error.data.kind == "invalid_params"'
	[ ! -e "$T/escape.mdb" ]
	[ -z "$(ls -A "$BACKUPS" 2>/dev/null)" ]
}

@test "backup writes a new 0600 file, warns about the key, never overwrites" {
	write_conf "backup_dir $BACKUPS"
	start_daemon
	local secret
	secret=$(random_token)
	put_value acme a_key "$secret"
	wfv backup >"$T/out" 2>"$T/err"
	local path
	path=$(cat "$T/out")
	[[ "$path" == "$BACKUPS"/wfvault-*Z.mdb ]]
	[ -f "$path" ]
	[ "$(stat -c %a "$path")" = 600 ]
	# A reminder, not an error: "wfvault:" starts errors only.
	grep -qx "note: this backup is useless without the master key; keep a copy of the key, separately from the backup" "$T/err"
	refute grep -q '^wfvault:' "$T/err"
	# No value in the clear in it.
	refute grep -q "$secret" "$path"

	run wfv backup nightly.mdb
	[ "$status" -eq 0 ]
	[[ "$output" == *"$BACKUPS/nightly.mdb"* ]]
	cp "$BACKUPS/nightly.mdb" "$T/before"
	run wfv backup nightly.mdb
	[ "$status" -eq 5 ]
	[[ "$output" == *"already holds nightly.mdb"* ]]
	cmp "$T/before" "$BACKUPS/nightly.mdb"
	# A link planted in backup_dir is not followed.
	ln -s "$T/victim" "$BACKUPS/planted.mdb"
	run wfv backup planted.mdb
	[ "$status" -ne 0 ]
	[ ! -e "$T/victim" ]
	wfv backup j.mdb --json >"$T/json" 2>/dev/null
	jq -e --arg p "$BACKUPS/j.mdb" '.path == $p and .bytes > 0' "$T/json"
	grep -q '"method":"backup"' "$AUDIT"
}

@test "default-named backups in the same second get different names" {
	write_conf "backup_dir $BACKUPS"
	start_daemon
	put_value acme a_key one
	# Back to back: both succeed, under different names.
	local a b
	a=$(wfv backup 2>/dev/null)
	b=$(wfv backup 2>/dev/null)
	[ -f "$a" ] && [ -f "$b" ] && [ "$a" != "$b" ]
	# The same second for certain: every second of the next minute is
	# already taken (one as a copy cut short), so the name gets a suffix.
	local i stamp
	for i in $(seq 0 60); do
		stamp=$(date -u -d "@$(($(date +%s) + i))" +%Y%m%dT%H%M%SZ)
		: >"$BACKUPS/wfvault-$stamp.mdb"
		: >"$BACKUPS/.wfvault-${stamp}_2.mdb.partial"
	done
	local c
	c=$(wfv backup 2>/dev/null)
	[[ "$c" == "$BACKUPS"/wfvault-*Z_3.mdb ]]
	[ -s "$c" ]
	# A name the client chose is still never changed: taken is a conflict.
	run wfv backup "$(basename "$a")"
	[ "$status" -eq 5 ]
}

@test "a backup while clients keep writing restores to a consistent state" {
	write_conf "backup_dir $BACKUPS"
	start_daemon
	load_tenants 3000
	# A writer that keeps putting w.n = I, so w is at version I.
	cat >"$T/writer.sh" <<-EOF
	i=1
	while [ \$i -le 300 ]; do
		printf '%s' "\$i" | "$WFVAULT" -s "$SOCK" put w n || exit 1
		i=\$((i + 1))
	done
	EOF
	bg bash "$T/writer.sh"
	local writer=$BG_PID _
	for _ in $(seq 100); do
		wfv get w n >/dev/null 2>&1 && break
		sleep 0.05
	done
	run wfv backup during.mdb
	[ "$status" -eq 0 ]
	# The daemon answered others while it copied, and still does.
	run wfv get t-17 k
	[ "$output" = "v-17" ]
	wait "$writer"
	BG_PIDS=
	[ "$(wfv get w n)" = 300 ]

	stop_daemon
	run "$WFVAULTD" -c "$CONF" --restore "$BACKUPS/during.mdb"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"verified 3001 tenants, "*" versions"* ]]
	start_daemon
	check_tenants 3000
	# w as it was at one commit: its value is its version.
	run wfv get w --json
	echo "$output" | jq -e '(.fields.n | tonumber) == .version and
	    .version >= 1 and .version <= 300'
}

@test "restore round trip: values intact, the previous store kept" {
	write_conf "backup_dir $BACKUPS" "keep_versions 3"
	start_daemon
	put_value acme a_key one
	put_value acme a_key two
	printf '{"b_key":"x","n":5}' | wfv put beta --json
	put_value gone g_key soon
	wfv rm gone
	wfv backup saved.mdb 2>/dev/null
	# Everything changes after the backup.
	put_value acme a_key three
	wfv rm beta
	put_value later l_key new
	stop_daemon
	local before
	before=$(sha256sum "$DATA/data.mdb" | cut -d' ' -f1)

	run "$WFVAULTD" -c "$CONF" --restore "$BACKUPS/saved.mdb"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"verified 2 tenants, 3 versions"* ]]
	[[ "$output" == *"restored $BACKUPS/saved.mdb into $DATA/data.mdb"* ]]
	[ "$(stat -c %a "$DATA/data.mdb")" = 600 ]
	local old
	old=$(ls "$DATA"/data.mdb.before-restore-*)
	[ "$(sha256sum "$old" | cut -d' ' -f1)" = "$before" ]

	start_daemon
	[ "$(wfv get acme a_key)" = two ]
	[ "$(wfv get acme a_key --version 1)" = one ]
	wfv get beta | jq -e '. == {"b_key":"x","n":5}'
	run wfv get gone
	[ "$status" -eq 3 ]
	run wfv get later
	[ "$status" -eq 3 ]
	[ "$(wfv list | sort | tr '\n' ' ')" = "acme beta " ]
	# The feed is the backup's too, and goes on from there.
	run tp call changes '{"since":0}'
	echo "$output" | jq -e '.result.last_seq == 5'
	put_value acme a_key four
	[ "$(wfv get acme a_key)" = four ]
}

@test "restore refuses a tampered backup, naming the tenant, and changes nothing" {
	write_conf "backup_dir $BACKUPS"
	start_daemon
	put_value acme zz_marker_field one
	put_value beta b_key two
	wfv backup good.mdb 2>/dev/null
	stop_daemon
	local before off
	before=$(sha256sum "$DATA/data.mdb" | cut -d' ' -f1)

	# The byte before a field name is the last of acme's wrapped key.
	cp "$BACKUPS/good.mdb" "$T/bad.mdb"
	off=$(grep -obUa zz_marker_field "$T/bad.mdb" | head -n1 | cut -d: -f1)
	[ -n "$off" ]
	flip_byte "$T/bad.mdb" $((off - 1))
	refute cmp -s "$BACKUPS/good.mdb" "$T/bad.mdb"

	run "$WFVAULTD" -c "$CONF" --restore "$T/bad.mdb"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"failed verification"* ]]
	[[ "$output" == *"tenant 'acme'"* ]]
	[[ "$output" == *"nothing was changed"* ]]
	[ "$(sha256sum "$DATA/data.mdb" | cut -d' ' -f1)" = "$before" ]
	[ -z "$(ls "$DATA" | grep -v -x -e data.mdb -e lock.mdb)" ]

	# Not a store at all, and a backup of another vault.
	run "$WFVAULTD" -c "$CONF" --restore "$CONF"
	[ "$status" -eq 1 ]
	"$WFVAULTD" --gen-key "$T/other.key" >/dev/null
	sed "s|^master_key_file .*|master_key_file $T/other.key|" "$CONF" \
	    >"$T/other.conf"
	run "$WFVAULTD" -c "$T/other.conf" --restore "$BACKUPS/good.mdb"
	[ "$status" -eq 1 ]
	[[ "$output" == *"another master key"* ]]
	[ "$(sha256sum "$DATA/data.mdb" | cut -d' ' -f1)" = "$before" ]

	# The good one still restores.
	run "$WFVAULTD" -c "$CONF" --restore "$BACKUPS/good.mdb"
	[ "$status" -eq 0 ]
	start_daemon
	[ "$(wfv get acme zz_marker_field)" = one ]
}

@test "restore refuses a backup whose field names were altered" {
	write_conf "backup_dir $BACKUPS"
	start_daemon
	put_value acme zz_marker_field one
	put_value acme a_key two
	wfv backup good.mdb 2>/dev/null
	stop_daemon
	local before off
	before=$(sha256sum "$DATA/data.mdb" | cut -d' ' -f1)

	# zz_marker_field becomes zz_marker_fiele: still a sorted, valid
	# name, but not the one the sealed config holds.
	cp "$BACKUPS/good.mdb" "$T/bad.mdb"
	off=$(grep -obUa zz_marker_field "$T/bad.mdb" | head -n1 | cut -d: -f1)
	[ -n "$off" ]
	[ "$(grep -cobUa zz_marker_field "$T/bad.mdb")" -eq 1 ]
	flip_byte "$T/bad.mdb" $((off + 14))
	grep -qa zz_marker_fiele "$T/bad.mdb"

	run "$WFVAULTD" -c "$CONF" --restore "$T/bad.mdb"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"failed verification"* ]]
	[[ "$output" == *"tenant 'acme'"* ]]
	[[ "$output" == *"field names"* ]]
	[ "$(sha256sum "$DATA/data.mdb" | cut -d' ' -f1)" = "$before" ]
}

@test "restore refuses while wfvaultd runs, and onto a fresh data_dir works" {
	write_conf "backup_dir $BACKUPS"
	start_daemon
	put_value acme a_key one
	wfv backup b.mdb 2>/dev/null
	run "$WFVAULTD" -c "$CONF" --restore "$BACKUPS/b.mdb"
	[ "$status" -eq 1 ]
	[[ "$output" == *"wfvaultd is running on $SOCK"* ]]
	# Another daemon's socket, same store: the lock tells.
	sed "s|^socket .*|socket $T/other.sock|" "$CONF" >"$T/other.conf"
	run "$WFVAULTD" -c "$T/other.conf" --restore "$BACKUPS/b.mdb"
	[ "$status" -eq 1 ]
	[[ "$output" == *"has the store in $DATA open"* ]]
	[ "$(wfv get acme a_key)" = one ]
	stop_daemon

	# A new machine: no data_dir yet.
	rm -rf "$DATA"
	run "$WFVAULTD" -c "$CONF" --restore "$BACKUPS/b.mdb"
	[ "$status" -eq 0 ]
	[ "$(stat -c %a "$DATA")" = 700 ]
	start_daemon
	[ "$(wfv get acme a_key)" = one ]
}

@test "restore refuses a backup cut short, without crashing, and changes nothing" {
	write_conf "backup_dir $BACKUPS"
	start_daemon
	load_tenants 3000
	wfv backup full.mdb 2>/dev/null
	stop_daemon
	local before size
	before=$(sha256sum "$DATA/data.mdb" | cut -d' ' -f1)
	size=$(stat -c %s "$BACKUPS/full.mdb")
	head -c $((size / 2)) "$BACKUPS/full.mdb" >"$T/short.mdb"
	run "$WFVAULTD" -c "$CONF" --restore "$T/short.mdb"
	echo "$output"
	# Refused (1), not killed by SIGBUS (135).
	[ "$status" -eq 1 ]
	[[ "$output" == *truncated* ]]
	[ "$(sha256sum "$DATA/data.mdb" | cut -d' ' -f1)" = "$before" ]
	[ -z "$(ls "$DATA" | grep -v -x -e data.mdb -e lock.mdb)" ]
	# An empty file (a copy that never started) says so too.
	: >"$T/empty.mdb"
	run "$WFVAULTD" -c "$CONF" --restore "$T/empty.mdb"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"0 bytes: too short to hold a store"* ]]
	[[ "$output" != *"Bad file descriptor"* ]]
	[ "$(sha256sum "$DATA/data.mdb" | cut -d' ' -f1)" = "$before" ]
}

@test "a backup under way at SIGTERM is finished and answered" {
	write_conf "backup_dir $BACKUPS"
	start_daemon
	# About 20 MB of store, so the copy takes a while.
	local pad cli _
	pad=$(head -c 1000 /dev/zero | tr '\0' p)
	awk -v pad="$pad" 'BEGIN { for (i = 1; i <= 20000; i++) printf \
	    "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"put\",\"params\":" \
	    "{\"tenant\":\"big-%d\",\"fields\":{\"k\":\"%s\"}}}\n", i, i, pad }' |
	    tp send 60000 | grep -c '"result"' | grep -qx 20000
	wfv backup slow.mdb 2>"$T/backup.err" >"$T/backup.out" &
	cli=$!
	# Stop the daemon while the copy runs and the client waits for it.
	for _ in $(seq 2000); do
		grep -q 'backup to .* started' "$LOG" && break
		sleep 0.005
	done
	kill -TERM "$DAEMON_PID"
	wait "$cli"
	grep -q slow.mdb "$T/backup.out"
	[ -f "$BACKUPS/slow.mdb" ]
	[ -z "$(ls -A "$BACKUPS" | grep partial)" ]
	# It stopped by itself, cleanly, once the backup was answered.
	local pid=$DAEMON_PID
	DAEMON_PID=
	wait "$pid"
	run "$WFVAULTD" -c "$CONF" --restore "$BACKUPS/slow.mdb"
	[ "$status" -eq 0 ]
	[[ "$output" == *"verified 20000 tenants"* ]]
}

@test "two restores in the same second both keep the store they replace" {
	write_conf "backup_dir $BACKUPS"
	start_daemon
	put_value acme k one
	wfv backup b1.mdb 2>/dev/null
	stop_daemon
	"$WFVAULTD" -c "$CONF" --restore "$BACKUPS/b1.mdb" >/dev/null
	"$WFVAULTD" -c "$CONF" --restore "$BACKUPS/b1.mdb" >/dev/null
	[ "$(ls "$DATA" | grep -c before-restore)" -eq 2 ]
	start_daemon
	[ "$(wfv get acme k)" = one ]
}
