#!/usr/bin/env bats
# A tenant's versions (README.md "Versions, history and rollback"): who
# made each kept version and when, which field names it changed (never a
# value), rolling back to one, and the version every write's audit line
# names.

load helpers

ACCOUNT=0123456789abcdef0123456789abcdef
NAMESPACE=fedcba9876543210fedcba9876543210

setup() {
	wfv_setup
	write_conf
	start_daemon
	HD=
}

teardown() {
	# The harness, when the test started one: SIGTERM lets it stop workerd.
	if [ -n "${HD:-}" ] && [ -f "$HD/pid" ]; then
		kill -TERM "$(cat "$HD/pid")" 2>/dev/null || true
		for _ in $(seq 100); do
			kill -0 "$(cat "$HD/pid")" 2>/dev/null || break
			sleep 0.1
		done
		rm -rf "$HD"
	fi
	wfv_teardown
}

# The daemon again, its socket open to other uids with rules $@.
restart_with_rules() {
	stop_daemon
	chmod 0755 "$T"
	write_conf "socket_mode 0666" "$@"
	start_daemon
}

# The audit line of the last successful $1 of tenant acme.
audit_last() {
	jq -c --arg m "$1" 'select(.method == $m and .tenant == "acme" and
	    .outcome == "ok")' "$AUDIT" | tail -n 1
}

@test "history names who, when and which fields changed, never values" {
	require_root
	local s1 s2 s3
	s1=$(random_token)
	s2=$(random_token)
	s3=$(random_token)
	restart_with_rules "allow uid:4242 write,list acme"
	put_value acme a "$s1"
	put_value acme b "$s2"
	printf '%s' "$s3" | wfv_as 4242 4242 put acme a
	wfv rm acme b
	run wfv history acme --json
	[ "$status" -eq 0 ]
	[[ "$output" != *"$s1"* && "$output" != *"$s2"* && "$output" != *"$s3"* ]]
	echo "$output" | jq -e '.tenant == "acme" and .version == 4 and
	    ([.versions[].version] == [4, 3, 2, 1])'
	# The members README.md "JSON output" lists.
	echo "$output" | jq -e '(keys == ["tenant", "version", "versions"]) and
	    (.versions[1] | keys == ["added", "at", "changed", "fields",
	    "integrations", "removed", "uid", "version"])'
	# Who and when.
	echo "$output" | jq -e '[.versions[].uid] == [0, 4242, 0, 0]'
	echo "$output" | jq -e 'all(.versions[];
	    .at | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$"))'
	# What: names only, against the version before; version 1 adds all.
	echo "$output" | jq -e '.versions[0] | .fields == ["a"] and
	    .added == [] and .changed == [] and .removed == ["b"]'
	echo "$output" | jq -e '.versions[1] | .fields == ["a", "b"] and
	    .added == [] and .changed == ["a"] and .removed == []'
	echo "$output" | jq -e '.versions[2] | .added == ["b"] and
	    .changed == [] and .removed == []'
	echo "$output" | jq -e '.versions[3] | .added == ["a"] and
	    .integrations == [] and (has("rollback_of") | not)'
	# The text form: one line a version, the same names, no value.
	run wfv history acme
	[ "$status" -eq 0 ]
	[[ "$output" != *"$s1"* && "$output" != *"$s2"* && "$output" != *"$s3"* ]]
	[ "${#lines[@]}" -eq 5 ]
	[[ "${lines[0]}" == VERSION* ]]
	[[ "${lines[1]}" =~ ^4\ +[0-9T:Z-]+\ +0\ +-b$ ]]
	[[ "${lines[2]}" =~ ^3\ +[0-9T:Z-]+\ +4242\ +~a$ ]]
	[[ "${lines[4]}" =~ ^1\ .*\ \+a$ ]]
	# Who made a version is not part of the config get shows, nor KV's.
	run wfv get acme --json
	echo "$output" | jq -e '.fields | keys == ["a"]'
	[[ "$output" != *@meta* && "$output" != *4242* ]]
	run wfv get acme --version 3 --json
	echo "$output" | jq -e '.fields | keys == ["a", "b"]'
	[ "$(wfv fields acme)" = a ]
	# A missing tenant.
	run wfv history nosuch
	[ "$status" -eq 3 ]
	[[ "$output" == *"no tenant 'nosuch'"* ]]
}

