#!/usr/bin/env bats
# Sealed values end to end: the real daemon and agent write to the local
# Cloudflare stand-in (Miniflare), and a Worker using edge/wfvault-config.js
# on workerd (tests/worker/edge_read.mjs) reads what the agent wrote.

load helpers

WFVAULT_SYNC=$E2E_BUILD/wfvault-sync
EDGE_READ=$E2E_ROOT/tests/worker/edge_read.mjs
ACCOUNT=0123456789abcdef0123456789abcdef
NAMESPACE=fedcba9876543210fedcba9876543210

# One harness for the file; each test gets a clean KV and its own daemon.
setup_file() {
	sync_suite_start
}

teardown_file() {
	harness_stop
}

setup() {
	sync_test_setup
	API="$HURL/client/v4/accounts/$ACCOUNT/storage/kv/namespaces/$NAMESPACE"
}

teardown() {
	wfv_teardown
}


# The KV API: kv METHOD PATH [BODY].
kv() {
	curl -sS --max-time 30 -X "$1" -H 'Authorization: Bearer test-token' \
	    ${3:+-H 'Content-Type: application/json' --data-binary "$3"} "$API$2"
}

stat_of() {
	h GET /__harness/stats | jq -r ".requests.$1 // 0"
}

# One target "default" with prefix tenant: and the given extra lines.
write_sync_conf() {
	{
		echo "socket $SOCK"
		echo "cf_api_base $HURL/client/v4"
		echo "cf_account_id $ACCOUNT"
		echo "cf_namespace_id $NAMESPACE"
		echo "cf_api_token_file $T/token"
		echo "kv_key_prefix tenant:"
		printf '%s\n' "$@"
	} >"$T/sync.conf"
}

# What a Worker using the module reads for tenant $1: edge_read OPTIONS.
edge_read() {
	local tenant=$1
	shift
	timeout 120 node "$EDGE_READ" "$HURL/client/v4" "$ACCOUNT" \
	    "$NAMESPACE" "$T/token" "$tenant" --prefix tenant: "$@"
}

# The key id --gen-seal-key printed for file $1.
gen_key() {
	"$WFVAULT_SYNC" --gen-seal-key "$1" | sed -n 's/.*(key id \([0-9a-f]*\)).*/\1/p'
}

@test "a sealed target writes ciphertext that only a Worker with the key opens" {
	kid=$(gen_key "$T/seal.key")
	[ "${#kid}" -eq 16 ]
	[ "$(stat -c %a "$T/seal.key")" = 400 ]
	write_sync_conf "seal_key_file $T/seal.key"
	run "$WFVAULT_SYNC" -c "$T/sync.conf" -n
	[ "$status" -eq 0 ]
	put_value acme openai_api_key sk-acme-sealed-1
	put_value acme linkedin_client_id li-acme-1
	run timeout 120 "$WFVAULT_SYNC" -c "$T/sync.conf" --once
	[ "$status" -eq 0 ]

	# KV holds the envelope: no secret, no field name.
	run kv GET /values/tenant:acme
	[ "$status" -eq 0 ]
	[[ "$output" != *sk-acme-sealed-1* ]]
	[[ "$output" != *openai_api_key* ]]
	[[ "$output" != *li-acme-1* ]]
	[ "$(jq -r .wfvault_sealed <<<"$output")" = 1 ]
	[ "$(jq -r .kid <<<"$output")" = "$kid" ]
	[ "$(jq -r .v <<<"$output")" = 2 ]
	run kv GET /metadata/tenant:acme
	[ "$(jq -r .result.kid <<<"$output")" = "$kid" ]
	[ "$(jq -r .result.version <<<"$output")" = 2 ]
	# The plain consumer route sees only the envelope.
	[ "$(h GET '/tenant/acme?prefix=tenant:' | jq -r '.config.openai_api_key')" = null ]

	# A Worker with the key reads exactly the config the vault holds.
	run edge_read acme --key-file "$T/seal.key"
	[ "$status" -eq 0 ]
	[ "$(jq -r .ok <<<"$output")" = true ]
	[ "$(jq -cS .config <<<"$output")" = "$(wfv get acme --json | jq -cS .fields)" ]
	[ "$(jq -r .config.openai_api_key <<<"$output")" = sk-acme-sealed-1 ]

	# Without the key, or with another one, it cannot.
	run edge_read acme
	[ "$status" -eq 0 ]
	[ "$(jq -r .ok <<<"$output")" = false ]
	[[ "$(jq -r .error <<<"$output")" == *"no WFVAULT_SEAL_KEY"* ]]
	gen_key "$T/other.key" >/dev/null
	run edge_read acme --key-file "$T/other.key"
	[ "$(jq -r .ok <<<"$output")" = false ]
	[[ "$(jq -r .error <<<"$output")" == *"key id $kid"* ]]
	[[ "$output" != *sk-acme-sealed-1* ]]
}

