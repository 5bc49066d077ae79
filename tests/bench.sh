#!/usr/bin/env bash
# `make bench`: how wfvault-sync does against the local Cloudflare stand-in.
#  1. 100,000 tenants loaded into a fresh vault, then one `wfvault-sync
#     --once`: wall time and the number of KV write requests (target: at
#     most 11).
#  2. The delay from `wfvault put` to a Worker reading the new value through
#     TENANT_CONFIGS, with the long-running agent, over several samples.
#  3. Pacing: a burst of changes, one request each, for two targets under a
#     small request_budget: the requests, how many waited, and the most
#     that arrived at the stand-in in any one window (at most the budget).
#  4. A hanging target: one target's bulk writes get no answer for an hour
#     (request_timeout 1h); the delay from 'wfvault put' to a Worker reading
#     the other target's namespace meanwhile, and how long SIGTERM takes to
#     stop the agent with that request still open.
# A benchmark, not a test: it reports numbers and checks only the request
# count target.  BENCH_TENANTS and BENCH_SAMPLES override the sizes.
set -euo pipefail
cd "$(dirname "$0")/.."
B=$(cd "${BUILD:-build}" && pwd)
N=${BENCH_TENANTS:-100000}
SAMPLES=${BENCH_SAMPLES:-20}
ACCOUNT=0123456789abcdef0123456789abcdef
NAMESPACE=fedcba9876543210fedcba9876543210

tmp=$(mktemp -d /tmp/wfvault-bench.XXXXXX)
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT

now_ms() { date +%s%3N; }

mkfifo "$tmp/ready"
node tests/worker/harness.mjs --port 0 >"$tmp/ready" 2>"$tmp/harness.log" &
pids+=($!)
read -r -t 60 word url <"$tmp/ready"
[ "$word" = READY ] || { cat "$tmp/harness.log"; exit 1; }
cat "$tmp/ready" >/dev/null &
pids+=($!)

"$B/wfvaultd" --gen-key "$tmp/master.key" >/dev/null
cat >"$tmp/wfvaultd.conf" <<EOF
socket $tmp/wfvault.sock
data_dir $tmp/data
master_key_file $tmp/master.key
map_size 4G
EOF
"$B/wfvaultd" -c "$tmp/wfvaultd.conf" 2>"$tmp/wfvaultd.log" &
pids+=($!)
export WFVAULT_SOCKET=$tmp/wfvault.sock
for _ in $(seq 100); do "$B/wfvault" status >/dev/null 2>&1 && break; sleep 0.05; done

printf 'test-token\n' >"$tmp/token"
chmod 0400 "$tmp/token"
cat >"$tmp/sync.conf" <<EOF
socket $tmp/wfvault.sock
cf_api_base $url/client/v4
cf_account_id $ACCOUNT
cf_namespace_id $NAMESPACE
cf_api_token_file $tmp/token
EOF

echo "== loading $N tenants (pipelined puts on one connection)"
t0=$(now_ms)
got=$(seq 1 "$N" | awk '{ printf "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"put\",\"params\":{\"tenant\":\"tenant-%06d\",\"fields\":{\"openai_api_key\":\"sk-%040d\",\"linkedin_client_id\":\"li-%d\"}}}\n", $1, $1, $1, $1 }' |
	socat -t 120 - "UNIX-CONNECT:$tmp/wfvault.sock" | grep -c '"result"')
t1=$(now_ms)
echo "stored $got tenants in $((t1 - t0)) ms ($((got * 1000 / (t1 - t0 + 1))) puts/s, durable, group commit)"

echo "== wfvault-sync --once for $N tenants"
t0=$(now_ms)
"$B/wfvault-sync" -c "$tmp/sync.conf" --once
t1=$(now_ms)
stats=$(curl -sS "$url/__harness/stats")
writes=$(jq -r '.requests.bulk_put // 0' <<<"$stats")
total=$(jq -r '.total' <<<"$stats")
sync_ms=$((t1 - t0))
echo "synced $N tenants in $sync_ms ms with $writes bulk write requests ($total API requests in all)"
last=$(curl -sS "$url/tenant/tenant-$(printf %06d "$N")/linkedin_client_id" | jq -r .value)
[ "$last" = "li-$N" ] || { echo "the last tenant is not in KV ($last)"; exit 1; }