@test "a put that changes nothing still makes no new version" {
	put_value acme a one
	put_value acme a one
	[ "$(wfv get acme --json | jq .version)" = 1 ]
	echo '{"a":"one","b":null}' | wfv put acme --json >/dev/null
	echo '{"a":"one"}' | wfv put acme --json --replace >/dev/null
	[ "$(wfv get acme --json | jq .version)" = 1 ]
	[ "$(wfv history acme --json | jq '.versions | length')" = 1 ]
}

@test "rollback makes a new version equal to the old one" {
	wfv put acme --integrations openai >/dev/null
	echo '{"openai_api_key":"sk-abcdefghijklmnopqrstuvwxyz","region":"eu"}' |
	    wfv put acme --json >/dev/null
	echo '{"openai_api_key":"sk-zyxwvutsrqponmlkjihgfedcba","region":null,"x":"1"}' |
	    wfv put acme --json >/dev/null
	wfv put acme --integrations stripe >/dev/null
	old=$(wfv get acme --version 2 --json | jq -c '{fields, integrations}')
	run wfv rollback acme 2
	[ "$status" -eq 0 ]
	[ "$output" = "acme: version 5 (rollback of 2)" ]
	[ "$(wfv get acme --json | jq -c '{fields, integrations}')" = "$old" ]
	run wfv history acme --json
	echo "$output" | jq -e '.versions[0] | .version == 5 and
	    .rollback_of == 2 and .added == ["region"] and
	    .changed == ["openai_api_key"] and .removed == ["x"] and
	    .integrations == ["openai"]'
	run wfv history acme
	[[ "${lines[1]}" == *"+region ~openai_api_key -x (rollback of 2)" ]]
	# Already there: no new version, as with put.
	run wfv rollback acme 2 --json
	[ "$status" -eq 0 ]
	echo "$output" | jq -e '. == {"tenant":"acme","version":5,"rollback_of":2}'
	run wfv rollback acme 5
	[ "$output" = "acme: version 5 (rollback of 5)" ]
	# The old versions are untouched.
	[ "$(wfv get acme --version 3 --json | jq -c .fields.x)" = '"1"' ]
}

@test "rollback --cas: a version that does not match is a conflict" {
	put_value acme a 1
	put_value acme a 2
	run wfv rollback acme 1 --cas 1
	[ "$status" -eq 5 ]
	[[ "$output" == *"tenant 'acme' is at version 2, expected 1"* ]]
	[ "$(wfv get acme a)" = 2 ]
	run wfv rollback acme 1 --cas 2 --json
	[ "$status" -eq 0 ]
	echo "$output" | jq -e '.version == 3'
	[ "$(wfv get acme a)" = 1 ]
}

@test "a version no longer kept is not found (exit 3), with the reason" {
	stop_daemon
	write_conf "keep_versions 2"
	start_daemon
	for i in 1 2 3 4; do put_value acme a "v$i"; done
	run wfv rollback acme 1
	[ "$status" -eq 3 ]
	[ "$output" = "wfvault: tenant 'acme' has no version 1 (only the last keep_versions are kept)" ]
	run wfv rollback acme 9
	[ "$status" -eq 3 ]
	[[ "$output" == *"has no version 9"* ]]
	run wfv rollback nosuch 1
	[ "$status" -eq 3 ]
	[[ "$output" == *"no tenant 'nosuch'"* ]]
	[ "$(wfv get acme --json | jq .version)" = 4 ]
	# Usage errors: no version 0, a number only.
	run wfv rollback acme 0
	[ "$status" -eq 2 ]
	run wfv rollback acme x1
	[ "$status" -eq 2 ]
	run tp call rollback '{"tenant":"acme","version":0}'
	echo "$output" | jq -e '.error.code == -32602'
	# History lists the kept ones; the oldest has no diff, its names.
	run wfv history acme --json
	echo "$output" | jq -e '[.versions[].version] == [4, 3] and
	    (.versions[1] | has("added") | not) and .versions[1].fields == ["a"]'
	run wfv history acme
	[[ "${lines[2]}" == *" fields: a" ]]
}

