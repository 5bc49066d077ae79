#!/usr/bin/env bats
# wfvault-sync's worker_secrets target end to end: the real daemon, the real
# agent and the local Cloudflare stand-in serving the Workers secrets API.
# What the tests read back is what a Worker whose environment holds the
# script's secrets reads (env.OPENAI_API_KEY), through the harness's
# consumer Worker.

load helpers

WFVAULT_SYNC=$E2E_BUILD/wfvault-sync
ACCOUNT=0123456789abcdef0123456789abcdef
NAMESPACE=fedcba9876543210fedcba9876543210
SCRIPT=my-worker

setup_file() {
	sync_suite_start --script "$SCRIPT"
}

teardown_file() {
	harness_stop
}

setup() {
	sync_test_setup
	write_sync_conf
}

teardown() {
	wfv_teardown
}


# The Workers secrets API as a person with wrangler would use it.
cf() {
	curl -sS --max-time 30 -X "$1" -H 'Authorization: Bearer test-token' \
	    ${3:+-H 'Content-Type: application/json' --data-binary "$3"} \
	    "$HURL/client/v4/accounts/$ACCOUNT/workers/scripts/$SCRIPT/secrets$2"
}

# The script's secret names, one a line, sorted.
secret_names() {
	cf GET "" | jq -r '.result[].name'
}

# What the Worker reads from env.$1 (null when unset).
worker_env() {
	h GET "/worker/$SCRIPT/env/$1" | jq -r .value
}

stat_of() {
	h GET /__harness/stats | jq -r ".requests.$1 // 0"
}

# A KV target "staging" for every tenant and the worker_secrets target
# "worker" for tenant global, from one configuration.
write_sync_conf() {
	{
		echo "socket $SOCK"
		echo "cf_api_base $HURL/client/v4"
		echo "cf_account_id $ACCOUNT"
		echo "cf_api_token_file $T/token"
		echo "target worker"
		echo "kind worker_secrets"
		echo "cf_script_name ${1:-$SCRIPT}"
		echo "secrets_tenant global"
	} >"$T/sync.conf"
}

sync_once() {
	timeout 120 "$WFVAULT_SYNC" -c "$T/sync.conf" --once "$@"
}

acked_seq() {
	tp call sync_state '{"target":"worker"}' | jq -r '.result.acked_seq'
}

last_seq() {
	tp call sync_state '{"target":"worker"}' | jq -r '.result.last_seq'
}

# The target acknowledged all of the feed.
acked_all() {
	[ "$(acked_seq)" = "$(last_seq)" ]
}

# Waits (30 s at most) until the target acknowledged all of the feed.
wait_acked() {
	wait_until 300 acked_all && return 0
	echo "the agent never acknowledged seq $(last_seq)" >&2
	return 1
}

# Waits (30 s at most) until the Worker reads $2 from env.$1.
wait_env() {
	wait_until 300 prints "$2" worker_env "$1" && return 0
	echo "the Worker never read $1 = $2" >&2
	return 1
}

# What a Worker bound to the KV namespace reads as acme's openai_api_key.
kv_acme() {
	h GET /tenant/acme/openai_api_key | jq -r .value
}

# Waits (60 s at most) until a Worker bound to the KV namespace reads $1
# as acme's openai_api_key.
wait_kv_acme() {
	wait_until 600 prints "$1" kv_acme && return 0
	echo "KV never showed acme.openai_api_key = $1" >&2
	return 1
}

# How many secret writes the stand-in holds unanswered.
held_secret_puts() {
	h GET /__harness/requests | jq '[.requests[] |
	    select(.route == "secret_put" and .status == 0)] | length'
}

# Waits (60 s at most) until a secret write is out and held.
wait_held_secret() {
	wait_until 600 prints_at_least 1 held_secret_puts && return 0
	echo "no secret write is held" >&2
	return 1
}

