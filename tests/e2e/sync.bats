#!/usr/bin/env bats
# wfvault-sync end to end: the real daemon, the real agent and a local
# Cloudflare (Miniflare running workerd with a real KV binding).  What the
# tests read back is what a Worker reading TENANT_CONFIGS would get.

load helpers

WFVAULT_SYNC=$E2E_BUILD/wfvault-sync
ACCOUNT=0123456789abcdef0123456789abcdef
NAMESPACE=fedcba9876543210fedcba9876543210

# One harness for the whole file (workerd takes a second to start); each
# test gets a clean KV, its own daemon and its own agent config.
setup_file() {
	sync_suite_start
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

# Talks to the harness: h METHOD PATH [BODY].

# What a Worker reading TENANT_CONFIGS sees for tenant $1 (field $2).
worker_get() {
	h GET "/tenant/$1${2:+/$2}${PREFIX:+?prefix=$PREFIX}"
}

stat_of() {
	h GET /__harness/stats | jq -r ".requests.$1 // 0"
}

write_sync_conf() {
	{
		echo "socket $SOCK"
		echo "target default"
		echo "cf_api_base $HURL/client/v4"
		echo "cf_account_id $ACCOUNT"
		echo "cf_namespace_id $NAMESPACE"
		echo "cf_api_token_file $T/token"
		printf '%s\n' "$@"
	} >"$T/sync.conf"
}

sync_once() {
	timeout 120 "$WFVAULT_SYNC" -c "$T/sync.conf" --once "$@"
}

acked_seq() {
	tp call sync_state '{"target":"default"}' | jq -r '.result.acked_seq'
}

last_seq() {
	tp call sync_state '{"target":"default"}' | jq -r '.result.last_seq'
}

# The value a Worker reads for tenant $1's field $2.
worker_value() {
	worker_get "$1" "$2" | jq -r .value
}

# Waits ($4 tenths of a second, 30 s by default, at most) until a Worker
# reads value $3 for tenant $1's field $2.
wait_kv() {
	wait_until "${4:-300}" prints "$3" worker_value "$1" "$2" && return 0
	echo "KV never showed $1.$2 = $3" >&2
	return 1
}

# The agent acknowledged all of the feed.
acked_all() {
	[ "$(acked_seq)" = "$(last_seq)" ]
}

# Waits (30 s at most) until the agent acknowledged all of the feed.
wait_acked() {
	wait_until 300 acked_all && return 0
	echo "the agent never acknowledged seq $(last_seq)" >&2
	return 1
}

# How many requests the harness got and has not answered yet.
open_requests() {
	h GET /__harness/requests |
	    jq '[.requests[] | select(.status == 0)] | length'
}

# How many API requests the harness got in all.
total_requests() {
	h GET /__harness/stats | jq -r .total
}

# Waits (60 s at most) until the harness has answered every request it
# got, so a slow one cannot land after the test's next write.
wait_requests_done() {
	wait_until 600 prints 0 open_requests && return 0
	echo "the harness still serves a request" >&2
	return 1
}

# Loads N tenants t00001.. through one pipelined connection (the CLI would
# take a process per tenant).
load_tenants() {
	seq 1 "$1" | awk '{ printf "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"put\",\"params\":{\"tenant\":\"t%05d\",\"fields\":{\"openai_api_key\":\"sk-%d\"}}}\n", $1, $1, $1 }' |
	    timeout 120 socat -t 60 - "UNIX-CONNECT:$SOCK" | grep -c '"result"'
}

@test "first sync: a Worker reads each tenant's config from KV" {
	put_value acme openai_api_key sk-acme-1
	put_value acme linkedin_client_id li-acme
	printf '{"stripe_secret_key":"sk_globex"}' | wfv put globex --json >/dev/null
	run sync_once
	[ "$status" -eq 0 ]
	run worker_get acme
	[ "$(jq -r .config.openai_api_key <<<"$output")" = sk-acme-1 ]
	[ "$(jq -r .config.linkedin_client_id <<<"$output")" = li-acme ]
	run worker_get globex stripe_secret_key
	[ "$(jq -r .value <<<"$output")" = sk_globex ]
	# Both tenants in one bulk write, with their versions as metadata.
	[ "$(stat_of bulk_put)" -eq 1 ]
	run curl -sS -H 'Authorization: Bearer test-token' \
	    "$HURL/client/v4/accounts/$ACCOUNT/storage/kv/namespaces/$NAMESPACE/metadata/acme"
	[ "$(jq -r .result.version <<<"$output")" = 2 ]
	[ "$(acked_seq)" = "$(last_seq)" ]
	# Nothing pending: a second run writes nothing.
	run sync_once
	[ "$status" -eq 0 ]
	[ "$(stat_of bulk_put)" -eq 1 ]
}

@test "updates, field removal and tenant deletion reach KV" {
	put_value acme openai_api_key sk-old
	put_value acme sendgrid_api_key SG.one
	put_value beta openai_api_key sk-beta
	sync_once
	put_value acme openai_api_key sk-new
	wfv rm acme sendgrid_api_key
	wfv rm beta
	run sync_once
	[ "$status" -eq 0 ]
	run worker_get acme
	[ "$(jq -r .config.openai_api_key <<<"$output")" = sk-new ]
	[ "$(jq -r '.config | has("sendgrid_api_key")' <<<"$output")" = false ]
	run worker_get beta
	[ "$(jq -r .config <<<"$output")" = null ]
	[ "$(stat_of bulk_delete)" -eq 1 ]
}

@test "many changes to one tenant become one write of its latest config" {
	for i in 1 2 3 4 5; do put_value acme openai_api_key "sk-$i"; done
	run sync_once
	[ "$status" -eq 0 ]
	run h GET /__harness/requests
	[ "$(jq '[.requests[] | select(.route == "bulk_put")] | length' <<<"$output")" -eq 1 ]
	[ "$(jq '[.requests[] | select(.route == "bulk_put")][0].items' <<<"$output")" -eq 1 ]
	[ "$(worker_get acme openai_api_key | jq -r .value)" = sk-5 ]
}

@test "10,050 tenants go in two bulk writes" {
	[ "$(load_tenants 10050)" -eq 10050 ]
	run sync_once
	[ "$status" -eq 0 ]
	[ "$(stat_of bulk_put)" -eq 2 ]
	[ "$(worker_get t00001 openai_api_key | jq -r .value)" = sk-1 ]
	[ "$(worker_get t10050 openai_api_key | jq -r .value)" = sk-10050 ]
	[ "$(acked_seq)" = 10050 ]
}

@test "429 waits for Retry-After, then succeeds" {
	put_value acme openai_api_key sk-429
	h POST /__harness/faults '[{"route":"bulk_put","kind":"429","retry_after":"1"}]'
	start=$(date +%s%N)
	run sync_once
	end=$(date +%s%N)
	[ "$status" -eq 0 ]
	# The agent waited at least the second it was told to.
	[ $(( (end - start) / 1000000 )) -ge 1000 ]
	[ "$(stat_of bulk_put)" -eq 2 ]
	[ "$(worker_get acme openai_api_key | jq -r .value)" = sk-429 ]
}

@test "500, 502 and an HTML 524 page are retried" {
	# No settling: this test counts the retries alone.
	write_sync_conf "settle_time 0s"
	put_value acme openai_api_key sk-5xx
	h POST /__harness/faults '[{"route":"bulk_put","kind":"500"},{"route":"bulk_put","kind":"502"},{"route":"bulk_put","kind":"524"}]'
	run sync_once
	[ "$status" -eq 0 ]
	[ "$(stat_of bulk_put)" -eq 4 ]
	[ "$(worker_get acme openai_api_key | jq -r .value)" = sk-5xx ]
}

@test "keys in unsuccessful_keys are written again" {
	put_value acme openai_api_key sk-a
	put_value beta openai_api_key sk-b
	h POST /__harness/faults '[{"route":"bulk_put","kind":"partial","keys":["beta"]}]'
	run sync_once
	[ "$status" -eq 0 ]
	[ "$(worker_get beta openai_api_key | jq -r .value)" = sk-b ]
	[ "$(worker_get acme openai_api_key | jq -r .value)" = sk-a ]
	[ "$(stat_of bulk_put)" -eq 2 ]
}

@test "a request slower than request_timeout is retried" {
	write_sync_conf "request_timeout 1s" "settle_time 3s"
	put_value acme openai_api_key sk-slow
	h POST /__harness/faults '[{"route":"bulk_put","kind":"slow","delay_ms":2500}]'
	run sync_once
	[ "$status" -eq 0 ]
	[ "$(worker_get acme openai_api_key | jq -r .value)" = sk-slow ]
}

@test "a wrong token stops at once naming the setting; the right one then syncs" {
	put_value acme openai_api_key sk-token
	chmod 0600 "$T/token"
	printf 'wrong-token\n' >"$T/token"
	run sync_once
	[ "$status" -ne 0 ]
	[[ "$output" == *cf_api_token* ]]
	[[ "$output" != *wrong-token* ]]
	# Stopped at once: one refused request, nothing acknowledged.
	[ "$(stat_of bulk_put)" -eq 1 ]
	[ "$(acked_seq)" = 0 ]
	printf 'test-token\n' >"$T/token"
	run sync_once
	[ "$status" -eq 0 ]
	[ "$(worker_get acme openai_api_key | jq -r .value)" = sk-token ]
}

@test "the agent killed with SIGKILL mid-sync loses nothing" {
	[ "$(load_tenants 300)" -eq 300 ]
	h POST /__harness/faults '[{"route":"bulk_put","kind":"slow","delay_ms":3000,"apply":false}]'
	bg "$WFVAULT_SYNC" -c "$T/sync.conf" --once
	agent=$BG_PID
	wait_until 300 prints_at_least 1 total_requests
	# It cannot have finished (its request takes 3 s), but a kill must
	# not fail the test if it did.
	kill -KILL "$agent" 2>/dev/null || true
	wait "$agent" 2>/dev/null || true
	# The request the agent died in is still served (3 s) and lands in KV;
	# wait for it so it cannot overwrite what the restarted agent writes.
	wait_requests_done
	[ "$(acked_seq)" = 0 ]
	put_value t00001 openai_api_key sk-after-kill
	run sync_once
	[ "$status" -eq 0 ]
	[ "$(worker_get t00300 openai_api_key | jq -r .value)" = sk-300 ]
	[ "$(worker_get t00001 openai_api_key | jq -r .value)" = sk-after-kill ]
	[ "$(acked_seq)" = "$(last_seq)" ]
}

@test "the long-running agent pushes a change without being asked, across a daemon restart" {
	bg "$WFVAULT_SYNC" -c "$T/sync.conf"
	put_value acme openai_api_key sk-live-1
	wait_kv acme openai_api_key sk-live-1 100
	restart_daemon
	put_value acme openai_api_key sk-live-2
	wait_kv acme openai_api_key sk-live-2 150
	kill -TERM "$BG_PID"
	wait "$BG_PID"
}

@test "--dry-run prints keys and versions, never values, and writes nothing" {
	put_value acme openai_api_key sk-dry-secret
	wfv rm acme openai_api_key
	put_value beta openai_api_key sk-dry-2
	run sync_once --dry-run
	[ "$status" -eq 0 ]
	[[ "$output" == *"acme"* ]]
	[[ "$output" == *"beta"* ]]
	[[ "$output" != *sk-dry* ]]
	[ "$(stat_of bulk_put)" -eq 0 ]
	[ "$(acked_seq)" = 0 ]
}

@test "--reconcile repairs drift and reports stale keys; --prune deletes them" {
	put_value acme openai_api_key sk-r1
	put_value beta openai_api_key sk-r2
	sync_once
	api="$HURL/client/v4/accounts/$ACCOUNT/storage/kv/namespaces/$NAMESPACE"
	auth='Authorization: Bearer test-token'
	# Drift: acme deleted behind the agent's back, beta overwritten with an
	# old version, and the key of a tenant the
	# vault no longer has (marked as written by wfvault).
	curl -sS -X DELETE -H "$auth" "$api/values/acme" >/dev/null
	curl -sS -X PUT -H "$auth" -H 'Content-Type: application/json' \
	    --data-binary '[{"key":"beta","value":"{}","metadata":{"version":0}},{"key":"ghost","value":"{}","metadata":{"version":1,"wfvault":1}}]' \
	    "$api/bulk" >/dev/null
	h POST /__harness/faults '[{"route":"list","kind":"empty_page"}]'
	run timeout 120 "$WFVAULT_SYNC" -c "$T/sync.conf" --reconcile
	[ "$status" -eq 0 ]
	[[ "$output" == *ghost* ]]
	[ "$(worker_get acme openai_api_key | jq -r .value)" = sk-r1 ]
	[ "$(worker_get beta openai_api_key | jq -r .value)" = sk-r2 ]
	[ "$(worker_get ghost | jq -r .config)" != null ]
	run timeout 120 "$WFVAULT_SYNC" -c "$T/sync.conf" --reconcile --prune
	[ "$status" -eq 0 ]
	[ "$(worker_get ghost | jq -r .config)" = null ]
	[ "$(worker_get acme openai_api_key | jq -r .value)" = sk-r1 ]
}

@test "a target behind the trimmed feed gets a full pass, deletions included" {
	stop_daemon
	write_conf "feed_retain 3"
	start_daemon
	write_sync_conf "kv_key_prefix v/"
	put_value acme k a1
	put_value gone k g1
	put_value keep k k1
	run sync_once
	[ "$status" -eq 0 ]
	[ "$(acked_seq)" = 3 ]
	api="$HURL/client/v4/accounts/$ACCOUNT/storage/kv/namespaces/$NAMESPACE"
	# Under the prefix but not written by the vault (no version): kept.
	curl -sS -X PUT -H 'Authorization: Bearer test-token' \
	    -H 'Content-Type: application/json' \
	    --data-binary '[{"key":"v/foreign","value":"{}"}]' \
	    "$api/bulk" >/dev/null
	wfv rm gone >/dev/null			# seq 4
	put_value acme k a2			# 5
	put_value newcomer k n1			# 6
	put_value acme k a3			# 7
	# last 7, retain 3: seq 4 and before are trimmed, the delete too.
	[ "$(wfv status --json | jq .store.changes)" = 3 ]
	run tp call changes '{"since":3}'
	[ "$(jq -r .error.data.kind <<<"$output")" = feed_trimmed ]
	[ "$(jq -r .error.code <<<"$output")" = -32007 ]
	[ "$(jq -r .error.data.first_seq <<<"$output")" = 5 ]
	run tp call changes '{"since":4}'
	[ "$(jq -r '.result.changes | length' <<<"$output")" = 3 ]

	run sync_once
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"full pass"* ]]
	[ "$(acked_seq)" = 7 ]
	export PREFIX=v/
	[ "$(worker_get gone | jq -r .config)" = null ]
	[ "$(worker_get acme k | jq -r .value)" = a3 ]
	[ "$(worker_get keep k | jq -r .value)" = k1 ]
	[ "$(worker_get newcomer k | jq -r .value)" = n1 ]
	[ "$(worker_get foreign | jq -r .config)" != null ]
	# And incrementally from there.
	put_value keep k k2
	run sync_once
	[ "$status" -eq 0 ]
	[[ "$output" != *"full pass"* ]]
	[ "$(worker_get keep k | jq -r .value)" = k2 ]
}

