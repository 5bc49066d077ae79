#!/usr/bin/env bats
# wfvault-sync with several targets in one process: each target's own
# namespace, tenant filter and acknowledged position, a failing target
# that does not hold the others back, the request budget they share, and
# the timing of a slow but healthy bulk write.  The real daemon, the real
# agent and the local Cloudflare stand-in (tests/worker), which serves two
# namespaces.

load helpers

WFVAULT_SYNC=$E2E_BUILD/wfvault-sync
ACCOUNT=0123456789abcdef0123456789abcdef
NS1=fedcba9876543210fedcba9876543210
NS2=00112233445566778899aabbccddeeff

setup_file() {
	sync_suite_start --namespace "$NS1" --namespace2 "$NS2"
}

teardown_file() {
	harness_stop
}

setup() {
	sync_test_setup
}

teardown() {
	wfv_teardown
}


# What a Worker bound to namespace $1 reads for tenant $2's field $3.
kv_field() {
	h GET "/tenant/$2/$3?namespace=$1" | jq -r .value
}

stat_of() {
	h GET /__harness/stats | jq -r ".requests.$1 // 0"
}

acked_seq() {
	tp call sync_state "{\"target\":\"$1\"}" | jq -r '.result.acked_seq'
}

last_seq() {
	tp call sync_state '{"target":"default"}' | jq -r '.result.last_seq'
}

# The global keys, then each argument as a line (target blocks).
write_targets() {
	{
		echo "socket $SOCK"
		echo "cf_api_base $HURL/client/v4"
		echo "cf_account_id $ACCOUNT"
		echo "cf_api_token_file $T/token"
		printf '%s\n' "$@"
	} >"$T/sync.conf"
}

sync_once() {
	timeout 150 "$WFVAULT_SYNC" -c "$T/sync.conf" --once "$@"
}

# Waits ($5 tenths of a second, 30 s by default, at most) until namespace
# $1 shows value $4 for $2.$3.
wait_kv() {
	wait_until "${5:-300}" prints "$4" kv_field "$1" "$2" "$3" && return 0
	echo "namespace $1 never showed $2.$3 = $4" >&2
	return 1
}

# API requests the stand-in holds unanswered (a hanging one, say).
in_flight() {
	h GET /__harness/stats | jq -r .in_flight
}

# Queues a fault that holds namespace $1's next bulk write for an hour:
# a Cloudflare that takes the request and never answers.
hang_bulk_put() {
	h POST /__harness/faults "[{\"route\":\"bulk_put\",\"namespace\":\"$1\",\"kind\":\"slow\",\"delay_ms\":3600000}]" >/dev/null
}

# How many of namespace $1's bulk writes are still unanswered.
held_bulk_puts() {
	h GET /__harness/requests | jq --arg ns "$1" '[.requests[] |
	    select(.route == "bulk_put" and .status == 0 and
	    (.path | contains($ns)))] | length'
}

# Waits (60 s at most) until namespace $1's bulk write is out and held
# (targets run side by side: it may go out after the other's writes).
wait_held() {
	wait_until 600 prints_at_least 1 held_bulk_puts "$1" && return 0
	echo "no bulk write of namespace $1 is held" >&2
	return 1
}

# Waits (60 s at most) until target $1 acknowledged seq $2 (the
# acknowledgement follows the write KV shows).
wait_acked() {
	wait_until 600 prints "$2" acked_seq "$1" && return 0
	echo "target $1 acknowledged $(acked_seq "$1"), never $2" >&2
	return 1
}