# The agent following the vault; its log in $T/agent.log.
start_agent() {
	bg "$WFVAULT_SYNC" -c "$T/sync.conf" -d 2>"$T/agent.log"
	AGENT=$BG_PID
}

stop_agent() {
	kill -TERM "$AGENT" 2>/dev/null || true
	wait "$AGENT" 2>/dev/null || true
}

@test "the tenant's fields become Worker secrets; a Worker reads env.OPENAI_API_KEY" {
	put_value global openai_api_key sk-global-1
	put_value global region eu
	put_value acme openai_api_key sk-acme
	run sync_once
	[ "$status" -eq 0 ]
	[ "$(secret_names | tr '\n' ' ')" = "OPENAI_API_KEY REGION " ]
	# The pattern a single-tenant Worker uses, verbatim.
	[ "$(h GET "/worker/$SCRIPT/openai" | jq -r .value)" = sk-global-1 ]
	[ "$(worker_env REGION)" = eu ]
	# Only the designated tenant: acme's fields are no secrets.
	[ "$(stat_of secret_put)" -eq 2 ]
	[ "$(acked_seq)" = "$(last_seq)" ]
	# Never a value in the request log.
	! h GET /__harness/requests | grep -q sk-global-1
}

@test "a changed field is pushed alone; a removed field is deleted; other tenants push nothing" {
	put_value global openai_api_key sk-one
	put_value global region eu
	start_agent
	wait_env OPENAI_API_KEY sk-one
	wait_acked
	h POST /__harness/reset >/dev/null
	put_value global openai_api_key sk-two
	wait_env OPENAI_API_KEY sk-two
	wait_acked
	run h GET /__harness/requests
	[ "$(jq -c '[.requests[] | [.route, .key]]' <<<"$output")" = '[["secret_put","OPENAI_API_KEY"]]' ]
	# Another tenant's change is acknowledged without a request.
	h POST /__harness/reset >/dev/null
	put_value acme openai_api_key sk-acme
	wait_acked
	[ "$(h GET /__harness/stats | jq -r .total)" -eq 0 ]
	# A removed field: its secret alone is deleted.
	wfv rm global region
	wait_env REGION null
	wait_acked
	run h GET /__harness/requests
	[ "$(jq -c '[.requests[] | [.route, .key]]' <<<"$output")" = '[["secret_delete","REGION"]]' ]
	[ "$(worker_env OPENAI_API_KEY)" = sk-two ]
	stop_agent
	# The log names secrets, never a value.
	! grep -q sk-two "$T/agent.log"
}

@test "a secret the vault never wrote is never deleted, before or after a restart" {
	cf PUT "" '{"name":"MANUAL_KEY","text":"by-hand","type":"secret_text"}' >/dev/null
	put_value global openai_api_key sk-1
	put_value global region eu
	put_value global tier gold
	run sync_once
	[ "$status" -eq 0 ]
	# A restart between the removal and the push: the names come from the
	# tenant's history, only those on the script's list are deleted.
	wfv rm global region
	run sync_once
	[ "$status" -eq 0 ]
	[ "$(secret_names | tr '\n' ' ')" = "MANUAL_KEY OPENAI_API_KEY TIER " ]
	[ "$(worker_env MANUAL_KEY)" = by-hand ]
	# While the agent runs: a deleted tenant takes every secret it wrote.
	start_agent
	wait_env OPENAI_API_KEY sk-1
	wait_acked
	wfv rm global
	wait_env OPENAI_API_KEY null
	wait_acked
	stop_agent
	[ "$(secret_names | tr '\n' ' ')" = "MANUAL_KEY " ]
	[ "$(worker_env MANUAL_KEY)" = by-hand ]
}

