#!/usr/bin/env bats
# Scheduled backups and the standby: systemd/wfvault-backup.sh (what
# wfvault-backup.service runs) against a private daemon -- a backup,
# verified by a scratch restore, then only the oldest of the daemon's own
# scheduled backups beyond KEEP removed -- and the README's standby drill:
# a backup on the primary, shipped, restored and served by a second daemon.

load helpers

setup() {
	wfv_setup
	BACKUPS=$T/backups
	SCRIPT=$E2E_ROOT/systemd/wfvault-backup.sh
	export WFVAULT_BACKUP_CLI=$WFVAULT WFVAULT_BACKUP_DAEMON=$WFVAULTD
	export WFVAULT_SOCKET=$SOCK
}

teardown() {
	if [ -n "${PRIMARY_PID:-}" ]; then
		DAEMON_PID=$PRIMARY_PID
		PRIMARY_PID=
		stop_daemon || true
	fi
	wfv_teardown
}

# Runs the backup script with KEEP $1 against the private daemon.
scheduled_backup() {
	run env TMPDIR="$T" "$SCRIPT" -c "$CONF" -k "$1"
	echo "$output"
}

# The daemon's own scheduled backups in $BACKUPS, oldest first.
made() {
	find "$BACKUPS" -maxdepth 1 -name 'wfvault-*.mdb' -printf '%f\n' | sort
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

@test "scheduled backups: N+2 backups leave the newest N, verified, and nothing foreign" {
	write_conf "backup_dir $BACKUPS"
	start_daemon
	put_value acme openai_api_key sk-one
	mkdir -p "$BACKUPS"
	# Not the daemon's scheduled backups: a named one, look-alikes, a
	# link, another user's file if we can make one, and a cut-short copy.
	wfv backup before-upgrade.mdb 2>/dev/null
	echo foreign >"$BACKUPS/notes.txt"
	echo foreign >"$BACKUPS/wfvault-20000101T000000Z.mdb.txt"
	echo foreign >"$BACKUPS/wfvault-2000-01-01.mdb"
	echo foreign >"$BACKUPS/wfvault-20000101T000000Z_x.mdb"
	echo foreign >"$BACKUPS/.wfvault-20000101T000000Z.mdb.partial"
	ln -s "$BACKUPS/notes.txt" "$BACKUPS/wfvault-20000101T000001Z.mdb"
	mkdir "$BACKUPS/wfvault-20000101T000002Z.mdb"
	if [ "$(id -u)" -eq 0 ]; then
		echo foreign >"$BACKUPS/wfvault-20000101T000003Z.mdb"
		chown 65534 "$BACKUPS/wfvault-20000101T000003Z.mdb"
	fi
	(cd "$BACKUPS" && ls -A | sort) >"$T/foreign"
	# The foreign ones made() lists.
	mapfile -t foreign_made < <(made)

	local i f
	for i in 1 2 3 4 5; do
		put_value acme n "$i"
		scheduled_backup 3
		[ "$status" -eq 0 ]
		[[ "$output" == *"backup written to $BACKUPS/wfvault-"* ]]
		[[ "$output" == *"verified $BACKUPS/wfvault-"*": 1 tenants, "* ]]
		# Which backup is which, by content (names may be reused).
		f=$(echo "$output" | sed -n 's/^backup written to //p')
		echo "$(sha256sum "$f" | cut -d' ' -f1) $i" >>"$T/sums"
		f5=$f
		# Kept: the newest 3 at most, plus the foreign files.
		[ "$(made | wc -l)" -eq $(((i < 3 ? i : 3) + ${#foreign_made[@]})) ]
	done
	# N+2 = 5 made: the backups of runs 3, 4 and 5 are what is left.
	for f in $(made); do
		[ -f "$BACKUPS/$f" ] && [ ! -L "$BACKUPS/$f" ] || continue
		grep -F "$(sha256sum "$BACKUPS/$f" | cut -d' ' -f1)" "$T/sums" |
		    cut -d' ' -f2
	done | sort -n | tr '\n' ' ' >"$T/kept"
	[ "$(cat "$T/kept")" = "3 4 5 " ]
	# The foreign files are all still there, unchanged.
	(cd "$BACKUPS" && ls -A | sort) >"$T/after"
	comm -23 "$T/foreign" "$T/after" >"$T/missing"
	[ ! -s "$T/missing" ] || { cat "$T/missing" >&2; false; }
	[ "$(cat "$BACKUPS/notes.txt")" = foreign ]
	[ -L "$BACKUPS/wfvault-20000101T000001Z.mdb" ]
	# The newest kept backup restores with the newest value.
	stop_daemon
	"$WFVAULTD" -c "$CONF" --restore "$f5" >/dev/null
	start_daemon
	[ "$(wfv get acme n)" = 5 ]
	# No scratch directory left behind.
	[ -z "$(find "$T" -maxdepth 1 -name 'wfvault-backup.*')" ]
}

@test "a backup that fails verification stops the pruning and is kept" {
	write_conf "backup_dir $BACKUPS"
	start_daemon
	put_value acme zz_marker_field one
	put_value beta b_key two
	scheduled_backup 1
	[ "$status" -eq 0 ]
	scheduled_backup 1
	[ "$status" -eq 0 ]
	[ "$(made | wc -l)" -eq 1 ]
	good=$(made)

	# The store goes bad (acme's wrapped key: the byte before its field
	# names); the daemon still serves and still copies it.
	stop_daemon
	# Every copy of the record in the file: LMDB keeps old pages too.
	offs=$(grep -obUa zz_marker_field "$DATA/data.mdb" | cut -d: -f1)
	[ -n "$offs" ]
	for off in $offs; do
		flip_byte "$DATA/data.mdb" $((off - 1))
	done
	start_daemon
	scheduled_backup 1
	[ "$status" -eq 1 ]
	[[ "$output" == *"failed verification"* ]]
	[[ "$output" == *"tenant 'acme'"* ]]
	[[ "$output" == *"no backup was removed"* ]]
	# The good one is still there, next to the bad one.
	[ "$(made | wc -l)" -eq 2 ]
	made | grep -qxF "$good"

	# A key that does not open the backups: nothing is removed either.
	"$WFVAULTD" --gen-key "$T/other.key" >/dev/null
	sed "s|^master_key_file .*|master_key_file $T/other.key|" "$CONF" \
	    >"$T/other.conf"
	run env TMPDIR="$T" "$SCRIPT" -c "$T/other.conf" -k 1
	[ "$status" -eq 1 ]
	[[ "$output" == *"another master key"* ]]
	[ "$(made | wc -l)" -eq 3 ]
	made | grep -qxF "$good"
}

@test "the backup script refuses a bad KEEP and reports an unreachable daemon" {
	write_conf "backup_dir $BACKUPS"
	run "$SCRIPT" -c "$CONF" -k two
	[ "$status" -eq 1 ]
	[[ "$output" == *"KEEP must be a number"* ]]
	run "$SCRIPT" -c "$CONF" extra
	[ "$status" -eq 2 ]
	# No daemon: the client's reason, and nothing made or removed.
	scheduled_backup 3
	[ "$status" -eq 1 ]
	[[ "$output" == *"cannot connect"* ]]
	[[ "$output" == *"the backup failed"* ]]
	[ ! -e "$BACKUPS" ] || [ -z "$(ls -A "$BACKUPS")" ]
}

@test "the standby drill: ship the newest backup, restore it on a second data_dir, serve it" {
	# The primary, with the timer's backup.
	write_conf "backup_dir $BACKUPS"
	start_daemon
	put_value acme openai_api_key sk-primary
	printf '{"region":"eu","n":7}' | wfv put beta --json >/dev/null
	scheduled_backup 7
	[ "$status" -eq 0 ]
	put_value acme openai_api_key sk-after-the-backup
	PRIMARY_PID=$DAEMON_PID
	DAEMON_PID=

	# The standby: its own directories and config, the same master key
	# (copied here as the standby's own key file, never with the backups).
	S=$T/standby
	mkdir -m 0700 "$S" "$S/incoming" "$S/data"
	install -m 0400 "$KEY" "$S/master.key"
	{
		echo "socket $S/s"
		echo "data_dir $S/data"
		echo "master_key_file $S/master.key"
		echo "allow uid:$(id -u) admin *"
	} >"$S/wfvaultd.conf"
	# Ship: what the standby's timer copies (rsync from backup_dir).
	cp -p "$BACKUPS"/wfvault-*.mdb "$S/incoming/"
	backup=$(ls -t "$S"/incoming/wfvault-*.mdb | head -n 1)
	run "$WFVAULTD" -c "$S/wfvaultd.conf" --restore "$backup"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"verified 2 tenants"* ]]

	# Switch over, the primary lost: the standby serves the last backup
	# (the change made after it is lost: the recovery point).
	CONF=$S/wfvaultd.conf SOCK=$S/s start_daemon
	[ "$(SOCK=$S/s wfv get acme openai_api_key)" = sk-primary ]
	SOCK=$S/s wfv get beta | jq -e '. == {"region":"eu","n":7}'
	stop_daemon

	# Switch over, the primary reachable: stopped, its store itself is
	# shipped and restored (verified the same way), so nothing is lost.
	DAEMON_PID=$PRIMARY_PID
	PRIMARY_PID=
	stop_daemon
	cp "$DATA/data.mdb" "$S/incoming/primary-data.mdb"
	run "$WFVAULTD" -c "$S/wfvaultd.conf" --restore "$S/incoming/primary-data.mdb"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"verified 2 tenants"* ]]
	CONF=$S/wfvaultd.conf SOCK=$S/s start_daemon
	[ "$(SOCK=$S/s wfv get acme openai_api_key)" = sk-after-the-backup ]
	# It takes writes.
	printf 'sk-standby\n' | SOCK=$S/s wfv put acme openai_api_key
	[ "$(SOCK=$S/s wfv get acme openai_api_key)" = sk-standby ]
}
