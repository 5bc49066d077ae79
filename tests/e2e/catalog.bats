#!/usr/bin/env bats
# The integration catalog (README.md "Integrations catalog"): the shipped
# files load, any peer may list them, a malformed file stops the start,
# fails -n and, at SIGHUP, keeps the catalog in force.

load helpers

setup() {
	wfv_setup
	mkdir "$T/site"
}

teardown() {
	wfv_teardown
}

# A well-formed site integration, titled $2, written to $T/site/$1.json.
site_file() {
	cat >"$T/site/$1.json" <<-EOF
	{"id": "$1", "title": "$2", "kind": "api_key",
	 "fields": [{"name": "$1_key", "label": "Key", "secret": true,
	             "format": "^ak_[a-z0-9]{8,}\$", "example": "ak_...",
	             "where": ["Ask the provider"]}],
	 "test": {"method": "GET", "url": "https://api.example.com/v1/me",
	          "headers": {"Authorization": "Bearer {{$1_key}}"},
	          "expect_status": [200]}}
	EOF
}

# The title of integration $1 in the daemon's catalog.
title_of() {
	wfv integrations --json | jq -r --arg id "$1" \
	    '.integrations[] | select(.id == $id) | .title'
}

@test "every shipped integration is listed, as a table and as JSON" {
	write_conf
	start_daemon
	run wfv integrations
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" == ID*KIND*TITLE*FIELDS ]]
	[[ "$output" == *"openai    api_key  OpenAI"*"openai_api_key (secret)"* ]]
	[[ "$output" == *"s3_access_key_id, s3_secret_access_key (secret), s3_bucket, s3_region, s3_endpoint"* ]]
	run wfv integrations --json
	[ "$status" -eq 0 ]
	local ids want
	ids=$(jq -r '[.integrations[].id] | join(" ")' <<<"$output")
	want=$(cd "$E2E_ROOT/integrations" && ls *.json | sed 's/\.json$//' |
	    sort | tr '\n' ' ' | sed 's/ $//')
	[ "$ids" = "$want" ]
	[[ " $ids " == *" linkedin "*" twitter "* ]]
	# The listing is the file: fields, formats, where, the live test.
	[ "$(jq -r '.integrations[] | select(.id == "stripe") | .test.url' \
	    <<<"$output")" = "https://api.stripe.com/v1/balance" ]
	[ "$(jq -r '.integrations[] | select(.id == "s3") |
	    [.fields[] | select(.secret) | .name] | join(",")' <<<"$output")" = \
	    "s3_secret_access_key" ]
	[ "$(jq -r '.integrations[] | select(.id == "openai") |
	    .fields[0].format' <<<"$output")" = '^sk-[A-Za-z0-9_-]{20,}$' ]
}

@test "a peer with no grant at all may read the catalog" {
	require_root
	chmod 0755 "$T"
	write_conf "socket_mode 0666" "allow uid:4242 read acme"
	start_daemon
	run as_user 4260 4260 "$TESTPEER" call "$SOCK" integrations
	[ "$status" -eq 0 ]
	[[ "$output" == *'"result"'*'"id":"openai"'* ]]
	run wfv_as 4260 4260 integrations
	[ "$status" -eq 0 ]
	[[ "$output" == *"github_client_secret (secret)"* ]]
	# ... and nothing else.
	run wfv_as 4260 4260 list
	[ "$status" -eq 4 ]
}

@test "unknown params are refused" {
	write_conf
	start_daemon
	run tp call integrations '{"id":"openai"}'
	[[ "$output" == *'"code":-32602'* ]]
}

@test "a site file overrides a shipped one by id, and adds its own" {
	site_file acme "Acme"
	cat "$E2E_ROOT/integrations/openai.json" |
	    jq '.title = "OpenAI (site)"' >"$T/site/openai.json"
	write_conf "integrations_dir none" \
	    "integrations_dir $E2E_ROOT/integrations" "integrations_dir $T/site"
	start_daemon
	[ "$(title_of openai)" = "OpenAI (site)" ]
	[ "$(title_of acme)" = "Acme" ]
	[ "$(title_of stripe)" = "Stripe" ]
}

@test "a malformed file stops the start and fails -n, naming file and member" {
	site_file acme "Acme"
	sed -i 's/"api_key"/"token"/' "$T/site/acme.json"
	write_conf "integrations_dir none" \
	    "integrations_dir $E2E_ROOT/integrations" "integrations_dir $T/site"
	run "$WFVAULTD" -c "$CONF" -n
	[ "$status" -eq 1 ]
	[[ "$output" == *"$T/site/acme.json: kind: must be api_key, oauth or storage"* ]]
	[[ "$output" != *"configuration OK"* ]]
	run timeout 20 "$WFVAULTD" -c "$CONF"
	[ "$status" -eq 1 ]
	[[ "$output" == *"$T/site/acme.json: kind: must be api_key"* ]]
	[ ! -S "$SOCK" ]

	site_file acme "Acme"
	sed -i 's/{{acme_key}}/{{acme_token}}/' "$T/site/acme.json"
	run "$WFVAULTD" -c "$CONF" -n
	[ "$status" -eq 1 ]
	[[ "$output" == *"$T/site/acme.json: test.headers.Authorization: {{acme_token}} names no field"* ]]

	site_file acme "Acme"
	run "$WFVAULTD" -c "$CONF" -n
	[ "$status" -eq 0 ]
	[[ "$output" == *"configuration OK (8 integrations)"* ]]
}

@test "a configured directory that is missing is an error" {
	write_conf "integrations_dir none" "integrations_dir $T/nowhere"
	run "$WFVAULTD" -c "$CONF" -n
	[ "$status" -eq 1 ]
	[[ "$output" == *"integrations_dir $T/nowhere: No such file or directory"* ]]
}

@test "SIGHUP reloads the catalog; a broken file keeps the old one" {
	site_file acme "Acme one"
	write_conf "integrations_dir none" \
	    "integrations_dir $E2E_ROOT/integrations" "integrations_dir $T/site"
	start_daemon
	[ "$(title_of acme)" = "Acme one" ]

	# Broken: the daemon says why and keeps serving the catalog it had.
	site_file acme "Acme two"
	sed -i 's/"format": "^ak_/"format": "(^ak_/' "$T/site/acme.json"
	kill -HUP "$DAEMON_PID"
	wait_for_line "$LOG" 50 "keeping the current integration catalog: $T/site/acme.json: fields\[0\]\.format: does not compile"
	[ "$(title_of acme)" = "Acme one" ]
	pid_alive "$DAEMON_PID"

	# Fixed: the next SIGHUP takes it.
	site_file acme "Acme two"
	kill -HUP "$DAEMON_PID"
	local _
	for _ in $(seq 50); do
		[ "$(title_of acme)" = "Acme two" ] && break
		sleep 0.1
	done
	[ "$(title_of acme)" = "Acme two" ]
	rm "$T/site/acme.json"
	kill -HUP "$DAEMON_PID"
	for _ in $(seq 50); do
		[ -z "$(title_of acme)" ] && break
		sleep 0.1
	done
	[ -z "$(title_of acme)" ]
}
