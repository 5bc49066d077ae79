#!/usr/bin/env bash
# `make demo`: a vault on a temporary directory, two tenants onboarded
# (one from an .env file) and checked, read back, an access denial for another uid, the
# configs synced to a local Workers KV (Miniflare running workerd) and what
# a Worker reading TENANT_CONFIGS gets for each tenant, then a clean stop.
# Everything lives in one mktemp directory, removed at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${BUILD:-build}
tmp=$(mktemp -d /tmp/wfvault-demo.XXXXXX)
pid=
hpid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	[ -n "$hpid" ] && kill -TERM "$hpid" 2>/dev/null && wait "$hpid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
chmod 0755 "$tmp"	# so another uid can reach the socket and be refused by the ACL

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

say "Generate a master key and write a config"
run "$B/wfvaultd" --gen-key "$tmp/master.key"
cat >"$tmp/wfvaultd.conf" <<CONF
socket        $tmp/wfvault.sock
socket_mode   0666
data_dir      $tmp/data
master_key_file $tmp/master.key
audit_log     $tmp/audit.log
# the repository's integration catalog, not an installed one
integrations_dir none
integrations_dir $PWD/integrations
# uid 65534 (nobody) may read tenant acme only
allow uid:65534 read acme
CONF
sed 's/^/    /' "$tmp/wfvaultd.conf"
run "$B/wfvaultd" -c "$tmp/wfvaultd.conf" -n

say "Start wfvaultd"
"$B/wfvaultd" -c "$tmp/wfvaultd.conf" 2>"$tmp/wfvaultd.log" &
pid=$!
export WFVAULT_SOCKET="$tmp/wfvault.sock"
for _ in $(seq 100); do "$B/wfvault" status >/dev/null 2>&1 && break; sleep 0.05; done
run "$B/wfvault" status

say "The integration catalog: what each provider needs"
run "$B/wfvault" integrations

say "Onboard tenant acme: OpenAI, Stripe and LinkedIn, from the .env file its keys came in"
cat >"$tmp/acme.env" <<'ENV'
# acme's keys, as the customer handed them over
OPENAI_API_KEY=sk-acme-demo-0123456789abcdef
export STRIPE_SECRET_KEY="sk_test_acmeDemo0123456789abcdef"
LINKEDIN_CLIENT_ID=86acmelinkedinid
LINKEDIN_CLIENT_SECRET='acme-linkedin-secret-0123'
ENV
chmod 0600 "$tmp/acme.env"
sed -E 's/=.*/=…/' "$tmp/acme.env" | sed 's/^/    /'
run "$B/wfvault" onboard acme openai stripe linkedin --from-env "$tmp/acme.env"
rm -f "$tmp/acme.env"

say "Tenant globex has sent its Stripe key; SendGrid is still to come"
printf 'STRIPE_SECRET_KEY=sk_test_globexDemo0123456789abc\n' >"$tmp/globex.env"
run "$B/wfvault" onboard globex stripe sendgrid --from-env "$tmp/globex.env" --partial
rm -f "$tmp/globex.env"

say "Is every tenant ready? (exit 0 only when all are: a deploy can gate on it)"
set +e
run "$B/wfvault" check
rc=$?
set -e
echo "(exit status $rc: globex is not ready)"

say "Read them back"
run "$B/wfvault" list
run "$B/wfvault" fields acme
run "$B/wfvault" get acme openai_api_key
run "$B/wfvault" get globex

say "Another uid (65534) is allowed 'read' on acme only"
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null; then
	as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
	printf '$ (as uid 65534) wfvault get acme openai_api_key\n'
	as_nobody "$B/wfvault" get acme openai_api_key
	printf '$ (as uid 65534) wfvault get globex stripe_secret_key\n'
	set +e
	as_nobody "$B/wfvault" get globex stripe_secret_key
	rc=$?
	set -e
	echo "(exit status $rc: permission denied)"
else
	echo "(skipped: showing another uid needs root and setpriv)"
fi

say "The audit log records who did what, never a value"
tail -n 3 "$tmp/audit.log"

say "Nothing secret is stored in plaintext"
if grep -rqa 'sk-acme-demo-0123456789abcdef' "$tmp/data"; then
	echo "PLAINTEXT FOUND"; exit 1
fi
echo "grep for the OpenAI key in $tmp/data: not found"

say "Start a local Cloudflare: Miniflare (workerd) serving the KV REST API"
mkfifo "$tmp/ready"
node tests/worker/harness.mjs --port 0 >"$tmp/ready" 2>"$tmp/harness.log" &
hpid=$!
read -r -t 60 word url <"$tmp/ready"
[ "$word" = READY ] || { cat "$tmp/harness.log"; exit 1; }
cat "$tmp/ready" >/dev/null &
echo "KV REST API at $url/client/v4"

say "Sync every tenant's config to Workers KV"
printf 'test-token\n' >"$tmp/cf-token"
chmod 0400 "$tmp/cf-token"
cat >"$tmp/wfvault-sync.conf" <<CONF
socket          $tmp/wfvault.sock
cf_api_base     $url/client/v4
cf_account_id   0123456789abcdef0123456789abcdef
cf_namespace_id fedcba9876543210fedcba9876543210
cf_api_token_file $tmp/cf-token
CONF
sed 's/^/    /' "$tmp/wfvault-sync.conf"
run "$B/wfvault-sync" -c "$tmp/wfvault-sync.conf" --once

say "What a Worker gets from: await env.TENANT_CONFIGS.get(tenantId, 'json')"
for t in acme globex; do
	printf '$ curl %s/tenant/%s\n' "$url" "$t"
	curl -sS "$url/tenant/$t" | jq .
done

say "A change reaches the Worker through the long-running agent"
"$B/wfvault-sync" -c "$tmp/wfvault-sync.conf" 2>"$tmp/agent.log" &
apid=$!
printf '%s\n' 'sk-acme-rotated-9876543210abcdef' | run "$B/wfvault" put acme openai_api_key
t0=$(date +%s%3N)
until [ "$(curl -sS "$url/tenant/acme/openai_api_key" | jq -r .value)" = sk-acme-rotated-9876543210abcdef ]; do
	sleep 0.02
	[ $(( $(date +%s%3N) - t0 )) -lt 20000 ] || { echo "not seen in 20 s"; exit 1; }
done
echo "the Worker read the new key $(( $(date +%s%3N) - t0 )) ms after wfvault put returned"
kill -TERM "$apid"; wait "$apid" || true

say "Every version is kept with who made it and when: names, never values"
run "$B/wfvault" history acme
run "$B/wfvault" status

say "Stop wfvaultd (SIGTERM)"
kill -TERM "$pid"; wait "$pid"; echo "wfvaultd exited with status $?"; pid=