@test "two targets with different filters: each namespace gets only its tenants" {
	write_targets "target staging" "cf_namespace_id $NS1" \
	    "tenants staging-*, demo" \
	    "target production" "cf_namespace_id $NS2" "tenants prod-*"
	put_value staging-a openai_api_key sk-sa
	put_value demo openai_api_key sk-demo
	put_value prod-x openai_api_key sk-px
	put_value other openai_api_key sk-other
	run sync_once
	[ "$status" -eq 0 ]
	[[ "$output" == *"staging: up to date at seq 4 (2 written"* ]]
	[[ "$output" == *"production: up to date at seq 4 (1 written"* ]]
	[ "$(kv_field "$NS1" staging-a openai_api_key)" = sk-sa ]
	[ "$(kv_field "$NS1" demo openai_api_key)" = sk-demo ]
	[ "$(kv_field "$NS1" prod-x openai_api_key)" = null ]
	[ "$(kv_field "$NS1" other openai_api_key)" = null ]
	[ "$(kv_field "$NS2" prod-x openai_api_key)" = sk-px ]
	[ "$(kv_field "$NS2" staging-a openai_api_key)" = null ]
	[ "$(kv_field "$NS2" demo openai_api_key)" = null ]
	[ "$(kv_field "$NS2" other openai_api_key)" = null ]
	# Each acknowledged the whole feed, the others' changes included.
	[ "$(acked_seq staging)" = 4 ]
	[ "$(acked_seq production)" = 4 ]
	# wfvault status shows each target's lag.
	put_value prod-x openai_api_key sk-px2
	run sync_once --target production
	[ "$status" -eq 0 ]
	[[ "$output" != *staging* ]]
	run wfv status --json
	[ "$(jq -c '[.sync[] | {target, acked_seq, lag}] | sort_by(.target)' <<<"$output")" = \
	    '[{"target":"production","acked_seq":5,"lag":0},{"target":"staging","acked_seq":4,"lag":1}]' ]
	run wfv status
	[[ "$output" == *production* ]]
	[[ "$output" == *staging* ]]
	# A dry run of one target names only its keys.
	put_value demo openai_api_key sk-demo2
	run sync_once --dry-run --target staging
	[ "$status" -eq 0 ]
	[[ "$output" == *"put demo version 2"* ]]
	[[ "$output" != *prod-x* ]]
	# Of both: the targets run at once, each line names its target.
	run sync_once --dry-run
	[ "$status" -eq 0 ]
	[[ "$output" == *"staging: put demo version 2"* ]]
	[[ "$output" == *"production: dry run: 0 to write"* ]]
	[[ "$output" == *"staging: dry run: 1 to write"* ]]
	run sync_once --target nosuch
	[ "$status" -eq 2 ]
	[[ "$output" == *"no such target"* ]]
	# -n reads every target's token, and names the target it cannot.
	run "$WFVAULT_SYNC" -c "$T/sync.conf" -n
	[ "$status" -eq 0 ]
	[[ "$output" == *"configuration OK"* ]]
	echo "cf_api_token_file $T/missing-token" >>"$T/sync.conf"
	run "$WFVAULT_SYNC" -c "$T/sync.conf" -n
	[ "$status" -eq 2 ]
	[[ "$output" == *"target 'production': cannot open the API token $T/missing-token"* ]]
	run "$WFVAULT_SYNC" -c "$T/sync.conf" -n --target staging
	[ "$status" -eq 0 ]
}

@test "--reconcile of a target looks only at its own tenants" {
	write_targets "target staging" "cf_namespace_id $NS1" "tenants staging-*" \
	    "target production" "cf_namespace_id $NS2" "tenants prod-*"
	put_value staging-a openai_api_key sk-sa
	put_value prod-x openai_api_key sk-px
	run timeout 120 "$WFVAULT_SYNC" -c "$T/sync.conf" --reconcile
	[ "$status" -eq 0 ]
	[[ "$output" == *"staging: reconcile: 1 tenants in the vault, 0 keys in KV: 1 rewritten, 0 stale"* ]]
	[[ "$output" == *"production: reconcile: 1 tenants in the vault, 0 keys in KV: 1 rewritten, 0 stale"* ]]
	[ "$(kv_field "$NS1" prod-x openai_api_key)" = null ]
	[ "$(kv_field "$NS2" prod-x openai_api_key)" = sk-px ]
}