@test "a start with nothing pending pushes nothing; its first push sends every field" {
	put_value global openai_api_key sk-1
	put_value global region eu
	run sync_once
	[ "$status" -eq 0 ]
	[ "$(stat_of secret_put)" -eq 2 ]
	# Nothing new in the feed: each secret written would deploy a new
	# version of the Worker, so a new process (--once from cron) writes
	# nothing and does not even list the script.
	h POST /__harness/reset >/dev/null
	run sync_once
	[ "$status" -eq 0 ]
	[[ "$output" == *"up to date at seq 2 (0 written, 0 deleted, 0 requests)"* ]]
	[ "$(stat_of secret_put)" -eq 0 ]
	[ "$(stat_of secret_list)" -eq 0 ]
	# A change: a new process cannot know what the Worker holds (secrets
	# are write-only), so both fields go out.
	put_value global region us
	h POST /__harness/reset >/dev/null
	run sync_once
	[ "$status" -eq 0 ]
	[ "$(stat_of secret_put)" -eq 2 ]
	[ "$(h GET "/worker/$SCRIPT/openai" | jq -r .value)" = sk-1 ]
	[ "$(worker_env REGION)" = us ]
	# The service, started with nothing pending, knows what the Worker
	# holds: a change sends that field alone.
	start_agent
	wait_for_line "$T/agent.log" 600 "nothing to push at seq 3"
	h POST /__harness/reset >/dev/null
	put_value global region ap
	wait_env REGION ap
	wait_acked
	stop_agent
	[ "$(stat_of secret_put)" -eq 1 ]
}

@test "an unknown script is refused with Cloudflare's code and the setting to fix" {
	write_sync_conf no-such-worker
	put_value global openai_api_key sk-1
	run sync_once
	[ "$status" -ne 0 ]
	[[ "$output" == *"code 10007"* ]]
	[[ "$output" == *cf_script_name* ]]
	[[ "$output" != *sk-1* ]]
	# Nothing acknowledged: the change is still owed.
	[ "$(acked_seq)" != "$(last_seq)" ]
}

@test "--dry-run names the secrets it would write, never a value, and changes nothing" {
	put_value global openai_api_key sk-dry
	run timeout 120 "$WFVAULT_SYNC" -c "$T/sync.conf" --dry-run
	[ "$status" -eq 0 ]
	[[ "$output" == *"put secret OPENAI_API_KEY version 1"* ]]
	[[ "$output" != *sk-dry* ]]
	[ "$(h GET /__harness/stats | jq -r .total)" -eq 0 ]
	[ "$(acked_seq)" != "$(last_seq)" ]
}

@test "--reconcile writes back a secret deleted on the Worker by hand" {
	put_value global openai_api_key sk-1
	put_value global region eu
	run sync_once
	[ "$status" -eq 0 ]
	cf DELETE /OPENAI_API_KEY >/dev/null
	[ "$(worker_env OPENAI_API_KEY)" = null ]
	run timeout 120 "$WFVAULT_SYNC" -c "$T/sync.conf" --reconcile
	[ "$status" -eq 0 ]
	[ "$(worker_env OPENAI_API_KEY)" = sk-1 ]
	[ "$(worker_env REGION)" = eu ]
}

@test "a worker_secrets target whose endpoint hangs does not hold a KV target back" {
	# The hanging target comes first in the file: an agent going through
	# the targets one after the other would never reach the KV one.
	{
		echo "socket $SOCK"
		echo "cf_api_base $HURL/client/v4"
		echo "cf_account_id $ACCOUNT"
		echo "cf_api_token_file $T/token"
		echo "target worker"
		echo "kind worker_secrets"
		echo "cf_script_name $SCRIPT"
		echo "secrets_tenant global"
		echo "request_timeout 3600s"
		echo "target staging"
		echo "cf_namespace_id $NAMESPACE"
		echo "tenants acme"
	} >"$T/sync.conf"
	# The script's next secret write: taken, never answered (an hour).
	h POST /__harness/faults "[{\"route\":\"secret_put\",\"script\":\"$SCRIPT\",\"kind\":\"slow\",\"delay_ms\":3600000}]" >/dev/null
	put_value global openai_api_key sk-global
	put_value acme openai_api_key sk-acme-1
	start_agent
	wait_kv_acme sk-acme-1
	# ... while the secret write is out (or about to be), unanswered.
	wait_held_secret
	[ "$(h GET /__harness/stats | jq -r .in_flight)" -ge 1 ]
	[ "$(acked_seq)" = 0 ]
	[ "$(worker_env OPENAI_API_KEY)" = null ]
	put_value acme openai_api_key sk-acme-2
	wait_kv_acme sk-acme-2
	[ "$(held_secret_puts)" -eq 1 ]
	[ "$(acked_seq)" = 0 ]
	# SIGTERM reaches the hanging request: the service stops, status 0.
	rc=0
	stop_bg "$AGENT" || rc=$?
	[ "$rc" -eq 0 ]
}

