#!/usr/bin/env bats
# wfvault test (README.md "Live tests"): the catalog's live tests against
# a local HTTP stand-in (livetest_standin.mjs) -- a pass, a 401 whose body
# echoes the key, a timeout, a redirect that must not be followed -- and
# the key never in any argv nor in the output.

load helpers

# The key the tenant holds; the stand-in wants "Bearer $KEY".
KEY_VALUE=lk_0123456789abcdefsecret

setup() {
	wfv_setup
	mkdir "$T/cat"
	printf '%s\n' "$KEY_VALUE" >"$T/key"
	bg node "$E2E_ROOT/tests/e2e/livetest_standin.mjs" "$T/requests" \
	    "$T/key" >"$T/standin.out" 2>&1
	wait_for_line "$T/standin.out" 300 '^READY [0-9]+$' || {
		cat "$T/standin.out" >&2
		return 1
	}
	PORT=$(sed -n 's/^READY //p' "$T/standin.out")
	local id
	for id in ok deny redirect hang; do
		catalog_file "lt_$id" "http://127.0.0.1:$PORT/$id"
	done
	cat >"$T/cat/lt_notest.json" <<-EOF
	{"id": "lt_notest", "title": "No test", "kind": "api_key",
	 "fields": [{"name": "lt_key", "label": "Key", "secret": true,
	             "format": "^lk_[a-z0-9]{8,}\$", "where": ["Ask"]}]}
	EOF
	write_conf "integrations_dir none" "integrations_dir $T/cat"
	start_daemon
	put_value acme lt_key "$KEY_VALUE"
}

teardown() {
	wfv_teardown
}

# An integration $1 whose live test GETs $2 with the key.
catalog_file() {
	cat >"$T/cat/$1.json" <<-EOF
	{"id": "$1", "title": "Stand-in $1", "kind": "api_key",
	 "fields": [{"name": "lt_key", "label": "Key", "secret": true,
	             "format": "^lk_[a-z0-9]{8,}\$", "where": ["Ask"]}],
	 "test": {"method": "GET", "url": "$2",
	          "headers": {"Authorization": "Bearer {{lt_key}}"},
	          "expect_status": [200]}}
	EOF
}

@test "a live test passes when the provider accepts the key it was sent" {
	run wfv test acme lt_ok
	[ "$status" -eq 0 ]
	[ "$output" = "lt_ok: pass (200 OK)" ]
	grep -qx 'GET /ok key' "$T/requests"
	run wfv test acme lt_ok --json
	[ "$status" -eq 0 ]
	[ "$(jq -c '.[0] | [.integration, .result, .status]' <<<"$output")" = \
	    '["lt_ok","pass",200]' ]
}

@test "a 401 fails with its status, exit 7, and never shows the body" {
	run wfv test acme lt_deny
	[ "$status" -eq 7 ]
	[ "$output" = "lt_deny: FAIL (401 Unauthorized)" ]
	# The stand-in did echo the key in its body.
	grep -qx 'GET /deny key' "$T/requests"
	run wfv test acme lt_ok lt_deny lt_notest --json
	[ "$status" -eq 7 ]
	[[ "$output" != *"$KEY_VALUE"* ]]
	[ "$(jq -c '[.[] | [.integration, .result, .status]]' \
	    <<<"$output")" = \
	    '[["lt_ok","pass",200],["lt_deny","fail",401],["lt_notest","skipped",null]]' ]
}

@test "a redirect is a failure and is not followed with the key" {
	run wfv test acme lt_redirect
	[ "$status" -eq 7 ]
	[ "$output" = "lt_redirect: FAIL (302 Found, redirect to localhost not followed)" ]
	grep -qx 'GET /redirect key' "$T/requests"
	! grep -q '/second' "$T/requests"
}

@test "a provider that never answers times out; the key is in no argv" {
	WFVAULT_TEST_TIMEOUT=3 bg "$WFVAULT" -s "$SOCK" test acme lt_hang \
	    >"$T/out" 2>&1
	local cli=$BG_PID
	wait_for_line "$T/requests" 100 '^GET /hang key$'
	# While the stand-in holds the request, no process shows the key.
	local p
	for p in /proc/[0-9]*; do
		if grep -qaF -f "$T/key" "$p/cmdline" 2>/dev/null; then
			echo "the key is in the argv of ${p#/proc/}" >&2
			return 1
		fi
	done
	wait "$cli" && rc=0 || rc=$?
	[ "$rc" -eq 7 ]
	[ "$(cat "$T/out")" = "lt_hang: FAIL (timeout after 3 s)" ]
}

@test "with no integration named, each one whose fields the tenant holds" {
	WFVAULT_TEST_TIMEOUT=1 run wfv test acme --json
	[ "$status" -eq 7 ]
	# lt_notest has no test; the catalog comes sorted by id.
	[ "$(jq -r '[.[].integration] | join(" ")' <<<"$output")" = \
	    "lt_deny lt_hang lt_ok lt_redirect" ]
	[[ "$output" != *"$KEY_VALUE"* ]]
}

@test "an unknown integration and a tenant without the fields" {
	run wfv test acme nosuch
	[ "$status" -eq 2 ]
	[[ "$output" == *"no integration 'nosuch' in the catalog"* ]]
	# A key pasted where the id goes (lowercase hex, like many API keys)
	# is not repeated.
	run wfv test acme 3f9a0c1d2e4b5a6978f0e1d2c3b4a5968778695a
	[ "$status" -eq 2 ]
	[[ "$output" == *"no such integration in the catalog"* ]]
	[[ "$output" != *3f9a0c1d2e4b* ]]
	put_value beta other_field x
	run wfv test beta lt_ok
	[ "$status" -eq 7 ]
	[ "$output" = "lt_ok: FAIL (the tenant has no field 'lt_key')" ]
	run wfv test beta
	[ "$status" -eq 3 ]
}

@test "the CLI links no libcurl: only wfvault-test does" {
	run ldd "$WFVAULT"
	[ "$status" -eq 0 ]
	[[ "$output" == *libjansson* ]]
	[[ "$output" != *libcurl* ]]
	run ldd "$E2E_BUILD/wfvault-test"
	[[ "$output" == *libcurl* ]]
	run wfv help test
	[ "$status" -eq 0 ]
	[[ "$output" == *"test TENANT [INTEGRATION...]"* ]]
	[[ "$output" == *"7  test: a live test failed"* ]]
}