@test "a failing target does not hold the others back, in --once and in the service" {
	write_targets "target broken" "cf_namespace_id ffffffffffffffffffffffffffffffff" \
	    "target good" "cf_namespace_id $NS2"
	put_value acme openai_api_key sk-1
	run sync_once
	# The broken one fails, naming the setting; the good one is done.
	[ "$status" -eq 1 ]
	[[ "$output" == *"broken: KV is not up to date"*cf_namespace_id* ]]
	[[ "$output" == *"good: up to date at seq 1 (1 written"* ]]
	[ "$(kv_field "$NS2" acme openai_api_key)" = sk-1 ]
	[ "$(acked_seq good)" = 1 ]
	[ "$(acked_seq broken)" = 0 ]

	# The service: a target whose token the API refuses waits and tries
	# again while the other keeps pushing.
	printf 'wrong-token\n' >"$T/bad-token"
	chmod 0400 "$T/bad-token"
	write_targets "target refused" "cf_namespace_id $NS1" \
	    "cf_api_token_file $T/bad-token" \
	    "target good" "cf_namespace_id $NS2"
	bg "$WFVAULT_SYNC" -c "$T/sync.conf" 2>"$T/bg.log"
	agent=$BG_PID
	put_value acme openai_api_key sk-2
	wait_kv "$NS2" acme openai_api_key sk-2
	put_value acme openai_api_key sk-3
	wait_kv "$NS2" acme openai_api_key sk-3
	pid_alive "$agent"
	[ "$(acked_seq refused)" = 0 ]
	[ "$(kv_field "$NS1" acme openai_api_key)" = null ]
	kill -TERM "$agent"
	wait "$agent"
	# Its start-up check already fails, naming the target and the setting.
	grep -q "refused: preflight failed: .*cf_api_token_file.*trying again in" "$T/bg.log"
	grep -q "good: ok (user token active" "$T/bg.log"
	! grep -q wrong-token "$T/bg.log"
}

@test "at the daily limit one target waits for 00:00 UTC while the other goes on" {
	write_targets "target staging" "cf_namespace_id $NS1" \
	    "target production" "cf_namespace_id $NS2"
	put_value acme openai_api_key sk-1
	# Staging's first bulk write (whichever target goes first) meets the
	# free plan's daily limit.
	h POST /__harness/faults "[{\"route\":\"bulk_put\",\"namespace\":\"$NS1\",\"kind\":\"cf_error\",\"status\":429,\"code\":10048}]"
	bg "$WFVAULT_SYNC" -c "$T/sync.conf" 2>"$T/bg.log"
	agent=$BG_PID
	wait_kv "$NS2" acme openai_api_key sk-1
	wait_for_line "$T/bg.log" 600 "staging: KV is not up to date: .*daily limit.*waiting until 00:00 UTC"
	put_value acme openai_api_key sk-2
	wait_kv "$NS2" acme openai_api_key sk-2
	pid_alive "$agent"
	# staging sent its one write and waits, without retrying.
	[ "$(stat_of bulk_put)" -eq 3 ]
	[ "$(acked_seq staging)" = 0 ]
	[ "$(kv_field "$NS1" acme openai_api_key)" = null ]
	kill -TERM "$agent"
	wait "$agent"
}

@test "a bulk write Cloudflare takes 40 s to apply succeeds without a retry" {
	write_targets "cf_namespace_id $NS1"
	put_value acme openai_api_key sk-slow
	# The body is taken at once; the answer comes 40 s later, longer than
	# the 30 s a stalled upload is given, shorter than request_timeout.
	h POST /__harness/faults '[{"route":"bulk_put","kind":"slow_reply","delay_ms":40000}]'
	run sync_once
	[ "$status" -eq 0 ]
	[[ "$output" == *"up to date at seq 1 (1 written, 0 deleted, 1 requests)"* ]]
	[[ "$output" != *retrying* ]]
	[ "$(stat_of bulk_put)" -eq 1 ]
	[ "$(h GET /__harness/requests | jq -r '[.requests[] | select(.route == "bulk_put") | .fault] | join(",")')" = slow_reply ]
	[ "$(kv_field "$NS1" acme openai_api_key)" = sk-slow ]
	[ "$(acked_seq default)" = 1 ]
}