# A KV target for every tenant and the worker_secrets target, as a new
# user would write them into one file.
write_two_targets() {
	{
		echo "socket $SOCK"
		echo "cf_api_base $HURL/client/v4"
		echo "cf_account_id $ACCOUNT"
		echo "cf_api_token_file $T/token"
		echo "target staging"
		echo "cf_namespace_id $NAMESPACE"
		echo "tenants *"
		echo "target worker"
		echo "kind worker_secrets"
		echo "cf_script_name ${1:-$SCRIPT}"
		echo "secrets_tenant global"
	} >"$T/sync.conf"
}

@test "a KV target and a worker_secrets target run from one configuration" {
	write_two_targets
	put_value global openai_api_key sk-global
	put_value acme openai_api_key sk-acme
	run sync_once
	[ "$status" -eq 0 ]
	# KV holds every tenant; the Worker's env holds global's fields.
	[ "$(h GET /tenant/acme/openai_api_key | jq -r .value)" = sk-acme ]
	[ "$(h GET /tenant/global/openai_api_key | jq -r .value)" = sk-global ]
	[ "$(h GET "/worker/$SCRIPT/openai" | jq -r .value)" = sk-global ]
	[ "$(secret_names)" = OPENAI_API_KEY ]
	[ "$(acked_seq)" = "$(last_seq)" ]
	[ "$(tp call sync_state '{"target":"staging"}' | jq -r .result.acked_seq)" = "$(last_seq)" ]
}

@test "a failing worker_secrets target does not hold the KV target back" {
	write_two_targets no-such-worker
	put_value global openai_api_key sk-global
	run sync_once
	[ "$status" -ne 0 ]
	[[ "$output" == *cf_script_name* ]]
	[ "$(h GET /tenant/global/openai_api_key | jq -r .value)" = sk-global ]
	[ "$(tp call sync_state '{"target":"staging"}' | jq -r .result.acked_seq)" = "$(last_seq)" ]
	[ "$(acked_seq)" != "$(last_seq)" ]
}

check_run() {
	timeout 120 "$WFVAULT_SYNC" -c "$T/sync.conf" --check
}

# The secrets the check deleted (the request log's DELETEs).
secret_deletes() {
	h GET /__harness/requests |
	    jq -r '.requests[] | select(.route == "secret_delete") | .path'
}

@test "--check proves write access by deleting a secret no field can have" {
	cf PUT "" '{"name":"REGION","text":"eu","type":"secret_text"}' >/dev/null
	h POST /__harness/reset >/dev/null
	run check_run
	[ "$status" -eq 0 ]
	[ "$output" = "worker: ok (user token active, script $SCRIPT, 1 secrets; write allowed)" ]
	# One DELETE, of the reserved lowercase name; nothing written.
	[ "$(secret_deletes)" = "/client/v4/accounts/$ACCOUNT/workers/scripts/$SCRIPT/secrets/wfvault_preflight" ]
	[ "$(stat_of secret_put)" -eq 0 ]
	[ "$(secret_names)" = REGION ]
	[ "$(worker_env REGION)" = eu ]
}