@test "history needs list, rollback needs write" {
	require_root
	put_value acme a 1
	put_value acme a 2
	restart_with_rules "allow uid:4242 list acme" "allow uid:4243 write acme" \
	    "allow uid:4244 read acme"
	run wfv_as 4242 4242 history acme --json
	[ "$status" -eq 0 ]
	echo "$output" | jq -e '.version == 2'
	run wfv_as 4242 4242 rollback acme 1
	[ "$status" -eq 4 ]
	[[ "$output" == *"no 'write' permission on tenant 'acme'"* ]]
	run wfv_as 4244 4244 history acme
	[ "$status" -eq 4 ]
	[[ "$output" == *"no 'list' permission on tenant 'acme'"* ]]
	run wfv_as 4243 4243 history acme
	[ "$status" -eq 4 ]
	run wfv_as 4243 4243 rollback acme 1
	[ "$status" -eq 0 ]
	[ "$(wfv get acme a)" = 1 ]
	# A write-only caller learns nothing from it: always a new version.
	run wfv_as 4243 4243 rollback acme 1 --json
	[ "$status" -eq 0 ]
	echo "$output" | jq -e '.version == 4'
	[ "$(wfv history acme --json | jq -c '[.versions[] | .uid]')" = \
	    '[4243,4243,0,0]' ]
}

@test "a rollback to a value today's format refuses is refused, nothing stored" {
	local good=sk-abcdefghijklmnopqrstuvwxyz0123
	mkdir "$T/site"
	# A catalog whose openai format once let a short key through.
	sed 's/"format": "[^"]*"/"format": "^sk-"/' \
	    "$E2E_ROOT/integrations/openai.json" >"$T/site/openai.json"
	stop_daemon
	write_conf "integrations_dir none" "integrations_dir $T/site"
	start_daemon
	wfv put acme --integrations openai >/dev/null
	put_value acme openai_api_key sk-SECRETSHORT
	put_value acme openai_api_key "$good"
	cp "$E2E_ROOT/integrations/openai.json" "$T/site/openai.json"
	kill -HUP "$DAEMON_PID"
	# Bounded poll: the reload is done once the strict format is served.
	local _
	for _ in $(seq 100); do
		wfv integrations --json | jq -e '.integrations[0].fields[0].format |
		    startswith("^sk-[")' >/dev/null && break
		sleep 0.1
	done
	run wfv rollback acme 2
	[ "$status" -eq 2 ]
	[[ "$output" == *"field 'openai_api_key' does not match the format of integration 'openai' (^sk-[A-Za-z0-9_-]{20,}\$); nothing stored"* ]]
	[[ "$output" != *SECRETSHORT* ]]
	[ "$(wfv get acme --json | jq .version)" = 3 ]
	[ "$(wfv get acme openai_api_key)" = "$good" ]
	# Version 1 (no key yet) still is fine.
	run wfv rollback acme 1
	[ "$status" -eq 0 ]
}

@test "every write's audit line names the version it made" {
	put_value acme a 1
	[ "$(audit_last put | jq .version)" = 1 ]
	put_value acme b 2
	[ "$(audit_last put | jq .version)" = 2 ]
	# A put that changes nothing names the version that holds it.
	put_value acme b 2
	[ "$(audit_last put | jq .version)" = 2 ]
	wfv rm acme b >/dev/null
	[ "$(audit_last delete | jq .version)" = 3 ]
	wfv rollback acme 2 >/dev/null
	[ "$(audit_last rollback | jq .version)" = 4 ]
	wfv rm acme </dev/null >/dev/null
	[ "$(audit_last delete | jq .version)" = 5 ]
	wfv rm acme --purge </dev/null >/dev/null
	[ "$(audit_last delete | jq .version)" = 6 ]
	# Reads name none.
	put_value acme a 1
	wfv get acme >/dev/null
	wfv history acme >/dev/null
	[ "$(audit_last get | jq .version)" = null ]
	[ "$(audit_last history | jq .version)" = null ]
}

