#!/usr/bin/env bats
# One wfvault-sync configuration with every kind of target the README
# describes, as a new user would set it up: a staging namespace, a
# production namespace with sealed values, and a Worker's secrets for the
# single-tenant pattern.  One agent process, the real daemon and the local
# Cloudflare stand-in (tests/worker), which serves two namespaces and a
# Worker script; a Worker reads each of them.

load helpers

WFVAULT_SYNC=$E2E_BUILD/wfvault-sync
EDGE_READ=$E2E_ROOT/tests/worker/edge_read.mjs
ACCOUNT=0123456789abcdef0123456789abcdef
STAGING=fedcba9876543210fedcba9876543210
PRODUCTION=00112233445566778899aabbccddeeff
SCRIPT=my-worker

setup_file() {
	sync_suite_start --namespace "$STAGING" --namespace2 "$PRODUCTION" --script "$SCRIPT"
}

teardown_file() {
	harness_stop
}

setup() {
	sync_test_setup
	"$WFVAULT_SYNC" --gen-seal-key "$T/seal.key" >/dev/null
	cat >"$T/sync.conf" <<-EOF
	socket            $SOCK
	cf_api_base       $HURL/client/v4
	cf_account_id     $ACCOUNT
	cf_api_token_file $T/token

	target staging
	cf_namespace_id   $STAGING
	kv_key_prefix     tenant:
	tenants           staging-*

	target production
	cf_namespace_id   $PRODUCTION
	kv_key_prefix     tenant:
	tenants           prod-*
	seal_key_file     $T/seal.key

	target worker
	kind              worker_secrets
	cf_script_name    $SCRIPT
	secrets_tenant    global
	EOF
}

teardown() {
	if [ -n "${APID:-}" ]; then
		kill -TERM "$APID" 2>/dev/null || true
		wait "$APID" 2>/dev/null || true
	fi
	wfv_teardown
}

# What a plain Worker bound to namespace $1 reads for tenant $2's field $3.
kv_field() {
	curl -sS --max-time 30 "$HURL/tenant/$2/$3?namespace=$1&prefix=tenant:" |
	    jq -r .value
}

# The raw KV value of key $2 in namespace $1, through the REST API.
kv_raw() {
	curl -sS --max-time 30 -H 'Authorization: Bearer test-token' \
	    "$HURL/client/v4/accounts/$ACCOUNT/storage/kv/namespaces/$1/values/$2"
}

# What a Worker using edge/wfvault-config.js with the key reads for $1.
sealed_config() {
	timeout 120 node "$EDGE_READ" "$HURL/client/v4" "$ACCOUNT" \
	    "$PRODUCTION" "$T/token" "$1" --prefix tenant: \
	    --key-file "$T/seal.key" | jq -cS .config
}

# What the Worker script reads from env.$1.
worker_env() {
	curl -sS --max-time 30 "$HURL/worker/$SCRIPT/env/$1" | jq -r .value
}

# How many targets `wfvault status` shows with lag 0.
lagless_targets() {
	"$WFVAULT" -s "$SOCK" status | grep -c '^target .*, lag 0$'
}

# Waits (60 s at most) until command "${@:2}" prints $1; its stderr is
# shown only when it never does.
wait_prints() {
	wait_until 600 prints "$@" 2>/dev/null && return 0
	echo "still not '$1': $("${@:2}" 2>&1)" >&2
	return 1
}

@test "staging, sealed production and Worker secrets from one configuration" {
	run "$WFVAULT_SYNC" -c "$T/sync.conf" -n
	[ "$status" -eq 0 ]
	put_value staging-acme openai_api_key sk-staging-acme-1
	put_value prod-acme openai_api_key sk-prod-acme-1
	put_value global openai_api_key sk-global-1
	put_value global stripe_secret_key sk_test_global_1

	run timeout 120 "$WFVAULT_SYNC" -c "$T/sync.conf" --once
	echo "$output"
	[ "$status" -eq 0 ]

	# Staging gets only staging tenants, in clear.
	[ "$(kv_field "$STAGING" staging-acme openai_api_key)" = sk-staging-acme-1 ]
	[ "$(kv_field "$STAGING" prod-acme openai_api_key)" = null ]
	# Production gets only production tenants, sealed: the value in KV
	# holds no secret, a Worker with the key reads the vault's config.
	[ "$(kv_field "$PRODUCTION" staging-acme openai_api_key)" = null ]
	run kv_raw "$PRODUCTION" tenant:prod-acme
	[[ "$output" != *sk-prod-acme-1* ]]
	[ "$(jq -r .wfvault_sealed <<<"$output")" = 1 ]
	[ "$(sealed_config prod-acme)" = "$(wfv get prod-acme --json | jq -cS .fields)" ]
	# The Worker script reads the global tenant from its environment.
	[ "$(worker_env OPENAI_API_KEY)" = sk-global-1 ]
	[ "$(worker_env STRIPE_SECRET_KEY)" = sk_test_global_1 ]

	# The long-running agent carries later changes to all three.
	"$WFVAULT_SYNC" -c "$T/sync.conf" 2>"$T/agent.log" &
	APID=$!
	put_value staging-acme openai_api_key sk-staging-acme-2
	put_value prod-acme openai_api_key sk-prod-acme-2
	put_value global openai_api_key sk-global-2
	wfv rm global stripe_secret_key
	wait_prints sk-staging-acme-2 kv_field "$STAGING" staging-acme openai_api_key
	wait_prints sk-global-2 worker_env OPENAI_API_KEY
	wait_prints null worker_env STRIPE_SECRET_KEY
	wait_prints "$(wfv get prod-acme --json | jq -cS .fields)" sealed_config prod-acme
	# Every target's position is acknowledged up to the last change (the
	# acknowledgement follows the write, so it is waited for too).
	wait_prints 3 lagless_targets
}