@test "the targets share request_budget: a burst waits for it instead of failing" {
	# Four bulk writes (one tenant each) under a budget of two requests
	# in any 5 s, across two targets: at least the third has to wait.
	write_targets "request_budget 2/5s" "batch_max_items 1" \
	    "target staging" "cf_namespace_id $NS1" "tenants s-*" \
	    "target production" "cf_namespace_id $NS2" "tenants p-*"
	put_value s-1 openai_api_key v
	put_value s-2 openai_api_key v
	put_value p-1 openai_api_key v
	put_value p-2 openai_api_key v
	run sync_once
	[ "$status" -eq 0 ]
	[ "$(stat_of bulk_put)" -eq 4 ]
	[ "$(h GET /__harness/stats | jq -r .total)" -eq 4 ]
	[[ "$output" == *"request budget used up (request_budget 2 in 5 s): waiting"* ]]
	[[ "$output" =~ "request budget: "[1-4]" of 4 API requests waited for it" ]]
	[[ "$output" != *retrying* ]]
	[ "$(acked_seq staging)" = 4 ]
	[ "$(acked_seq production)" = 4 ]
}

@test "Cloudflare's Ratelimit header pauses every target until its reset" {
	write_targets "batch_max_items 1" \
	    "target staging" "cf_namespace_id $NS1" "tenants s-*" \
	    "target production" "cf_namespace_id $NS2" "tenants p-*"
	put_value s-1 openai_api_key v
	put_value s-2 openai_api_key v
	put_value p-1 openai_api_key v
	put_value p-2 openai_api_key v
	# The first bulk write answered, whichever target's, says the
	# allowance is used up.  Targets may run side by side, so which
	# requests wait is not fixed; at least the next one of that target does.
	h POST /__harness/faults '[{"route":"bulk_put","kind":"ratelimit","reset":2}]'
	run sync_once
	[ "$status" -eq 0 ]
	[[ "$output" == *"rate limit is used up (Ratelimit: \"default\";r=0;t=2): no API request for 2 s"* ]]
	# A later request waited for it rather than meet a 429.
	[[ "$output" == *" s for Cloudflare's rate limit (its Ratelimit header)"* ]]
	[[ "$output" =~ "request budget: "[1-3]" of 4 API requests waited for it" ]]
	[ "$(stat_of bulk_put)" -eq 4 ]
	[ "$(kv_field "$NS1" s-2 openai_api_key)" = v ]
	[ "$(kv_field "$NS2" p-2 openai_api_key)" = v ]
}

@test "a Ratelimit header one target meets pauses the other target's next request" {
	write_targets "target staging" "cf_namespace_id $NS1" "tenants s-*" \
	    "target production" "cf_namespace_id $NS2" "tenants p-*"
	# staging's write is answered with the allowance used up for 15 s.
	h POST /__harness/faults "[{\"route\":\"bulk_put\",\"namespace\":\"$NS1\",\"kind\":\"ratelimit\",\"reset\":15}]"
	bg "$WFVAULT_SYNC" -c "$T/sync.conf" 2>"$T/bg.log"
	agent=$BG_PID
	put_value s-1 openai_api_key v
	wait_for_line "$T/bg.log" 600 'rate limit is used up .*no API request for 15 s'
	# Only now has production anything to write: its request comes after
	# the header, and waits for the reset instead of meeting a 429.
	put_value p-1 openai_api_key v
	wait_for_line "$T/bg.log" 600 "waiting [0-9.]+ s for Cloudflare's rate limit"
	wait_kv "$NS2" p-1 openai_api_key v 600
	[ "$(h GET /__harness/requests | jq '[.requests[] | select(.status == 429)] | length')" -eq 0 ]
	rc=0
	stop_bg "$agent" || rc=$?
	[ "$rc" -eq 0 ]
}

