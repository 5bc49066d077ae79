#!/usr/bin/env bash
# How long other clients wait while the master key and a tenant's key are
# rotated online.  Loads BENCH_TENANTS (default 100,000) tenants, then
# sends rotate_master_key on one connection while another connection sends
# `get` after `get`, one at a time: the longest of those round trips is the
# longest stall a client saw (one step of the rotation, plus a group commit
# and a loop turn; wfvaultd logs its longest step too).  Then the same for
# rotate_tenant_key of a tenant with BENCH_VERSIONS (default 1000) versions
# of ~BENCH_CONFIG_BYTES (default 60,000) each.  A benchmark, not a
# test: it reports numbers and checks only that the rotations succeed.
set -euo pipefail
cd "$(dirname "$0")/.."
B=$(cd "${BUILD:-build}" && pwd)
N=${BENCH_TENANTS:-100000}
VERSIONS=${BENCH_VERSIONS:-1000}
CBYTES=${BENCH_CONFIG_BYTES:-60000}

tmp=$(mktemp -d /tmp/wfvault-bench-rotate.XXXXXX)
pid=
cleanup() {
	[ -z "$pid" ] || kill -TERM "$pid" 2>/dev/null || true
	[ -z "$pid" ] || wait "$pid" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "$1; its log:"; tail -n 20 "$tmp/wfvaultd.log"; exit 1; }

"$B/wfvaultd" --gen-key "$tmp/master.key" >/dev/null
"$B/wfvaultd" --gen-key "$tmp/next.key" >/dev/null
cat >"$tmp/wfvaultd.conf" <<CONF
socket $tmp/wfvault.sock
data_dir $tmp/data
master_key_file $tmp/master.key
master_key_next_file $tmp/next.key
map_size 8G
keep_versions $VERSIONS
max_message_bytes 2M
max_config_bytes 1M
CONF
"$B/wfvaultd" -c "$tmp/wfvaultd.conf" -d 2>"$tmp/wfvaultd.log" &
pid=$!
for _ in $(seq 100); do
	"$B/wfvault" -s "$tmp/wfvault.sock" status >/dev/null 2>&1 && break
	sleep 0.05
done
[ -S "$tmp/wfvault.sock" ] || fail "wfvaultd did not start"

echo "== loading $N tenants"
seq 1 "$N" | awk '{ printf "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"put\",\"params\":{\"tenant\":\"tenant-%06d\",\"fields\":{\"openai_api_key\":\"sk-%040d\"}}}\n", $1, $1, $1 }' |
	socat -t 300 - "UNIX-CONNECT:$tmp/wfvault.sock" | grep -c '"result"' >/dev/null

echo "== loading $VERSIONS versions of ~$CBYTES bytes into tenant big"
python3 - "$tmp/wfvault.sock" "$VERSIONS" "$CBYTES" <<'PY'
import json, socket, sys
path, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_UNIX); s.connect(path); f = s.makefile('rwb')
for i in range(n):
    req = {"jsonrpc": "2.0", "id": i, "method": "put", "params": {
        "tenant": "big", "replace": True,
        "fields": {"blob": ("%d-" % i).ljust(size, "x")}}}
    f.write(json.dumps(req).encode() + b"\n")
f.flush()
for i in range(n):
    r = json.loads(f.readline())
    assert "result" in r, r
PY

probe() {
	python3 - "$tmp/wfvault.sock" "$1" "$2" <<'PY'
import json, socket, sys, time, select
path, method, params = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
rot = socket.socket(socket.AF_UNIX); rot.connect(path)
cli = socket.socket(socket.AF_UNIX); cli.connect(path)
cf = cli.makefile('rwb')
get = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "get",
    "params": {"tenant": "tenant-000001"}}).encode() + b"\n"
t0 = time.monotonic()
rot.sendall(json.dumps({"jsonrpc": "2.0", "id": 1, "method": method,
    "params": params}).encode() + b"\n")
worst, probes, buf = 0.0, 0, b""
while True:
    t = time.monotonic()
    cf.write(get); cf.flush()
    r = json.loads(cf.readline())
    assert "result" in r, r
    worst = max(worst, time.monotonic() - t)
    probes += 1
    if select.select([rot], [], [], 0)[0]:
        buf += rot.recv(65536)
        if buf.endswith(b"\n"):
            break
total = time.monotonic() - t0
reply = json.loads(buf)
assert "result" in reply, reply
print("%s: %s in %.0f ms; %d gets answered meanwhile, the slowest in %.1f ms"
    % (method, json.dumps(reply["result"]), total * 1000, probes,
       worst * 1000))
PY
}

echo "== rotate_master_key with $N tenants"
probe rotate_master_key '{}'
# wfvaultd's own count (absent from a wfvaultd that rotates in one go).
grep -o 'master key rotation: .*' "$tmp/wfvaultd.log" || true
echo "== rotate_tenant_key of a tenant with $VERSIONS versions"
probe rotate_tenant_key '{"tenant":"big"}'
grep -o 'tenant key rotation: .*' "$tmp/wfvaultd.log" || true