@test "a full pass keeps a mass delete beyond prune_max_share" {
	# Most tenants gone while the agent was behind a trimmed feed (or
	# its socket names another vault): the full pass must not delete
	# them all, as --reconcile --prune would not without --force.
	stop_daemon
	write_conf "feed_retain 2"
	start_daemon
	write_sync_conf "kv_key_prefix v/"
	for t in t1 t2 t3 t4 t5; do put_value "$t" k "$t"; done
	run sync_once
	[ "$status" -eq 0 ]
	for t in t1 t2 t3 t4; do wfv rm "$t" >/dev/null; done
	put_value t5 k t5b
	put_value t5 k t5c
	run tp call changes '{"since":5}'
	[ "$(jq -r .error.data.kind <<<"$output")" = feed_trimmed ]
	run sync_once
	echo "$output"
	[[ "$output" == *"full pass"* ]]
	[[ "$output" == *"--prune --force"* ]]
	export PREFIX=v/
	[ "$(worker_get t1 k | jq -r .value)" = t1 ]
	[ "$(worker_get t5 k | jq -r .value)" = t5c ]
	run timeout 120 "$WFVAULT_SYNC" -c "$T/sync.conf" --reconcile \
	    --prune --force
	[ "$status" -eq 0 ]
	[ "$(worker_get t1 | jq -r .config)" = null ]
}