echo "== delay from 'wfvault put' to a Worker reading it ($SAMPLES samples 1.2 s apart, long-running agent)"
"$B/wfvault-sync" -c "$tmp/sync.conf" 2>"$tmp/agent.log" &
pids+=($!)
sleep 1
delays=()
for i in $(seq "$SAMPLES"); do
	v="sk-latency-$i-$RANDOM"
	t0=$(now_ms)
	printf '%s' "$v" | "$B/wfvault" put tenant-000001 openai_api_key
	while [ "$(curl -sS "$url/tenant/tenant-000001/openai_api_key" | jq -r .value)" != "$v" ]; do
		sleep 0.01
		[ $(( $(now_ms) - t0 )) -lt 30000 ] || { echo "not seen after 30 s"; exit 1; }
	done
	delays+=($(( $(now_ms) - t0 )))
	# The agent starts at most one pass a second; space the samples so
	# each measures a change arriving at an idle agent.
	sleep 1.2
done
sorted=$(printf '%s\n' "${delays[@]}" | sort -n)
median=$(sed -n "$(( (SAMPLES + 1) / 2 ))p" <<<"$sorted")
max=$(tail -n 1 <<<"$sorted")
min=$(head -n 1 <<<"$sorted")
echo "put -> Worker sees it: median $median ms, min $min ms, max $max ms"

kill -TERM "${pids[-1]}"
wait "${pids[-1]}" 2>/dev/null || true

PACE_N=${BENCH_PACE_TENANTS:-30}
PACE_REQS=${BENCH_PACE_REQUESTS:-10}
PACE_WINDOW=${BENCH_PACE_WINDOW:-5}
echo "== pacing: $PACE_N changes to each of two targets, one request each, request_budget $PACE_REQS/${PACE_WINDOW}s"
cat >"$tmp/pace.conf" <<EOF
socket $tmp/wfvault.sock
cf_api_base $url/client/v4
cf_account_id $ACCOUNT
cf_api_token_file $tmp/token
request_budget $PACE_REQS/${PACE_WINDOW}s
batch_max_items 1
target pace-a
cf_namespace_id $NAMESPACE
tenants pace-a-*
target pace-b
cf_namespace_id 00112233445566778899aabbccddeeff
tenants pace-b-*
EOF
# The new targets first catch up with the feed: only the burst is left.
"$B/wfvault-sync" -c "$tmp/pace.conf" --once >/dev/null 2>&1
seq 1 "$PACE_N" | awk '{ for (t = 0; t < 2; t++) printf "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"put\",\"params\":{\"tenant\":\"pace-%c-%d\",\"fields\":{\"k\":\"v\"}}}\n", 2 * $1 + t, t ? 98 : 97, $1 }' |
    timeout 120 socat -t 60 - "UNIX-CONNECT:$tmp/wfvault.sock" >/dev/null
curl -sS -X POST "$url/__harness/reset" >/dev/null
t0=$(now_ms)
"$B/wfvault-sync" -c "$tmp/pace.conf" --once 2>"$tmp/pace.log" >/dev/null
t1=$(now_ms)
pace_ms=$((t1 - t0))
pace_reqs=$(curl -sS "$url/__harness/stats" | jq -r .total)
# The most requests that arrived within any one window.
pace_peak=$(curl -sS "$url/__harness/requests" | jq --argjson w "$((PACE_WINDOW * 1000))" \
    '[.requests[].at] | sort as $t | [range(0; $t | length) as $i | [$t[$i:][] | select(. < $t[$i] + $w)] | length] | max // 0')