@test "a target whose endpoint hangs does not hold the others back" {
	# The hanging target comes first in the file: an agent going through
	# the targets one after the other would never reach the second.
	write_targets "target hangs" "cf_namespace_id $NS1" "tenants a-*" \
	    "request_timeout 3600s" \
	    "target good" "cf_namespace_id $NS2" "tenants b-*"
	hang_bulk_put "$NS1"
	put_value a-1 openai_api_key sk-a1
	put_value b-1 openai_api_key sk-b1
	bg "$WFVAULT_SYNC" -c "$T/sync.conf" 2>"$T/bg.log"
	agent=$BG_PID
	wait_kv "$NS2" b-1 openai_api_key sk-b1 600
	# ... while the other's write is out (or about to be), unanswered.
	wait_held "$NS1"
	[ "$(in_flight)" -ge 1 ]
	[ "$(acked_seq hangs)" = 0 ]
	[ "$(kv_field "$NS1" a-1 openai_api_key)" = null ]
	# A later change too.
	put_value b-2 openai_api_key sk-b2
	wait_kv "$NS2" b-2 openai_api_key sk-b2 600
	[ "$(held_bulk_puts "$NS1")" -eq 1 ]
	wait_acked good 3
	[ "$(acked_seq hangs)" = 0 ]
	run wfv status --json
	[ "$(jq -c '[.sync[] | {target, acked_seq}] | sort_by(.target)' <<<"$output")" = \
	    '[{"target":"good","acked_seq":3},{"target":"hangs","acked_seq":0}]' ]
	# SIGTERM reaches the hanging request: the service stops, status 0.
	rc=0
	stop_bg "$agent" || rc=$?
	[ "$rc" -eq 0 ]
}

@test "a target waiting out settle_time does not hold the others back" {
	write_targets "target settles" "cf_namespace_id $NS1" "tenants a-*" \
	    "settle_time 3600s" \
	    "target good" "cf_namespace_id $NS2" "tenants b-*"
	# A write of unknown outcome (done, then answered 500): retried and
	# done, but acknowledged only settle_time after it.
	h POST /__harness/faults "[{\"route\":\"bulk_put\",\"namespace\":\"$NS1\",\"kind\":\"500\",\"apply\":true}]" >/dev/null
	put_value a-1 openai_api_key sk-a1
	put_value b-1 openai_api_key sk-b1
	bg "$WFVAULT_SYNC" -c "$T/sync.conf" 2>"$T/bg.log"
	agent=$BG_PID
	wait_kv "$NS1" a-1 openai_api_key sk-a1 600
	wait_for_line "$T/bg.log" 600 "may still be applied; waiting .*\(settle_time\) before acknowledging"
	wait_kv "$NS2" b-1 openai_api_key sk-b1 600
	put_value b-2 openai_api_key sk-b2
	wait_kv "$NS2" b-2 openai_api_key sk-b2 600
	[ "$(acked_seq settles)" = 0 ]
	[ "$(h GET /__harness/requests | jq --arg ns "$NS1" -r '[.requests[] |
	    select(.route == "bulk_put" and (.path | contains($ns))) | .fault] |
	    first')" = 500 ]
	rc=0
	stop_bg "$agent" || rc=$?
	[ "$rc" -eq 0 ]
}

@test "--once: a hanging target does not keep the other's write back" {
	write_targets "target hangs" "cf_namespace_id $NS1" "tenants a-*" \
	    "request_timeout 3600s" \
	    "target good" "cf_namespace_id $NS2" "tenants b-*"
	hang_bulk_put "$NS1"
	put_value a-1 openai_api_key sk-a1
	put_value b-1 openai_api_key sk-b1
	bg "$WFVAULT_SYNC" -c "$T/sync.conf" --once >"$T/once.out" 2>&1
	once=$BG_PID
	wait_kv "$NS2" b-1 openai_api_key sk-b1 600
	wait_for_line "$T/once.out" 600 "^good: up to date at seq 2 "
	wait_held "$NS1"
	[ "$(in_flight)" -ge 1 ]
	pid_alive "$once"
	wait_acked good 2
	[ "$(acked_seq hangs)" = 0 ]
	# Stopped while one target is still out: that one is not up to date,
	# and the exit status says so.
	rc=0
	stop_bg "$once" || rc=$?
	[ "$rc" -eq 1 ]
	grep -Eq "hangs: .*(interrupted|not up to date)" "$T/once.out"
	refute grep -q "hangs: up to date" "$T/once.out"
}
