#!/usr/bin/env bats
# wfvault check and test_result (README.md "Readiness"): whether a tenant
# is ready -- every field of its integrations there and well formed, no
# live test failing -- with where to get what is missing, never a value;
# live test outcomes recorded by wfvault test, removed with the tenant;
# whether the sync agent pushed the tenant's last change.

load helpers

GOOD=sk-abcdefghijklmnopqrstuvwxyz0123
# The key livetest_standin.mjs wants, in the lt_* integrations' format.
LT_KEY=lk_0123456789abcdefsecret

setup() {
	wfv_setup
	mkdir "$T/cat"
	write_conf "integrations_dir none" \
	    "integrations_dir $E2E_ROOT/integrations" \
	    "integrations_dir $T/cat"
	start_daemon
}

teardown() {
	wfv_teardown
}

# put PARAMS-JSON through the raw protocol.
tp_put() {
	tp call put "$1" >/dev/null
}

# test_result PARAMS-JSON through the raw protocol; prints the reply.
tp_result() {
	tp call test_result "$1"
}

# Starts the live test stand-in and writes integrations lt_ok and lt_deny
# whose tests GET its /ok and /deny with lt_key.
start_standin() {
	printf '%s\n' "$LT_KEY" >"$T/key"
	bg node "$E2E_ROOT/tests/e2e/livetest_standin.mjs" "$T/requests" \
	    "$T/key" >"$T/standin.out" 2>&1
	wait_for_line "$T/standin.out" 300 '^READY [0-9]+$' || {
		cat "$T/standin.out" >&2
		return 1
	}
	PORT=$(sed -n 's/^READY //p' "$T/standin.out")
	local id
	for id in ok deny; do
		cat >"$T/cat/lt_$id.json" <<-EOF
		{"id": "lt_$id", "title": "Stand-in $id", "kind": "api_key",
		 "fields": [{"name": "lt_key", "label": "Key", "secret": true,
		             "format": "^lk_[a-z0-9]{8,}\$",
		             "where": ["Ask the stand-in"]}],
		 "test": {"method": "GET", "url": "http://127.0.0.1:$PORT/$id",
		          "headers": {"Authorization": "Bearer {{lt_key}}"},
		          "expect_status": [200]}}
		EOF
	done
	reload_catalog lt_deny
}

# Sends SIGHUP and waits (10 s at most) until the catalog has id $1 with
# field format $2 (any format when not given).
reload_catalog() {
	local _ f
	kill -HUP "$DAEMON_PID"
	for _ in $(seq 100); do
		f=$(wfv integrations --json | jq -r --arg id "$1" \
		    '.integrations[] | select(.id == $id) | .fields[0].format' 2>/dev/null)
		if [ -n "$f" ] && { [ -z "${2:-}" ] || [ "$f" = "$2" ]; }; then
			return 0
		fi
		sleep 0.1
	done
	echo "the catalog never had $1${2:+ with format $2}" >&2
	return 1
}

@test "check: ready, incomplete with where to get it, never a value" {
	tp_put '{"tenant":"acme","fields":{"openai_api_key":"'$GOOD'"},"integrations":["openai"]}'
	run wfv check acme
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "acme: ready (version 1)" ]
	[ "${lines[1]}" = "  openai (OpenAI): ok" ]
	[ "${lines[2]}" = "    last live test: none recorded" ]
	[[ "$output" != *"$GOOD"* ]]
	# sendgrid added without its key: incomplete, with the steps.
	tp_put '{"tenant":"acme","fields":{},"integrations":["sendgrid"]}'
	run wfv check acme
	[ "$status" -eq 8 ]
	[ "${lines[0]}" = "acme: NOT READY (version 2)" ]
	[[ "$output" == *"  sendgrid ("*"): incomplete"* ]]
	[[ "$output" == *"    missing sendgrid_api_key ("*"); where to get it:"* ]]
	[[ "$output" == *"      1. "* ]]
	[[ "$output" != *"$GOOD"* ]]
	run wfv check acme --json
	[ "$status" -eq 8 ]
	[[ "$output" != *"$GOOD"* ]]
	echo "$output" | jq -e '.tenants | length == 1'
	echo "$output" | jq -e '.tenants[0] | .tenant == "acme" and
	    .version == 2 and .ready == false and .sync == [] and
	    .change_seq == 2'
	echo "$output" | jq -e '.tenants[0].integrations |
	    map(.id) == ["openai", "sendgrid"]'
	echo "$output" | jq -e '.tenants[0].integrations[1] |
	    .state == "incomplete" and .malformed == [] and
	    .last_test == null and .missing[0].name == "sendgrid_api_key" and
	    (.missing[0].where | length) > 0 and
	    (.missing[0].label | type) == "string"'
	# A tenant without integrations is ready.
	put_value plain region eu
	run wfv check plain
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "plain: ready (version 1, uses no integration)" ]
}

