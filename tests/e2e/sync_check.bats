#!/usr/bin/env bats
# wfvault-sync against Cloudflare's refusals, on the local stand-in: every
# error code the API sends gets its own message naming the setting to fix,
# --check proves the setup before any write, and --reconcile --prune
# deletes only keys the agent wrote, never a mass of them unasked.

load helpers

WFVAULT_SYNC=$E2E_BUILD/wfvault-sync
ACCOUNT=0123456789abcdef0123456789abcdef
NAMESPACE=fedcba9876543210fedcba9876543210

setup_file() {
	sync_suite_start
}

teardown_file() {
	harness_stop
}

setup() {
	sync_test_setup
	write_sync_conf
	API="$HURL/client/v4/accounts/$ACCOUNT/storage/kv/namespaces/$NAMESPACE"
}

teardown() {
	wfv_teardown
}


stat_of() {
	h GET /__harness/stats | jq -r ".requests.$1 // 0"
}

set_token() {
	[ ! -e "$T/token" ] || chmod 0600 "$T/token"
	printf '%s\n' "$1" >"$T/token"
	chmod 0400 "$T/token"
}

# write_sync_conf [ACCOUNT [NAMESPACE [MORE LINES...]]]
write_sync_conf() {
	{
		echo "socket $SOCK"
		echo "target default"
		echo "cf_api_base $HURL/client/v4"
		echo "cf_account_id ${1:-$ACCOUNT}"
		echo "cf_namespace_id ${2:-$NAMESPACE}"
		echo "cf_api_token_file $T/token"
		shift 2 2>/dev/null || shift $#
		printf '%s\n' "$@"
	} >"$T/sync.conf"
}

sync_run() {
	timeout 120 "$WFVAULT_SYNC" -c "$T/sync.conf" "$@"
}

acked_seq() {
	tp call sync_state '{"target":"default"}' | jq -r '.result.acked_seq'
}

# Writes KV keys behind the agent's back: kv_put JSON-ARRAY.
kv_put() {
	curl -sS -X PUT -H 'Authorization: Bearer test-token' \
	    -H 'Content-Type: application/json' --data-binary "$1" \
	    "$API/bulk" >/dev/null
}

kv_has() {
	[ "$(curl -sS -o /dev/null -w '%{http_code}' \
	    -H 'Authorization: Bearer test-token' "$API/values/$1")" = 200 ]
}

kv_meta() {
	curl -sS -H 'Authorization: Bearer test-token' "$API/metadata/$1" |
	    jq -c .result
}

@test "--check passes for a user-owned and an account-owned token, writing nothing" {
	run sync_run --check
	[ "$status" -eq 0 ]
	[ "$output" = "default: ok (user token active, namespace TENANT_CONFIGS, write allowed)" ]
	# The write check deleted the reserved key, and only that.
	h GET /__harness/requests | jq -e '[.requests[] | select(.route == "bulk_delete")] | length == 1'
	[ "$(stat_of bulk_put)" -eq 0 ]
	[ "$(h GET /__harness/stats | jq -r .total)" -eq 3 ]

	set_token test-account-token
	run sync_run --check
	[ "$status" -eq 0 ]
	[ "$output" = "default: ok (account token active, namespace TENANT_CONFIGS, write allowed)" ]
	[ "$(stat_of account_verify_token)" -eq 1 ]
}