@test "a sealed value moved to another tenant's key does not open" {
	gen_key "$T/seal.key" >/dev/null
	write_sync_conf "seal_key_file $T/seal.key"
	put_value acme openai_api_key sk-acme-2
	put_value globex openai_api_key sk-globex-2
	run timeout 120 "$WFVAULT_SYNC" -c "$T/sync.conf" --once
	[ "$status" -eq 0 ]
	[ "$(edge_read globex --key-file "$T/seal.key" | jq -r .config.openai_api_key)" = sk-globex-2 ]
	# Someone with KV write access copies acme's value over globex's.
	kv GET /values/tenant:acme >"$T/acme.value"
	curl -sS -X PUT -H 'Authorization: Bearer test-token' \
	    --data-binary @"$T/acme.value" "$API/values/tenant:globex" >/dev/null
	run edge_read globex --key-file "$T/seal.key"
	[ "$(jq -r .ok <<<"$output")" = false ]
	[[ "$(jq -r .error <<<"$output")" == *"does not open for tenant \"globex\""* ]]
	[[ "$output" != *sk-acme-2* ]]
}

@test "sealing an existing namespace and rotating the key: --reconcile re-seals" {
	put_value acme openai_api_key sk-acme-3
	put_value beta openai_api_key sk-beta-3
	write_sync_conf
	run timeout 120 "$WFVAULT_SYNC" -c "$T/sync.conf" --once
	[ "$status" -eq 0 ]
	# Unsealed values: refused unless allowed.
	[[ "$(edge_read acme | jq -r .error)" == *"is not sealed"* ]]
	[ "$(edge_read acme --allow-plaintext | jq -r .config.openai_api_key)" = sk-acme-3 ]

	# Turning sealing on: --reconcile seals every value.
	kid1=$(gen_key "$T/seal1.key")
	write_sync_conf "seal_key_file $T/seal1.key"
	puts=$(stat_of bulk_put)
	run timeout 120 "$WFVAULT_SYNC" -c "$T/sync.conf" --reconcile
	[ "$status" -eq 0 ]
	[ "$(stat_of bulk_put)" -eq $((puts + 1)) ]
	[ "$(kv GET /values/tenant:beta | jq -r .kid)" = "$kid1" ]
	[ "$(edge_read beta --key-file "$T/seal1.key" | jq -r .config.openai_api_key)" = sk-beta-3 ]

	# Rotation: the Worker gets both keys first, and reads the old seals.
	kid2=$(gen_key "$T/seal2.key")
	[ "$kid2" != "$kid1" ]
	both=(--key-file "$T/seal2.key" --previous-key-file "$T/seal1.key")
	[ "$(edge_read acme "${both[@]}" | jq -r .config.openai_api_key)" = sk-acme-3 ]
	write_sync_conf "seal_key_file $T/seal2.key"
	puts=$(stat_of bulk_put)
	run timeout 120 "$WFVAULT_SYNC" -c "$T/sync.conf" --reconcile
	[ "$status" -eq 0 ]
	[ "$(stat_of bulk_put)" -eq $((puts + 1)) ]
	for t in acme beta; do
		[ "$(kv GET /values/tenant:$t | jq -r .kid)" = "$kid2" ]
		[ "$(kv GET /metadata/tenant:$t | jq -r .result.kid)" = "$kid2" ]
	done
	# Nothing left under the old key: the Worker can drop it.
	[ "$(edge_read acme "${both[@]}" | jq -r .config.openai_api_key)" = sk-acme-3 ]
	[ "$(edge_read beta --key-file "$T/seal2.key" | jq -r .config.openai_api_key)" = sk-beta-3 ]
	[ "$(edge_read beta --key-file "$T/seal1.key" | jq -r .ok)" = false ]
	# A second reconcile has nothing to write.
	puts=$(stat_of bulk_put)
	run timeout 120 "$WFVAULT_SYNC" -c "$T/sync.conf" --reconcile
	[ "$status" -eq 0 ]
	[ "$(stat_of bulk_put)" -eq "$puts" ]
}

@test "a bad seal key is refused at start-up, naming the target" {
	printf 'not a key\n' >"$T/bad.key"
	chmod 0400 "$T/bad.key"
	write_sync_conf "seal_key_file $T/bad.key"
	run "$WFVAULT_SYNC" -c "$T/sync.conf" -n
	[ "$status" -eq 2 ]
	[[ "$output" == *"target default"*"seal key $T/bad.key"* ]]
	[[ "$output" == *"--gen-seal-key"* ]]
	run "$WFVAULT_SYNC" --gen-seal-key "$T/bad.key"
	[ "$status" -eq 1 ]
	[[ "$output" == *"never overwritten"* ]]
	[ "$(cat "$T/bad.key")" = "not a key" ]
}