@test "--reconcile gives up on a KV listing whose cursors never end" {
	# Up to 1,002 list requests: more than the default request_budget.
	write_sync_conf "request_budget 2000/5m"
	put_value acme openai_api_key sk-c1
	sync_once
	# Cursors that come round again (A, B, A, ...): caught at the repeat.
	h POST /__harness/reset >/dev/null
	h POST /__harness/faults \
	    '[{"route":"list","kind":"cursor_cycle","times":100000}]' >/dev/null
	run timeout 60 "$WFVAULT_SYNC" -c "$T/sync.conf" --reconcile
	[ "$status" -eq 1 ]
	[[ "$output" == *"returned a cursor it had returned before"* ]]
	[ "$(stat_of list)" -eq 3 ]
	# Fresh cursors on pages that bring no keys: bounded by the keys.
	h POST /__harness/reset >/dev/null
	h POST /__harness/faults \
	    '[{"route":"list","kind":"endless_pages","times":100000}]' >/dev/null
	run timeout 60 "$WFVAULT_SYNC" -c "$T/sync.conf" --reconcile
	[ "$status" -eq 1 ]
	[[ "$output" == *"pages brought only 0 keys"* ]]
	[ "$(stat_of list)" -le 1002 ]
	# A sound listing afterwards still works.
	h DELETE /__harness/faults >/dev/null
	run timeout 60 "$WFVAULT_SYNC" -c "$T/sync.conf" --reconcile
	[ "$status" -eq 0 ]
}