@test "--check with a token that may not change secrets names Workers Scripts: Edit" {
	cf PUT "" '{"name":"REGION","text":"eu","type":"secret_text"}' >/dev/null
	printf 'test-readonly-token\n' >"$T/token.ro"
	chmod 0400 "$T/token.ro"
	sed -i "s|^cf_api_token_file .*|cf_api_token_file $T/token.ro|" "$T/sync.conf"
	run check_run
	[ "$status" -eq 1 ]
	[[ "$output" == "worker: FAILED: "*"may list the secrets"*"but not change them"* ]]
	[[ "$output" == *'"Workers Scripts: Edit" permission (account level)'* ]]
	[[ "$output" == *cf_api_token_file* ]]
	[[ "$output" == *"code 10000"* ]]
	[[ "$output" != *KV* ]]
	[[ "$output" != *test-readonly-token* ]]
	[ "$(secret_names)" = REGION ]
}

@test "--check never deletes a secret by the reserved name; it says write was not proven" {
	cf PUT "" '{"name":"wfvault_preflight","text":"keep","type":"secret_text"}' >/dev/null
	h POST /__harness/reset >/dev/null
	run check_run
	[ "$status" -eq 0 ]
	[[ "$output" == "worker: ok (user token active, script $SCRIPT, 1 secrets; write not proven: "*wfvault_preflight*"not delete"* ]]
	[ "$(stat_of secret_delete)" -eq 0 ]
	[ "$(secret_names)" = wfvault_preflight ]
	[ "$(worker_env wfvault_preflight)" = keep ]
}

@test "a refused token of a worker_secrets target names Workers Scripts: Edit, not KV" {
	put_value global openai_api_key sk-1
	printf 'wrong-token\n' >"$T/token.bad"
	chmod 0400 "$T/token.bad"
	sed -i "s|^cf_api_token_file .*|cf_api_token_file $T/token.bad|" "$T/sync.conf"
	run sync_once
	[ "$status" -ne 0 ]
	[[ "$output" == *'"Workers Scripts: Edit" permission (account level)'* ]]
	[[ "$output" == *cf_api_token_file* ]]
	[[ "$output" != *"Workers KV"* ]]
	[[ "$output" != *sk-1* ]]
	[[ "$output" != *wrong-token* ]]

	# A token that may read but not write: the PUT's 403.
	sed -i "s|^cf_api_token_file .*|cf_api_token_file $T/token.ro|" "$T/sync.conf"
	printf 'test-readonly-token\n' >"$T/token.ro"
	chmod 0400 "$T/token.ro"
	run sync_once
	[ "$status" -ne 0 ]
	[[ "$output" == *"writing Worker secret OPENAI_API_KEY"*'"Workers Scripts: Edit" permission (account level)'* ]]
	[[ "$output" == *cf_api_token_file* ]]
	[[ "$output" != *"Workers KV"* ]]
	[ "$(acked_seq)" != "$(last_seq)" ]
	[ -z "$(secret_names)" ]
}

@test "a wrong cf_account_id of a worker_secrets target is named, not the script" {
	# Cloudflare answers a wrong account in the path with a 404 too, but
	# with code 7003: the script name is not what is wrong.
	sed -i "s|^cf_account_id .*|cf_account_id aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa|" "$T/sync.conf"
	run check_run
	[ "$status" -eq 1 ]
	[[ "$output" == "worker: FAILED: "*"no such account"*"code 7003"*"check cf_account_id"* ]]
	[[ "$output" != *cf_script_name* ]]
	[[ "$output" != *namespace* ]]

	put_value global openai_api_key sk-1
	run sync_once
	[ "$status" -ne 0 ]
	[[ "$output" == *"no such account"*"check cf_account_id"* ]]
	[[ "$output" != *cf_script_name* ]]
	[[ "$output" != *sk-1* ]]
	[ "$(acked_seq)" != "$(last_seq)" ]

	# A missing script still names cf_script_name.
	write_sync_conf no-such-worker
	run check_run
	[ "$status" -eq 1 ]
	[[ "$output" == "worker: FAILED: the Worker script 'no-such-worker' was not found"*cf_script_name* ]]
}