@test "check: a value the catalog's new format refuses is malformed" {
	tp_put '{"tenant":"acme","fields":{"openai_api_key":"'$GOOD'"},"integrations":["openai"]}'
	run wfv check acme
	[ "$status" -eq 0 ]
	# The administrator tightens the format; the stored key no longer fits.
	jq '.fields[0].format = "^sk-proj-[A-Za-z0-9]{20,}$"' \
	    "$E2E_ROOT/integrations/openai.json" >"$T/cat/openai.json"
	reload_catalog openai '^sk-proj-[A-Za-z0-9]{20,}$'
	run wfv check acme
	[ "$status" -eq 8 ]
	[ "${lines[1]}" = "  openai (OpenAI): malformed" ]
	[ "${lines[2]}" = "    malformed openai_api_key: does not match ^sk-proj-[A-Za-z0-9]{20,}\$" ]
	[[ "$output" != *"$GOOD"* ]]
	run wfv check acme --json
	[[ "$output" != *"$GOOD"* ]]
	echo "$output" | jq -e '.tenants[0].integrations[0] |
	    .state == "malformed" and .malformed == [{"name":
	    "openai_api_key", "format": "^sk-proj-[A-Za-z0-9]{20,}$"}]'
	# Gone from the catalog: unknown, and not ready.
	printf '{"id":"gone","title":"Gone","kind":"api_key","fields":[{"name":"gone_key","label":"K","secret":true,"format":"^g$","where":["x"]}]}' \
	    >"$T/cat/gone.json"
	reload_catalog gone
	tp_put '{"tenant":"beta","fields":{"gone_key":"g"},"integrations":["gone"]}'
	rm "$T/cat/gone.json"
	kill -HUP "$DAEMON_PID"
	for _ in $(seq 100); do
		wfv integrations --json |
		    jq -e '.integrations | map(.id) | index("gone") == null' \
		    >/dev/null && break
		sleep 0.1
	done
	run wfv check beta --json
	[ "$status" -eq 8 ]
	echo "$output" | jq -e '.tenants[0].integrations[0] |
	    .state == "unknown" and .title == null'
}

@test "check: unknown tenants, patterns, every listable tenant" {
	tp_put '{"tenant":"acme","fields":{"openai_api_key":"'$GOOD'"},"integrations":["openai"]}'
	tp_put '{"tenant":"beta-1","fields":{},"integrations":["sendgrid"]}'
	tp_put '{"tenant":"beta-2","fields":{"openai_api_key":"'$GOOD'"},"integrations":["openai"]}'
	run wfv check nosuch
	[ "$status" -eq 3 ]
	[[ "$output" == *"no tenant 'nosuch'"* ]]
	run wfv check 'zz*'
	[ "$status" -eq 3 ]
	[[ "$output" == *"matches pattern 1"* ]]
	run wfv check 'bad/id'
	[ "$status" -eq 2 ]
	run wfv check acme --json
	[ "$status" -eq 0 ]
	run wfv check 'beta-*' --json
	[ "$status" -eq 8 ]
	echo "$output" | jq -e '[.tenants[] | [.tenant, .ready]] ==
	    [["beta-1", false], ["beta-2", true]]'
	run wfv check 'beta-[2]' acme
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "beta-2: ready (version 1)" ]
	# No operand: every tenant, once each.
	run wfv check --json
	[ "$status" -eq 8 ]
	echo "$output" | jq -e '[.tenants[].tenant] == ["acme", "beta-1", "beta-2"]'
	run wfv check acme 'a*' --json
	echo "$output" | jq -e '[.tenants[].tenant] == ["acme"]'
}