@test "--reconcile gives up when the vault's list cursor goes round" {
	# A stand-in wfvaultd whose list cursors go b, a, b, ...: each is
	# different from the one before, but the daemon's never go backwards.
	cat >"$T/fake.sh" <<-'EOF'
	while IFS= read -r line; do
		id=$(jq -c .id <<<"$line")
		case $(jq -r .method <<<"$line") in
		hello)
			printf '{"jsonrpc":"2.0","id":%s,"result":{"server":"wfvaultd","version":"0.1.0","protocol":1,"uid":0,"gid":0,"pid":1,"permissions":["sync"]}}\n' "$id" ;;
		list)
			next=b
			[ "$(jq -r '.params.cursor // ""' <<<"$line")" = b ] && next=a
			printf '{"jsonrpc":"2.0","id":%s,"result":{"tenants":[],"cursor":"%s"}}\n' "$id" "$next" ;;
		*)
			printf '{"jsonrpc":"2.0","id":%s,"error":{"code":-32601,"message":"no"}}\n' "$id" ;;
		esac
	done
	EOF
	bg socat "UNIX-LISTEN:$T/fake.sock,fork" EXEC:"bash $T/fake.sh"
	wait_until 50 test -S "$T/fake.sock" || true
	write_sync_conf
	sed -i "s|^socket .*|socket $T/fake.sock|" "$T/sync.conf"
	run timeout 60 "$WFVAULT_SYNC" -c "$T/sync.conf" --reconcile
	[ "$status" -eq 1 ]
	[[ "$output" == *"list cursor did not move forward"* ]]
}