@test "--check fails for each wrong setting and names it" {
	set_token wrong-token
	run sync_run --check
	[ "$status" -eq 1 ]
	[[ "$output" == "default: FAILED: "*cf_api_token_file* ]]
	[[ "$output" != *wrong-token* ]]

	# Quotes around the token: Cloudflare cannot parse the header.
	set_token '"test-token"'
	run sync_run --check
	[ "$status" -eq 1 ]
	[[ "$output" == *"malformed"*cf_api_token_file* ]]

	set_token test-readonly-token
	run sync_run --check
	[ "$status" -eq 1 ]
	[[ "$output" == *"may read KV namespace"*"but not write"*"Workers KV Storage Write"* ]]
	[[ "$output" != *test-readonly-token* ]]

	set_token test-token
	write_sync_conf aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
	run sync_run --check
	[ "$status" -eq 1 ]
	[[ "$output" == *"no such account or namespace"*cf_account_id* ]]

	write_sync_conf "$ACCOUNT" bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb
	run sync_run --check
	[ "$status" -eq 1 ]
	[[ "$output" == *"namespace was not found"*cf_namespace_id* ]]
	[[ "$output" != *cf_api_token_file* ]]

	# A challenge page is not blamed on the token.
	write_sync_conf
	h POST /__harness/faults '[{"route":"verify_token","kind":"challenge"}]'
	run sync_run --check
	[ "$status" -eq 1 ]
	[[ "$output" == *"challenge page"*"not a token problem"* ]]
	[[ "$output" != *cf_api_token_file* ]]
	# Nothing was ever written.
	[ "$(stat_of bulk_put)" -eq 0 ]
}

# The one line of $output that starts with "$1: " (targets are checked
# side by side, so their lines come in no fixed order); fails unless
# there is exactly one.
target_line() {
	local got
	got=$(grep -c "^$1: " <<<"$output")
	[ "$got" -eq 1 ] || {
		echo "$got lines for target $1 in: $output" >&2
		return 1
	}
	grep "^$1: " <<<"$output"
}

