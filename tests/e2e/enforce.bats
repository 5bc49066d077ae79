#!/usr/bin/env bats
# Format enforcement (README.md "Integrations catalog"): a tenant records
# the integrations it uses, versioned with its fields, and every write to
# it is checked against their formats whatever the client; a malformed
# value is refused naming the field and the format, never the value, and
# nothing is stored.

load helpers

GOOD=sk-abcdefghijklmnopqrstuvwxyz0123
BAD=sk-SECRETVALUE
FORMAT='^sk-[A-Za-z0-9_-]{20,}$'

setup() {
	wfv_setup
	write_conf
	start_daemon
}

teardown() {
	wfv_teardown
}

# The raw protocol: tp_put PARAMS-JSON.
tp_put() {
	tp call put "$1"
}

# The refusal of a malformed openai_api_key: names field and format,
# not the value.
assert_refused() {
	[ "$status" -ne 0 ] || return 1
	[[ "$output" == *"field 'openai_api_key' does not match the format of integration 'openai' ($FORMAT)"* ]] || return 1
	[[ "$output" != *SECRETVALUE* ]] || return 1
}

@test "integrations are recorded, shown by get beside fields, per version" {
	run tp_put '{"tenant":"acme","fields":{"region":"eu"},"integrations":["openai"]}'
	[ "$status" -eq 0 ]
	echo "$output" | jq -e '.result.version == 1'
	run wfv get acme --json
	[ "$status" -eq 0 ]
	echo "$output" | jq -e '.integrations == ["openai"]'
	# fields is what the sync agent pushes: no integrations in it.
	echo "$output" | jq -e '.fields == {"region":"eu"}'
	run wfv get acme
	[ "$status" -eq 0 ]
	[[ "$output" != *integrations* ]]
	# Adding is a union, kept sorted; an id given twice counts once.
	run tp_put '{"tenant":"acme","fields":{},"integrations":["stripe","openai","stripe"]}'
	[ "$status" -eq 0 ]
	echo "$output" | jq -e '.result.version == 2'
	[ "$(wfv get acme --json | jq -c .integrations)" = '["openai","stripe"]' ]
	# The same list again changes nothing: no new version.
	run tp_put '{"tenant":"acme","fields":{},"integrations":["openai"]}'
	echo "$output" | jq -e '.result.version == 2'
	# A replace sets the list; without integrations it keeps it.
	run tp_put '{"tenant":"acme","fields":{"region":"us"},"replace":true,"integrations":["stripe"]}'
	echo "$output" | jq -e '.result.version == 3'
	run tp_put '{"tenant":"acme","fields":{"region":"ap"},"replace":true}'
	echo "$output" | jq -e '.result.version == 4'
	[ "$(wfv get acme --json | jq -c .integrations)" = '["stripe"]' ]
	# Each version keeps its own list.
	[ "$(wfv get acme --version 1 --json | jq -c .integrations)" = '["openai"]' ]
	[ "$(wfv get acme --version 2 --json | jq -c .integrations)" = '["openai","stripe"]' ]
	# The record lists field names only; the store checks out.
	run wfv list --json
	[[ "$output" != *integrations* ]]
	restart_daemon
	[ "$(wfv get acme --version 3 --json | jq -c .integrations)" = '["stripe"]' ]
}

@test "an unknown integration is refused, naming it; nothing stored" {
	run tp_put '{"tenant":"acme","fields":{"a":"1"},"integrations":["openai","nosuch","other"]}'
	echo "$output" | jq -e '.error.code == -32602'
	[[ "$output" == *"unknown integration 'nosuch', 'other'"* ]]
	run wfv get acme
	[ "$status" -ne 0 ]
	run tp_put '{"tenant":"acme","fields":{},"integrations":"openai"}'
	echo "$output" | jq -e '.error.code == -32602'
	run tp_put '{"tenant":"acme","fields":{}}'
	echo "$output" | jq -e '.error.code == -32602'
}