@test "kv_key_prefix puts every key behind the prefix" {
	write_sync_conf "kv_key_prefix tenants/"
	put_value acme openai_api_key sk-prefixed
	run sync_once
	[ "$status" -eq 0 ]
	[ "$(PREFIX=tenants/ worker_get acme openai_api_key | jq -r .value)" = sk-prefixed ]
	[ "$(worker_get acme | jq -r .config)" = null ]
}

@test "wfvault status shows the target's acknowledged seq and lag" {
	put_value acme openai_api_key sk-s
	sync_once
	put_value acme openai_api_key sk-s2
	run wfv status --json
	[ "$(jq -r '.sync[0].target' <<<"$output")" = default ]
	[ "$(jq -r '.sync[0].acked_seq' <<<"$output")" = 1 ]
	[ "$(jq -r '.sync[0].lag' <<<"$output")" = 1 ]
	run wfv status
	[[ "$output" == *default* ]]
}

@test "the agent's config is checked: ids, plain http off loopback, one token source" {
	run "$WFVAULT_SYNC" -c "$T/sync.conf" -n
	[ "$status" -eq 0 ]
	[[ "$output" == *"configuration OK"* ]]
	write_sync_conf
	sed -i "s/^cf_account_id .*/cf_account_id 1234/" "$T/sync.conf"
	run "$WFVAULT_SYNC" -c "$T/sync.conf" -n
	[ "$status" -ne 0 ]
	[[ "$output" == *"sync.conf:"* ]]
	write_sync_conf
	sed -i "s|^cf_api_base .*|cf_api_base http://api.example.com/client/v4|" "$T/sync.conf"
	run "$WFVAULT_SYNC" -c "$T/sync.conf" -n
	[ "$status" -ne 0 ]
	write_sync_conf "cf_api_token_credential cf-token"
	run "$WFVAULT_SYNC" -c "$T/sync.conf" -n
	[ "$status" -ne 0 ]
}