@test "wfvault test records outcomes; a failure stands until a test passes" {
	start_standin
	tp_put '{"tenant":"acme","fields":{"lt_key":"'$LT_KEY'"},"integrations":["lt_ok","lt_deny"]}'
	run wfv check acme
	[ "$status" -eq 0 ]
	run wfv test acme lt_deny
	[ "$status" -eq 7 ]
	run wfv check acme
	[ "$status" -eq 8 ]
	[[ "$output" == *"  lt_deny (Stand-in deny): failing"* ]]
	[[ "$output" =~ "    last live test: FAIL (401 Unauthorized) at "[0-9T:-]+Z$'\n' ]]
	[[ "$output" != *"$LT_KEY"* ]]
	run wfv test acme lt_ok
	[ "$status" -eq 0 ]
	run wfv check acme --json
	[ "$status" -eq 8 ]
	[[ "$output" != *"$LT_KEY"* ]]
	echo "$output" | jq -e '.tenants[0].integrations[] |
	    select(.id == "lt_ok") | .state == "ok" and
	    .last_test.result == "pass" and .last_test.status == 200 and
	    .last_test.reason == "200 OK" and .last_test.version == 1 and
	    .last_test.uid == 0 and .last_test.stale == false'
	# A new version: the failure is stale but stands.
	tp_put '{"tenant":"acme","fields":{"region":"eu"}}'
	run wfv check acme
	[ "$status" -eq 8 ]
	[[ "$output" == *"FAIL (401 Unauthorized) at "*" [stale: tested version 1]"* ]]
	[[ "$output" == *"pass (200 OK) at "*" [stale: tested version 1]"* ]]
	# The provider now accepts: a passing test clears it.
	cp "$T/cat/lt_ok.json" "$T/cat/lt_deny.json"
	sed -i 's/"lt_ok"/"lt_deny"/' "$T/cat/lt_deny.json"
	reload_catalog lt_deny
	for _ in $(seq 100); do
		wfv integrations --json | jq -e '.integrations[] |
		    select(.id == "lt_deny") |
		    .test.url | endswith("/ok")' >/dev/null && break
		sleep 0.1
	done
	run wfv test acme lt_deny
	[ "$status" -eq 0 ]
	run wfv check acme --json
	[ "$status" -eq 0 ]
	echo "$output" | jq -e '.tenants[0] | .ready == true and
	    (.integrations | map([.id, .state, .last_test.result,
	    .last_test.version, .last_test.stale]) ==
	    [["lt_deny", "ok", "pass", 2, false],
	     ["lt_ok", "ok", "pass", 1, true]])'
}

@test "test still prints its results when recording is refused" {
	require_root
	start_standin
	chmod 0755 "$T"
	stop_daemon
	write_conf "socket_mode 0666" "allow uid:4242 read acme" \
	    "integrations_dir none" "integrations_dir $E2E_ROOT/integrations" \
	    "integrations_dir $T/cat"
	start_daemon
	tp_put '{"tenant":"acme","fields":{"lt_key":"'$LT_KEY'"},"integrations":["lt_ok"]}'
	# Read may record; list alone may check but not record.
	run wfv_as 4242 4242 test acme lt_ok
	[ "$status" -eq 0 ]
	[ "$output" = "lt_ok: pass (200 OK)" ]
	run wfv check acme --json
	echo "$output" | jq -e '.tenants[0].integrations[0].last_test |
	    .uid == 4242 and .result == "pass"'
}