@test "a malformed value is refused by every write path; nothing stored" {
	run tp_put '{"tenant":"acme","fields":{"note":"x"},"integrations":["openai"]}'
	[ "$status" -eq 0 ]

	# The raw protocol.
	run tp_put "{\"tenant\":\"acme\",\"fields\":{\"openai_api_key\":\"$BAD\"}}"
	echo "$output" | jq -e '.error.code == -32602'
	echo "$output" | jq -e '.error.data.kind == "invalid_params"'
	assert_refused
	# put TENANT FIELD.
	run put_value acme openai_api_key "$BAD"
	assert_refused
	# put --json, and a replace.
	run bash -c "printf '{\"openai_api_key\":\"%s\"}' '$BAD' |
	    timeout 30 '$WFVAULT' -s '$SOCK' put acme --json"
	assert_refused
	run bash -c "printf '{\"openai_api_key\":\"%s\"}' '$BAD' |
	    timeout 30 '$WFVAULT' -s '$SOCK' put acme --json --replace"
	assert_refused
	# import.
	printf 'OPENAI_API_KEY=%s\nNOTE=y\n' "$BAD" >"$T/in.env"
	run wfv import acme "$T/in.env"
	assert_refused
	# A value that is not a string is malformed too.
	run tp_put '{"tenant":"acme","fields":{"openai_api_key":42}}'
	assert_refused
	# Recording an integration checks the fields already stored.
	run tp_put "{\"tenant\":\"beta\",\"fields\":{\"stripe_secret_key\":\"nope\"}}"
	[ "$status" -eq 0 ]
	run tp_put '{"tenant":"beta","fields":{},"integrations":["stripe"]}'
	[ "$status" -ne 0 ]
	[[ "$output" == *"field 'stripe_secret_key' does not match the format of integration 'stripe'"* ]]
	[[ "$output" != *nope* ]]

	# Nothing of it was stored.
	run wfv get acme --json
	echo "$output" | jq -e '.version == 1 and .fields == {"note":"x"}'
	run wfv get beta --json
	echo "$output" | jq -e '.version == 1 and .integrations == []'
	! grep -q SECRETVALUE "$AUDIT" "$LOG"

	# A valid value is stored, by each path.
	run put_value acme openai_api_key "$GOOD"
	[ "$status" -eq 0 ]
	[ "$(wfv get acme openai_api_key)" = "$GOOD" ]
	printf 'OPENAI_API_KEY=%sX\n' "$GOOD" >"$T/in.env"
	run wfv import acme "$T/in.env"
	[ "$status" -eq 0 ]
	[ "$(wfv get acme openai_api_key)" = "${GOOD}X" ]
	# Removing a field is never refused (onboarding collects it later).
	run tp_put '{"tenant":"acme","fields":{"openai_api_key":null}}'
	[ "$status" -eq 0 ]
	[ "$(wfv get acme --json | jq -c .integrations)" = '["openai"]' ]
}

@test "a tenant without integrations is not checked" {
	run put_value plain openai_api_key "$BAD"
	[ "$status" -eq 0 ]
	[ "$(wfv get plain openai_api_key)" = "$BAD" ]
	[ "$(wfv get plain --json | jq -c .integrations)" = '[]' ]
}

@test "an integration gone from the catalog checks nothing, with a warning" {
	mkdir "$T/site"
	cp "$E2E_ROOT/integrations/openai.json" "$T/site/"
	stop_daemon
	write_conf "integrations_dir none" "integrations_dir $T/site"
	start_daemon
	run tp_put '{"tenant":"acme","fields":{},"integrations":["openai"]}'
	[ "$status" -eq 0 ]
	run put_value acme openai_api_key "$BAD"
	assert_refused
	rm "$T/site/openai.json"
	kill -HUP "$DAEMON_PID"
	# Bounded poll: the reload is done once openai is no longer listed.
	local _
	for _ in $(seq 100); do
		wfv integrations --json | jq -e '[.integrations[].id] |
		    index("openai") == null' >/dev/null && break
		sleep 0.1
	done
	run put_value acme openai_api_key "$BAD"
	[ "$status" -eq 0 ]
	wait_for_line "$LOG" 50 "uses integration 'openai', which is not in the catalog"
	[ "$(wfv get acme --json | jq -c .integrations)" = '["openai"]' ]
}

@test "wfvault put --integrations records them, alone or with values" {
	run wfv put acme --integrations openai
	[ "$status" -eq 0 ]
	[ "$(wfv get acme --json | jq -c .integrations)" = '["openai"]' ]
	# With a value: checked against the list the put makes.
	run bash -c "printf '%s' '$BAD' | timeout 30 '$WFVAULT' -s '$SOCK' \
	    put acme stripe_secret_key --integrations stripe"
	[ "$status" -eq 2 ]
	[[ "$output" == *"field 'stripe_secret_key' does not match the format of integration 'stripe'"* ]]
	[[ "$output" != *SECRETVALUE* ]]
	[ "$(wfv get acme --json | jq -c .integrations)" = '["openai"]' ]
	run bash -c "printf '{\"openai_api_key\":\"%s\"}' '$GOOD' |
	    timeout 30 '$WFVAULT' -s '$SOCK' put acme --json --replace \
	    --integrations stripe,openai"
	[ "$status" -eq 0 ]
	[ "$(wfv get acme --json | jq -c .integrations)" = '["openai","stripe"]' ]
	# Unknown ids and a malformed list are refused; nothing stored.
	run wfv put acme --integrations nosuch
	[ "$status" -eq 2 ]
	[[ "$output" == *"unknown integration 'nosuch'"* ]]
	run wfv put acme --integrations openai,,stripe
	[ "$status" -eq 2 ]
	run wfv put acme --integrations openai --replace
	[ "$status" -eq 2 ]
	[ "$(wfv get acme --json | jq .version)" = 2 ]
	run wfv help put
	[[ "$output" == *"--integrations ID,ID"* ]]
}