@test "wfvault-sync -n refuses a token file others can read, or a link to one" {
	run "$WFVAULT_SYNC" -c "$T/sync.conf" -n
	[ "$status" -eq 0 ]
	chmod 0644 "$T/token"
	run "$WFVAULT_SYNC" -c "$T/sync.conf" -n
	[ "$status" -eq 2 ]
	[[ "$output" == *"$T/token"*"mode 0644"*"chmod 600 $T/token"* ]]
	[[ "$output" != *test-token* ]]
	chmod 0600 "$T/token"
	ln -s "$T/token" "$T/token.link"
	sed -i "s|^cf_api_token_file .*|cf_api_token_file $T/token.link|" \
	    "$T/sync.conf"
	run "$WFVAULT_SYNC" -c "$T/sync.conf" -n
	[ "$status" -eq 2 ]
	[[ "$output" == *"$T/token.link is a symbolic link"* ]]
}

@test "the API token never shows in the agent's output, argv or environment" {
	printf 'tok-%s\n' "$(random_token)" >"$T/token.new"
	tok=$(cat "$T/token.new")
	chmod 0600 "$T/token"
	cp "$T/token.new" "$T/token"
	# The harness refuses this token: the error path must not print it.
	put_value acme openai_api_key sk-tok
	run sync_once -d
	[ "$status" -ne 0 ]
	[[ "$output" != *"$tok"* ]]
	# A running agent (the harness's own token, so it stays up) holds its
	# token in memory only: not in its argv, not in its environment.
	printf 'test-token\n' >"$T/token"
	bg "$WFVAULT_SYNC" -c "$T/sync.conf" -d
	wait_acked
	pid_alive "$BG_PID"
	grep -qa -- "$T/sync.conf" "/proc/$BG_PID/cmdline"
	refute grep -qa -- test-token "/proc/$BG_PID/cmdline"
	refute grep -qa -- test-token "/proc/$BG_PID/environ"
}