@test "test_result: params checked strictly, read needed, tenant must exist" {
	require_root
	chmod 0755 "$T"
	stop_daemon
	write_conf "socket_mode 0666" "allow uid:4242 read acme" \
	    "allow uid:4243 list acme" "allow uid:4244 write acme"
	start_daemon
	tp_put '{"tenant":"acme","fields":{"openai_api_key":"'$GOOD'"},"integrations":["openai"]}'
	local ok='"tenant":"acme","integration":"openai","result":"fail","status":401,"reason":"401 Unauthorized"'
	run tp_result "{$ok,\"version\":1}"
	echo "$output" | jq -e '.result.tenant == "acme" and
	    .result.integration == "openai" and (.result.at | test("Z$"))'
	# Each a -32602, and nothing recorded by any of them.
	for p in \
	    '"tenant":"acme","integration":"nosuch","result":"fail","status":401,"reason":"","version":1' \
	    '"tenant":"acme","integration":"openai","result":"maybe","status":401,"reason":"","version":1' \
	    '"tenant":"acme","integration":"openai","result":"fail","status":42,"reason":"","version":1' \
	    '"tenant":"acme","integration":"openai","result":"fail","status":null,"reason":"a\u0007b","version":1' \
	    "$ok,\"version\":0" "$ok,\"version\":2" "$ok" "$ok,\"version\":1,\"extra\":1" \
	    '"tenant":"acme","integration":"openai","result":"fail","status":null,"reason":"'"$(printf 'r%.0s' $(seq 161))"'","version":1'; do
		run tp_result "{$p}"
		echo "$output" | jq -e '.error.code == -32602'
	done
	run tp_result '{"tenant":"nosuch","integration":"openai","result":"pass","status":200,"reason":"","version":1}'
	echo "$output" | jq -e '.error.code == -32002'
	# read records; list or write alone does not.
	run as_user 4242 4242 timeout 60 "$TESTPEER" call "$SOCK" test_result \
	    "{$ok,\"version\":1}"
	echo "$output" | jq -e '.result.tenant == "acme"'
	for u in 4243 4244; do
		run as_user "$u" "$u" timeout 60 "$TESTPEER" call "$SOCK" \
		    test_result "{$ok,\"version\":1}"
		echo "$output" | jq -e '.error.code == -32001'
	done
	# list checks; write alone does not.
	run wfv_as 4243 4243 check acme --json
	[ "$status" -eq 8 ]
	echo "$output" | jq -e '.tenants[0].integrations[0].last_test |
	    .uid == 4242 and .result == "fail" and .status == 401'
	run wfv_as 4244 4244 check acme
	[ "$status" -eq 4 ]
}

@test "outcomes go with the tenant on rm and purge; backups carry them" {
	stop_daemon
	write_conf "backup_dir $T" "integrations_dir none" \
	    "integrations_dir $E2E_ROOT/integrations"
	start_daemon
	put_value acme openai_api_key "$GOOD"
	put_value beta openai_api_key "$GOOD"
	local r='"integration":"openai","result":"fail","status":401,"reason":"no","version":1'
	tp_result "{\"tenant\":\"acme\",$r}" | jq -e .result
	tp_result "{\"tenant\":\"beta\",$r}" | jq -e .result
	tp_put '{"tenant":"acme","fields":{},"integrations":["openai"]}'
	tp_put '{"tenant":"beta","fields":{},"integrations":["openai"]}'
	restart_daemon
	run wfv check acme --json
	echo "$output" | jq -e '.tenants[0].integrations[0].state == "failing"'
	# Deleted and made again: no outcome of the old tenant is left.
	wfv rm acme --yes >/dev/null
	tp_put '{"tenant":"acme","fields":{"openai_api_key":"'$GOOD'"},"integrations":["openai"]}'
	run wfv check acme --json
	[ "$status" -eq 0 ]
	echo "$output" | jq -e '.tenants[0].integrations[0].last_test == null'
	wfv rm beta --purge --yes >/dev/null
	tp_put '{"tenant":"beta","fields":{"openai_api_key":"'$GOOD'"},"integrations":["openai"]}'
	run wfv check beta --json
	[ "$status" -eq 0 ]
	echo "$output" | jq -e '.tenants[0].integrations[0].last_test == null'
	# A deleted tenant takes no outcome.
	wfv rm beta --yes >/dev/null
	run tp_result "{\"tenant\":\"beta\",$r}"
	echo "$output" | jq -e '.error.code == -32002'
	# A backup carries them; the restore verifies and accepts them.
	tp_result "{\"tenant\":\"acme\",$r}" | jq -e .result
	wfv backup b.mdb >/dev/null 2>&1
	tp_result "{\"tenant\":\"acme\",${r/fail/pass}}" | jq -e .result
	stop_daemon
	run "$WFVAULTD" -c "$CONF" --restore "$T/b.mdb"
	echo "$output"
	[ "$status" -eq 0 ]
	start_daemon
	run wfv check acme --json
	[ "$status" -eq 8 ]
	echo "$output" | jq -e '.tenants[0].integrations[0].state == "failing"'
}