waited=$(sed -n 's/.*request budget: \([0-9]*\) of .*/\1/p' "$tmp/pace.log")
echo "$pace_reqs requests in $pace_ms ms; ${waited:-0} waited for the budget; at most $pace_peak arrived in any $PACE_WINDOW s (budget $PACE_REQS)"

NS2=00112233445566778899aabbccddeeff
HANG_SAMPLES=${BENCH_HANG_SAMPLES:-10}
echo "== a hanging target: put -> Worker for the other target ($HANG_SAMPLES samples), then SIGTERM"
cat >"$tmp/hang.conf" <<EOF
socket $tmp/wfvault.sock
cf_api_base $url/client/v4
cf_account_id $ACCOUNT
cf_api_token_file $tmp/token
target hang-a
cf_namespace_id $NAMESPACE
tenants hang-a-*
request_timeout 1h
target hang-b
cf_namespace_id $NS2
tenants hang-b-*
EOF
"$B/wfvault-sync" -c "$tmp/hang.conf" --once >/dev/null 2>&1
# Every bulk write to hang-a's namespace is held for an hour.
curl -sS -X POST "$url/__harness/faults" -H 'Content-Type: application/json' \
    --data-binary "{\"route\":\"bulk_put\",\"namespace\":\"$NAMESPACE\",\"kind\":\"slow\",\"delay_ms\":3600000,\"times\":1000}" >/dev/null
"$B/wfvault-sync" -c "$tmp/hang.conf" 2>"$tmp/hang.log" &
hang_pid=$!
pids+=($hang_pid)
printf 'sk-hang' | "$B/wfvault" put hang-a-1 openai_api_key
for _ in $(seq 600); do
	[ "$(curl -sS "$url/__harness/stats" | jq -r '.in_flight // 0')" -ge 1 ] && break
	sleep 0.05
done
hdelays=()
for i in $(seq "$HANG_SAMPLES"); do
	v="sk-other-$i-$RANDOM"
	t0=$(now_ms)
	printf '%s' "$v" | "$B/wfvault" put hang-b-1 openai_api_key
	while [ "$(curl -sS "$url/tenant/hang-b-1/openai_api_key?namespace=$NS2" | jq -r .value)" != "$v" ]; do
		sleep 0.01
		[ $(( $(now_ms) - t0 )) -lt 60000 ] || { echo "not seen after 60 s"; exit 1; }
	done
	hdelays+=($(( $(now_ms) - t0 )))
	sleep 1.2
done
hsorted=$(printf '%s\n' "${hdelays[@]}" | sort -n)
hmedian=$(sed -n "$(( (HANG_SAMPLES + 1) / 2 ))p" <<<"$hsorted")
hmax=$(tail -n 1 <<<"$hsorted")
hung=$(curl -sS "$url/__harness/stats" | jq -r '.in_flight // 0')
t0=$(now_ms)
kill -TERM "$hang_pid"
wait "$hang_pid" 2>/dev/null || true
stop_ms=$(( $(now_ms) - t0 ))
curl -sS -X DELETE "$url/__harness/faults" >/dev/null
echo "other target put -> Worker sees it: median $hmedian ms, max $hmax ms, with $hung request(s) of the hanging target open; SIGTERM to exit: $stop_ms ms"

echo
echo "summary: $N tenants synced in $sync_ms ms with $writes write requests (target <= 11); put-to-Worker median $median ms, max $max ms; pacing: $pace_reqs requests in $pace_ms ms, at most $pace_peak in any ${PACE_WINDOW} s under request_budget $PACE_REQS/${PACE_WINDOW}s; beside a hanging target: median $hmedian ms, max $hmax ms, SIGTERM to exit $stop_ms ms"
if [ "$pace_peak" -gt "$PACE_REQS" ]; then
	echo "FAIL: more than $PACE_REQS requests in one window"
	exit 1
fi
if [ "$writes" -gt 11 ]; then
	echo "FAIL: more than 11 write requests"
	exit 1
fi