@test "a write of unknown outcome gets settle_time before the ack, so it cannot land over newer data" {
	write_sync_conf "request_timeout 1s" "settle_time 3s"
	put_value acme openai_api_key old
	# Served after 2.5 s, long after the agent gave up on it at 1 s.
	h POST /__harness/faults '[{"route":"bulk_put","kind":"slow","delay_ms":2500}]'
	start=$(date +%s%N)
	run sync_once
	end=$(date +%s%N)
	[ "$status" -eq 0 ]
	# It returned (and acknowledged) only settle_time after the request
	# it abandoned at 1 s, so that request has landed by now.
	[ $(( (end - start) / 1000000 )) -ge 3900 ]
	[ "$(stat_of bulk_put)" -eq 2 ]
	[ "$(worker_get acme openai_api_key | jq -r .value)" = old ]
	[ "$(acked_seq)" = "$(last_seq)" ]
	# So nothing from that run lands over a newer value.
	put_value acme openai_api_key new
	run sync_once
	[ "$status" -eq 0 ]
	wait_requests_done
	[ "$(worker_get acme openai_api_key | jq -r .value)" = new ]
	[ "$(stat_of bulk_put)" -eq 3 ]
}

@test "a key written again after a write of unknown outcome is rewritten after settle_time" {
	write_sync_conf "request_timeout 1s" "settle_time 5s" "batch_max_items 1"
	put_value acme openai_api_key v1
	put_value beta openai_api_key b1
	# acme's first write is abandoned at 1 s and lands at 4 s.
	h POST /__harness/faults '[{"route":"bulk_put","kind":"slow","delay_ms":4000}]'
	bg "$WFVAULT_SYNC" -c "$T/sync.conf" 2>"$T/agent.log"
	agent=$BG_PID
	wait_until 300 prints_at_least 1 stat_of bulk_put
	# The pass dies with the daemon gone, at its next request to it (the
	# agent says so); the next one writes acme's v2 before v1 lands over
	# it.
	stop_daemon
	wait_for_line "$T/agent.log" 300 "default: pass cut short: cannot reach wfvaultd"
	start_daemon
	put_value acme openai_api_key v2
	# acme: abandoned, retried, v2, and v2 again after settle_time; wait
	# for all of it rather than for a guess at how long it takes.
	wait_until 300 prints_at_least 5 stat_of bulk_put || true
	wait_acked
	wait_requests_done
	# At least those five: on a loaded machine a retry can outlast the
	# 1 s request_timeout too, which only adds requests.  What matters is
	# that v2 is what stays, after v1 landed late.
	[ "$(stat_of bulk_put)" -ge 5 ]
	[ "$(worker_get acme openai_api_key | jq -r .value)" = v2 ]
	[ "$(worker_get beta openai_api_key | jq -r .value)" = b1 ]
	[ "$(acked_seq)" = "$(last_seq)" ]
	kill -TERM "$agent"
	wait "$agent"
}

@test "a 524 halves the bulk requests for the rest of the run" {
	write_sync_conf "settle_time 0s" "batch_max_items 250"
	[ "$(load_tenants 500)" -eq 500 ]
	h POST /__harness/faults '[{"route":"bulk_put","kind":"524","apply":true}]'
	run sync_once
	[ "$status" -eq 0 ]
	run h GET /__harness/requests
	# The first 250 get a 524 (the harness logs no items for a fault);
	# they go again as 125 and 125, and so do the next 250.
	[ "$(jq -c '[.requests[] | select(.route == "bulk_put") | .items]' <<<"$output")" = "[null,125,125,125,125]" ]
	[ "$(worker_get t00001 openai_api_key | jq -r .value)" = sk-1 ]
	[ "$(worker_get t00500 openai_api_key | jq -r .value)" = sk-500 ]
	[ "$(acked_seq)" = "$(last_seq)" ]
}