@test "--check prints one line per target, each with its own token" {
	printf 'test-account-token\n' >"$T/token2"
	chmod 0400 "$T/token2"
	{
		echo "socket $SOCK"
		echo "cf_api_base $HURL/client/v4"
		echo "cf_account_id $ACCOUNT"
		echo "cf_api_token_file $T/token"
		echo "target staging"
		echo "cf_namespace_id $NAMESPACE"
		echo "target production"
		echo "cf_namespace_id $NAMESPACE"
		echo "cf_api_token_file $T/token2"
		echo "kv_key_prefix prod:"
		echo "target broken"
		echo "cf_namespace_id bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	} >"$T/sync.conf"
	run sync_run --check
	[ "$status" -eq 1 ]
	# One line per target, in the order the targets finish.
	[ "$(target_line staging)" = "staging: ok (user token active, namespace TENANT_CONFIGS, write allowed)" ]
	[ "$(target_line production)" = "production: ok (account token active, namespace TENANT_CONFIGS, write allowed)" ]
	[[ "$(target_line broken)" == "broken: FAILED: "*cf_namespace_id* ]]
	[ "${#lines[@]}" -eq 3 ]
	# Each target's write check used its own prefix.
	h GET /__harness/requests | jq -e '[.requests[] | select(.route == "bulk_delete")] | length == 2'

	# --target picks one of them.
	run sync_run --check --target production
	[ "$status" -eq 0 ]
	[ "$output" = "production: ok (account token active, namespace TENANT_CONFIGS, write allowed)" ]
	run sync_run --check --target broken
	[ "$status" -eq 1 ]
	[[ "$output" == "broken: FAILED: "*cf_namespace_id* ]]

	# A token file that cannot be read fails its own line only.
	echo "cf_api_token_file $T/missing-token" >>"$T/sync.conf"
	run sync_run --check
	[ "$status" -eq 1 ]
	[ "$(target_line staging)" = "staging: ok (user token active, namespace TENANT_CONFIGS, write allowed)" ]
	[ "$(target_line production)" = "production: ok (account token active, namespace TENANT_CONFIGS, write allowed)" ]
	[[ "$(target_line broken)" == "broken: FAILED: "*"$T/missing-token"* ]]
	[ "${#lines[@]}" -eq 3 ]
}

@test "every Cloudflare error code on a write stops at once with its message" {
	put_value acme openai_api_key sk-codes
	local n=0 fault want
	while IFS='|' read -r fault want; do
		h DELETE /__harness/faults >/dev/null
		h POST /__harness/faults "[$fault]" >/dev/null
		run sync_run --once
		[ "$status" -eq 1 ] || { echo "$fault: status $status"; false; }
		[[ "$output" == *$want* ]] || { echo "$fault: $output"; false; }
		# The failure names the target, even the only one.
		[[ "$output" == *"default: KV is not up to date: "* ]]
		[[ "$output" != *sk-codes* ]]
		# Refused, not retried: one request per fault.
		n=$((n + 1))
		[ "$(stat_of bulk_put)" -eq "$n" ] || { echo "$fault: retried"; false; }
		[ "$(acked_seq)" = 0 ]
	done <<'EOF'
{"route":"bulk_put","kind":"cf_error","status":403,"code":10000}|token was refused*10000*cf_api_token_file
{"route":"bulk_put","kind":"cf_error","status":403,"code":9109}|token was refused*9109*cf_api_token_file
{"route":"bulk_put","kind":"cf_error","status":400,"code":6003,"chain":6111}|malformed*cf_api_token_file
{"route":"bulk_put","kind":"cf_error","status":400,"code":6111}|malformed*cf_api_token_file
{"route":"bulk_put","kind":"cf_error","status":400,"code":7003}|no such account or namespace*cf_account_id
{"route":"bulk_put","kind":"cf_error","status":404,"code":7000}|no such account or namespace*cf_namespace_id
{"route":"bulk_put","kind":"cf_error","status":404,"code":10013}|namespace was not found*cf_namespace_id
{"route":"bulk_put","kind":"cf_error","status":429,"code":10048}|daily limit*00:00 UTC
{"route":"bulk_put","kind":"cf_error","status":404,"code":10009}|key was not found*cf_namespace_id
{"route":"bulk_put","kind":"challenge"}|challenge page*not a token problem
EOF
	# With the refusals gone, the same change goes through.
	h DELETE /__harness/faults >/dev/null
	run sync_run --once
	[ "$status" -eq 0 ]
}

@test "at 10048 the long-running agent waits for 00:00 UTC instead of retrying" {
	put_value acme openai_api_key sk-daily
	h POST /__harness/faults '[{"route":"bulk_put","kind":"cf_error","status":429,"code":10048,"times":100}]'
	bg "$WFVAULT_SYNC" -c "$T/sync.conf" 2>"$T/agent.log"
	wait_for_line "$T/agent.log" 600 "waiting until 00:00 UTC"
	grep -q "daily limit" "$T/agent.log"
	! grep -q "$(printf 'sk-daily')" "$T/agent.log"
	# It logged that after its one write and sleeps now.
	[ "$(stat_of bulk_put)" -eq 1 ]
	kill -0 "$BG_PID"
	kill -TERM "$BG_PID"
	wait "$BG_PID"
	# One request: it did not retry the refused write.
	[ "$(stat_of bulk_put)" -eq 1 ]
	[ "$(acked_seq)" = 0 ]
}

@test "a target whose preflight fails writes nothing, is checked again, then pushes" {
	put_value acme openai_api_key sk-pre
	# The first look at the namespace is refused; the next one passes.
	h POST /__harness/faults '[{"route":"namespaces","kind":"cf_error","status":404,"code":10013}]'
	bg "$WFVAULT_SYNC" -c "$T/sync.conf" 2>"$T/agent.log"
	wait_for_line "$T/agent.log" 600 "default: preflight failed"
	grep -q "default: preflight failed: .*cf_namespace_id.*trying again in 5 s" "$T/agent.log"
	# Not stopped: it checks again and then pushes.
	wait_until 600 prints 1 acked_seq
	kv_has acme
	[ "$(stat_of bulk_put)" -eq 1 ]
	[ "$(stat_of namespaces)" -eq 2 ]
	kill -0 "$BG_PID"
	kill -TERM "$BG_PID"
	wait "$BG_PID"
}

@test "values carry the ownership mark; --prune never touches unmarked keys" {
	put_value acme openai_api_key sk-1
	for t in b1 b2 b3 b4 b5 b6 b7 b8 b9; do
		put_value "$t" openai_api_key "sk-$t"
	done
	run sync_run --once
	[ "$status" -eq 0 ]
	[ "$(kv_meta acme)" = '{"version":1,"wfvault":1}' ]
	# Keys wfvault never wrote: no metadata, another tool's, and a
	# version without the mark (as an older agent wrote them).
	kv_put '[{"key":"ghost","value":"{}"},{"key":"other","value":"{}","metadata":{"owner":"x"}},{"key":"legacy","value":"{}","metadata":{"version":3}}]'
	wfv rm b9 >/dev/null
	run sync_run --reconcile --prune --force
	[ "$status" -eq 0 ]
	[[ "$output" == *"stale ghost (not written by wfvault, kept)"* ]]
	[[ "$output" == *"stale legacy"*"kept"* ]]
	! kv_has b9
	kv_has ghost
	kv_has other
	kv_has legacy
	kv_has acme
}

@test "a key outside the target's tenants is labelled by its mark" {
	write_sync_conf "$ACCOUNT" "$NAMESPACE" "tenants a*"
	put_value a1 openai_api_key sk-a1
	# zz is in the vault, but this target leaves it out.
	put_value zz openai_api_key sk-zz
	run sync_run --once
	[ "$status" -eq 0 ]
	! kv_has zz
	# Outside the tenants: one without the mark (written by hand, so
	# not wfvault's at all), one with it (another target's).
	# And one another target wrote under its prefix ("t:" cannot be in a
	# tenant id, so it is no key of this target's at all).
	kv_put '[{"key":"zz","value":"{}"},{"key":"zm","value":"{}","metadata":{"version":1,"wfvault":1}},{"key":"t:a2","value":"{}","metadata":{"version":1,"wfvault":1}}]'
	run sync_run --reconcile
	[ "$status" -eq 0 ]
	# None of them is this target's to delete: no hint to --prune.
	[[ "$output" != *"run with --reconcile --prune"* ]]
	run sync_run --reconcile --prune --force
	[ "$status" -eq 0 ]
	[[ "$output" == *"stale zz (not written by wfvault, kept)"* ]]
	[[ "$output" == *"stale zm (a tenant outside this target's tenants, kept)"* ]]
	[[ "$output" == *"stale t:a2 (written by wfvault, but not a tenant key of this target's prefix, kept)"* ]]
	kv_has zz
	kv_has zm
	kv_has t:a2
	kv_has a1
}

@test "--prune refuses a mass delete without --force, printing the keys" {
	for t in a1 a2 a3 a4 a5 a6 a7 a8 a9 a10; do
		put_value "$t" openai_api_key "sk-$t"
	done
	run sync_run --once
	[ "$status" -eq 0 ]
	kv_put '[{"key":"ghost","value":"{}"}]'
	# As if the agent pointed at another vault: half the tenants gone.
	for t in a1 a2 a3 a4 a5; do
		wfv rm "$t" >/dev/null
	done
	h POST /__harness/reset >/dev/null
	run sync_run --reconcile --prune
	[ "$status" -eq 1 ]
	for t in a1 a2 a3 a4 a5; do
		[[ "$output" == *"would delete $t"* ]]
	done
	[[ "$output" != *"would delete ghost"* ]]
	[[ "$output" == *"refusing to delete 5 of the 10 keys"*"prune_max_share"*"--force"* ]]
	# Nothing was changed.
	[ "$(stat_of bulk_delete)" -eq 0 ]
	[ "$(stat_of bulk_put)" -eq 0 ]
	kv_has a1
	# A larger share in the config lets it through.
	write_sync_conf "$ACCOUNT" "$NAMESPACE" "prune_max_share 50%"
	run sync_run --reconcile --prune --dry-run
	[ "$status" -eq 0 ]
	write_sync_conf
	run sync_run --reconcile --prune --force
	[ "$status" -eq 0 ]
	! kv_has a1
	! kv_has a5
	kv_has a6
	kv_has ghost
}

@test "--reconcile adds the mark to values an older agent wrote" {
	put_value acme openai_api_key sk-old
	run sync_run --once
	[ "$status" -eq 0 ]
	kv_put '[{"key":"acme","value":"{\"openai_api_key\":\"sk-old\"}","metadata":{"version":1}}]'
	[ "$(kv_meta acme)" = '{"version":1}' ]
	run sync_run --reconcile
	[ "$status" -eq 0 ]
	[[ "$output" == *"1 rewritten"* ]]
	[ "$(kv_meta acme)" = '{"version":1,"wfvault":1}' ]
}

@test "prune_max_share and --force are checked" {
	write_sync_conf "$ACCOUNT" "$NAMESPACE" "prune_max_share 101%"
	run "$WFVAULT_SYNC" -c "$T/sync.conf" -n
	[ "$status" -eq 2 ]
	[[ "$output" == *prune_max_share*"0% to 100%"* ]]
	write_sync_conf "$ACCOUNT" "$NAMESPACE" "prune_max_share 25"
	run "$WFVAULT_SYNC" -c "$T/sync.conf" -n
	[ "$status" -eq 0 ]
	run "$WFVAULT_SYNC" -c "$T/sync.conf" --reconcile --force
	[ "$status" -eq 2 ]
	[[ "$output" == *"--force works only with --reconcile --prune"* ]]
	run "$WFVAULT_SYNC" -c "$T/sync.conf" --check --once
	[ "$status" -eq 2 ]
	[ "$(h GET /__harness/stats | jq -r .total)" -eq 0 ]
}

@test "--check of an endpoint that never answers fails within a few attempts" {
	# request_timeout is for large bulk writes; a preflight request is
	# tiny and gets at most 3 attempts of at most 30 s each.  Before,
	# this check waited 8 times an hour.
	write_sync_conf "$ACCOUNT" "$NAMESPACE" "request_timeout 3600s"
	h POST /__harness/faults "[{\"route\":\"namespaces\",\"namespace\":\"$NAMESPACE\",\"kind\":\"slow\",\"delay_ms\":3600000,\"times\":10}]" >/dev/null
	run timeout 300 "$WFVAULT_SYNC" -c "$T/sync.conf" --check
	h DELETE /__harness/faults >/dev/null
	[ "$status" -eq 1 ]
	[[ "$output" == *"default: FAILED: "*"gave up after 3 attempts"*"no reply within"* ]]
	[ "$(stat_of bulk_delete)" -eq 0 ]
}

@test "--check names the token file the refused target uses, once" {
	printf 'wrong-token\n' >"$T/prod.token"
	chmod 0400 "$T/prod.token"
	# The target's own file is named, not the setting in general.
	sed -i "s|^cf_api_token_file .*|cf_api_token_file $T/prod.token|" "$T/sync.conf"
	run sync_run --check
	[ "$status" -eq 1 ]
	[[ "$output" == "default: FAILED: "*"cf_api_token_file $T/prod.token"* ]]
	[[ "$output" != *"(or cf_api_token_credential)"* ]]
	[[ "$output" != *wrong-token* ]]

	# A read-only token: what to give it is said once.
	set_token test-readonly-token
	write_sync_conf
	run sync_run --check
	[ "$status" -eq 1 ]
	[[ "$output" == *"but not write to it"*"code 10000"*"give the token in cf_api_token_file $T/token the \"Workers KV Storage Write\""* ]]
	[ "$(grep -o permission <<<"$output" | wc -l)" -eq 1 ]
	[[ "$output" != *"was refused"* ]]
	[[ "$output" != *test-readonly-token* ]]
}