@test "history and rollback reaching Workers KV through the sync agent" {
	local harness=$E2E_ROOT/tests/worker/harness.mjs word url _
	[ -d "$E2E_ROOT/tests/worker/node_modules" ] || {
		echo "tests/worker/node_modules is missing (make test runs npm ci)" >&2
		return 1
	}
	HD=$(mktemp -d "${TMPDIR:-/tmp}/wfv-harness.XXXXXX")
	mkfifo "$HD/ready"
	node "$harness" --port 0 >"$HD/ready" 2>"$HD/harness.log" 3>&- &
	echo $! >"$HD/pid"
	read -r -t 60 word url <"$HD/ready" || true
	[ "$word" = READY ] || { cat "$HD/harness.log" >&2; return 1; }
	cat "$HD/ready" >/dev/null 3>&- &
	BG_PIDS="$BG_PIDS $!"
	printf 'test-token\n' >"$T/token"
	chmod 0400 "$T/token"
	{
		echo "socket $SOCK"
		echo "target default"
		echo "cf_api_base $url/client/v4"
		echo "cf_account_id $ACCOUNT"
		echo "cf_namespace_id $NAMESPACE"
		echo "cf_api_token_file $T/token"
	} >"$T/sync.conf"

	echo '{"openai_api_key":"sk-one","region":"eu"}' | wfv put acme --json >/dev/null
	echo '{"openai_api_key":"sk-two","region":null}' | wfv put acme --json >/dev/null
	timeout 120 "$E2E_BUILD/wfvault-sync" -c "$T/sync.conf" --once
	[ "$(curl -sS --max-time 30 "$url/tenant/acme" | jq -c .config)" = \
	    '{"openai_api_key":"sk-two"}' ]
	run wfv rollback acme 1
	[ "$status" -eq 0 ]
	timeout 120 "$E2E_BUILD/wfvault-sync" -c "$T/sync.conf" --once
	# The Worker reads version 1's values again, and nothing of @meta.
	[ "$(curl -sS --max-time 30 "$url/tenant/acme" | jq -c .config)" = \
	    '{"openai_api_key":"sk-one","region":"eu"}' ]
	[ "$(curl -sS --max-time 30 -H 'Authorization: Bearer test-token' \
	    "$url/client/v4/accounts/$ACCOUNT/storage/kv/namespaces/$NAMESPACE/metadata/acme" |
	    jq .result.version)" = 3 ]
	run wfv history acme --json
	echo "$output" | jq -e '.versions[0].rollback_of == 1'
}

@test "history tells a caller who may not read nothing about a value it wrote" {
	require_root
	local real guess
	real=$(random_token)
	guess=$(random_token)
	put_value acme a "$real"
	put_value acme b other
	restart_with_rules "allow uid:4242 write,list acme"
	# A guess equal to the stored value and one that differs, written by
	# a caller without read: history must not tell them apart (else a
	# put, a look at history and a rollback confirm a guess of a key).
	printf '%s' "$real" | wfv_as 4242 4242 put acme a
	printf '%s' "$guess" | wfv_as 4242 4242 put acme a
	run wfv_as 4242 4242 history acme --json
	[ "$status" -eq 0 ]
	echo "$output" | jq -e '.versions[0].version == 4 and
	    .versions[0].changed == ["a"] and .versions[1].changed == ["a"]'
	# A rollback by such a caller: every field it stored counts as set.
	wfv_as 4242 4242 rollback acme 3 >/dev/null
	run wfv_as 4242 4242 history acme --json
	echo "$output" | jq -e '.versions[0].changed == ["a", "b"]'
	# A reader's own no-op put still makes no version, and a reader's
	# change is compared by value as before.
	printf 'x' | wfv put acme b
	run wfv history acme --json
	echo "$output" | jq -e '.versions[0].changed == ["b"]'
	[[ "$output" != *blind* ]]
}