@test "the long-running agent starts a pass at most once a second and coalesces a burst" {
	bg "$WFVAULT_SYNC" -c "$T/sync.conf"
	agent=$BG_PID
	put_value acme openai_api_key sk-burst-0
	wait_kv acme openai_api_key sk-burst-0
	wait_acked
	# At most once a second.  The agent is idle, so the pass for change 1
	# starts after t1, and the pass for change 2 (made once change 1 is
	# acknowledged) a second after that at least.  Only a lower bound on
	# elapsed time: a slow machine can only make it longer.
	local t1
	t1=$(date +%s%N)
	put_value acme openai_api_key sk-burst-1
	wait_kv acme openai_api_key sk-burst-1
	wait_acked
	put_value acme openai_api_key sk-burst-2
	wait_kv acme openai_api_key sk-burst-2
	[ $(( ($(date +%s%N) - t1) / 1000000 )) -ge 1000 ]
	wait_acked
	# Coalescing: 30 changes made while the agent is stopped go out in
	# one pass that writes the last of them once.
	h POST /__harness/reset >/dev/null
	kill -STOP "$agent"
	for i in $(seq 3 32); do
		put_value acme openai_api_key "sk-burst-$i"
	done
	kill -CONT "$agent"
	wait_kv acme openai_api_key sk-burst-32
	wait_acked
	[ "$(stat_of bulk_put)" -eq 1 ]
	kill -TERM "$agent"
	wait "$agent"
}

@test "option combinations that make no sense are usage errors" {
	run "$WFVAULT_SYNC" -c "$T/sync.conf" --once --reconcile
	[ "$status" -eq 2 ]
	[[ "$output" == *"--reconcile"*"--once"* ]]
	run "$WFVAULT_SYNC" -c "$T/sync.conf" --prune
	[ "$status" -eq 2 ]
	[[ "$output" == *"--prune works only with --reconcile"* ]]
	run "$WFVAULT_SYNC" -c "$T/sync.conf" --once --prune
	[ "$status" -eq 2 ]
	run "$WFVAULT_SYNC" -c "$T/sync.conf" -n --once
	[ "$status" -eq 2 ]
	[[ "$output" == *"-n only checks"* ]]
	[ "$(h GET /__harness/stats | jq -r .total)" -eq 0 ]
	# --dry-run with --reconcile --prune only reports.
	api="$HURL/client/v4/accounts/$ACCOUNT/storage/kv/namespaces/$NAMESPACE"
	curl -sS -X PUT -H 'Authorization: Bearer test-token' \
	    -H 'Content-Type: application/json' \
	    --data-binary '[{"key":"ghost","value":"{}"}]' "$api/bulk" >/dev/null
	run timeout 120 "$WFVAULT_SYNC" -c "$T/sync.conf" --reconcile --prune --dry-run
	[ "$status" -eq 0 ]
	[[ "$output" == *ghost* ]]
	[ "$(worker_get ghost | jq -r .config)" != null ]
	[ "$(stat_of bulk_delete)" -eq 0 ]
}

@test "the integrations a tenant uses stay out of the config in KV" {
	wfv put acme --integrations openai
	put_value acme openai_api_key sk-abcdefghijklmnopqrstuvwxyz
	run sync_once
	[ "$status" -eq 0 ]
	run worker_get acme
	[ "$(jq -c .config <<<"$output")" = \
	    '{"openai_api_key":"sk-abcdefghijklmnopqrstuvwxyz"}' ]
}

@test "check says whether the agent pushed the tenant's last change" {
	put_value acme openai_api_key sk-acme-1
	# No agent ever ran: no target to name.
	run wfv check acme --json
	echo "$output" | jq -e '.tenants[0].sync == [] and
	    .tenants[0].change_seq == 1'
	sync_once
	run wfv check acme --json
	echo "$output" | jq -e '.tenants[0].sync == [{"target": "default",
	    "acked_seq": 1, "pushed": true}]'
	# A change of another tenant leaves acme's pushed.
	put_value acme openai_api_key sk-acme-2
	put_value beta openai_api_key sk-beta-1
	run wfv check acme --json
	echo "$output" | jq -e '.tenants[0].sync == [{"target": "default",
	    "acked_seq": 1, "pushed": false}] and .tenants[0].change_seq == 2'
	run wfv check acme
	[[ "$output" == *"  sync default: NOT pushed yet (acked seq 1)"* ]]
	sync_once
	run wfv check acme --json
	# Its change left the feed once every target had it: still pushed.
	echo "$output" | jq -e '.tenants[0].sync == [{"target": "default",
	    "acked_seq": 3, "pushed": true}] and .tenants[0].change_seq == null'
	run wfv check acme
	[[ "$output" == *"  sync default: pushed (acked seq 3)"* ]]
}
