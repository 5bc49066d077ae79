#!/usr/bin/env bats
# The README's operations recipes, run as written: only the live paths
# (/etc/wfvault, /var/backups/wfvault) are swapped for this test's own.

load helpers

setup() {
	wfv_setup
	mkdir -m 0700 "$T/etc" "$T/etc/wfvault"
}

teardown() {
	wfv_teardown
}

# Prints the first ```sh block after the README line that starts with $1.
readme_block() {
	awk -v start="$1" '
	index($0, start) == 1 { seen = 1; next }
	seen && !inside && /^```sh$/ { inside = 1; next }
	inside && /^```$/ { exit }
	inside { print }' "$E2E_ROOT/README.md"
}

# The block after $1 with the live paths swapped for the test's.
recipe() {
	readme_block "$1" | sed -e "s|/etc/wfvault/|$T/etc/wfvault/|g" \
	    -e "s|/var/backups/wfvault|$T/backups|g"
}

@test "the backup drill works with the shipped configuration" {
	# A vault set up as shipped: the example config as it is (the key as
	# the credential master-key, backup_dir set), only its paths moved.
	CONF=$T/etc/wfvault/wfvaultd.conf
	sed "s|/var/backups/wfvault|$T/backups|" \
	    "$E2E_ROOT/config/wfvaultd.conf.example" >"$CONF"
	grep -Eq "^backup_dir[[:space:]]+$T/backups\$" "$CONF"
	grep -Eq '^master_key_credential[[:space:]]+master-key$' "$CONF"
	printf 'socket %s\ndata_dir %s\n' "$SOCK" "$DATA" >>"$CONF"
	mkdir -m 0700 "$T/creds"
	cp "$KEY" "$T/creds/master-key"
	CREDENTIALS_DIRECTORY=$T/creds start_daemon
	put_value acme openai_api_key sk-drill
	wfv backup >/dev/null
	# The offline copy of the key is $KEY.
	recipe '**Drill**' | sed -e "s|/path/to/offline/master.key|$KEY|" \
	    -e 's|SOME_TENANT|acme openai_api_key|' >"$T/drill.sh"
	run env PATH="$E2E_BUILD:$PATH" bash -e "$T/drill.sh"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"verified 1 tenants"* ]]
	[[ "${lines[${#lines[@]} - 1]}" == sk-drill ]] ||
	    [[ "$output" == *$'\n'sk-drill$'\n'* ]]
	# The live vault was not touched.
	[ "$(wfv get acme openai_api_key)" = sk-drill ]
}

@test "the master-key rotation (key in a file) keeps the old key for older backups" {
	CONF=$T/etc/wfvault/wfvaultd.conf
	cp "$KEY" "$T/etc/wfvault/master.key"
	cp "$KEY" "$T/old.key"
	KEY=$T/etc/wfvault/master.key
	write_conf "backup_dir $T/backups"
	start_daemon
	put_value acme openai_api_key sk-before
	wfv backup before.mdb >/dev/null
	# No wfvault user here: the files already belong to the daemon's.
	recipe 'With the key in a file' |
	    sed 's/^chown wfvault: /chown "$(id -u)" /' >"$T/rotate.sh"
	run env PATH="$E2E_BUILD:$PATH" WFVAULT_SOCKET="$SOCK" \
	    bash -e "$T/rotate.sh"
	echo "$output"
	[ "$status" -eq 0 ]
	# The old key is kept beside the new one, which is now the key.
	local old
	old=$(ls "$T/etc/wfvault/"master.key.before-*)
	cmp "$old" "$T/old.key"
	refute cmp -s "$KEY" "$T/old.key"
	refute grep -q master_key_next "$CONF"
	restart_daemon
	[ "$(wfv get acme openai_api_key)" = sk-before ]
	stop_daemon
	# A backup made before the rotation opens with the kept key.
	mkdir -m 0700 "$T/scratch"
	sed -e "s|^master_key_file .*|master_key_file $old|" \
	    -e "s|^data_dir .*|data_dir $T/scratch/data|" \
	    -e "s|^socket .*|socket $T/scratch/s|" "$CONF" >"$T/scratch/c"
	run "$WFVAULTD" -c "$T/scratch/c" --restore "$T/backups/before.mdb"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"verified 1 tenants"* ]]
}
