#!/usr/bin/env bash
# `make demo`: a vault on a temporary directory, credentials for two
# tenants stored and read back, an access denial for another uid, and a
# clean stop.  Everything lives in one mktemp directory, removed at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${BUILD:-build}
tmp=$(mktemp -d /tmp/wfvault-demo.XXXXXX)
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
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

say "Store credentials for two tenants (values on stdin, never in argv)"
printf '%s\n' 'sk-acme-demo-0123456789' | run "$B/wfvault" put acme openai_api_key
printf '%s\n' '86acme-linkedin-id' | run "$B/wfvault" put acme linkedin_client_id
printf '%s' '{"stripe_secret_key":"sk_test_globex_42","sendgrid_api_key":"SG.globex.demo"}' |
	run "$B/wfvault" put globex --json

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
if grep -rqa 'sk-acme-demo-0123456789' "$tmp/data"; then
	echo "PLAINTEXT FOUND"; exit 1
fi
echo "grep for the OpenAI key in $tmp/data: not found"

say "Stop wfvaultd (SIGTERM)"
kill -TERM "$pid"; wait "$pid"; echo "wfvaultd exited with status $?"; pid=
