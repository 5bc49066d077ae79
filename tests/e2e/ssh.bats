#!/usr/bin/env bats
# Remote clients over SSH (README.md "Remote clients over SSH"): a real
# sshd on a loopback port, started here with a throwaway host key and user
# key, and the CLI and the sync agent reaching the daemon through
# ssh://user@127.0.0.1:PORT/path/to/socket.  The ssh login user is nobody,
# so the daemon sees uid 65534 and applies that uid's allow lines.

load helpers

WFVAULT_SYNC=$E2E_BUILD/wfvault-sync
HARNESS=$E2E_ROOT/tests/worker/harness.mjs
SSHD=/usr/sbin/sshd

setup() {
	# Everything here needs sshd running as root (it changes to the
	# login user): a test that cannot run fails, as a skip reads as a pass.
	if [ "$(id -u)" -ne 0 ]; then
		echo "ssh.bats must run as root (sshd switches to the login" \
		    "user)" >&2
		return 1
	fi
	if [ ! -x "$SSHD" ] || ! command -v ssh >/dev/null; then
		echo "ssh.bats cannot run: install openssh-server and" \
		    "openssh-client (make deps-test does)" >&2
		return 1
	fi
	RUSER=nobody
	RUID=$(id -u "$RUSER") || return 1
	wfv_setup
	# nobody must reach the socket and its authorized_keys file.
	chmod 0711 "$T"
	write_conf "socket_mode 0666" "allow uid:$RUID read,list,write acme"
	start_daemon
	local t
	for t in acme beta gamma; do
		put_value "$t" f "$t-value"
	done
	start_sshd
	write_ssh_config
	export WFVAULT_SSH="ssh -F $T/ssh_config"
	URL="ssh://$RUSER@127.0.0.1:$SSH_PORT$SOCK"
}

teardown() {
	local _
	# SIGTERM, so the harness stops its workerd child too.
	if [ -n "${HARNESS_PID:-}" ]; then
		kill -TERM "$HARNESS_PID" 2>/dev/null || true
		for _ in $(seq 100); do
			pid_alive "$HARNESS_PID" || break
			sleep 0.1
		done
		wait "$HARNESS_PID" 2>/dev/null || true
	fi
	if [ -n "${SSHD_PID:-}" ]; then
		kill -TERM "$SSHD_PID" 2>/dev/null || true
		wait "$SSHD_PID" 2>/dev/null || true
	fi
	wfv_teardown
}

# Starts sshd -D on a free loopback port (sshd takes no port 0, so a
# random port is tried until one binds) and waits until it listens.
start_sshd() {
	local try _
	mkdir -m 0755 "$T/ak"
	ssh-keygen -q -t ed25519 -N '' -C wfv-host -f "$T/host_key" || return 1
	ssh-keygen -q -t ed25519 -N '' -C wfv-user -f "$T/user_key" || return 1
	# Locked down as the README suggests: forwarding only.
	printf 'restrict,port-forwarding %s\n' "$(cat "$T/user_key.pub")" \
	    >"$T/ak/$RUSER"
	chmod 0644 "$T/ak/$RUSER"
	# sshd's privilege separation directory (the package makes it at
	# service start, which a container never does).
	mkdir -p -m 0755 /run/sshd
	for try in $(seq 20); do
		SSH_PORT=$((20000 + RANDOM % 30000))
		# StrictModes would refuse key files under a world-writable
		# /tmp; the directory and the key are ours alone here.
		cat >"$T/sshd_config" <<-EOF
		ListenAddress 127.0.0.1:$SSH_PORT
		HostKey $T/host_key
		PidFile none
		AuthorizedKeysFile $T/ak/%u
		AuthenticationMethods publickey
		PasswordAuthentication no
		KbdInteractiveAuthentication no
		UsePAM no
		StrictModes no
		PermitRootLogin no
		AllowUsers $RUSER
		AllowStreamLocalForwarding yes
		LogLevel VERBOSE
		EOF
		: >"$T/sshd.log"
		"$SSHD" -D -e -f "$T/sshd_config" >>"$T/sshd.log" 2>&1 3>&- \
		    </dev/null &
		SSHD_PID=$!
		# Bounded, generous: a loaded machine starts sshd slowly.
		for _ in $(seq 600); do
			grep -q 'Server listening' "$T/sshd.log" && return 0
			pid_alive "$SSHD_PID" || break
			sleep 0.05
		done
		# It may have exited already (the port was taken).
		kill -TERM "$SSHD_PID" 2>/dev/null || true
		wait "$SSHD_PID" 2>/dev/null || true
		SSHD_PID=
		grep -q 'Address already in use' "$T/sshd.log" || break
	done
	echo "sshd did not start; its log:" >&2
	cat "$T/sshd.log" >&2
	return 1
}

# The client side: our user key, and the throwaway host key as the only
# known one, so host-key checking stays strict.
write_ssh_config() {
	printf '[127.0.0.1]:%s %s\n' "$SSH_PORT" \
	    "$(cut -d' ' -f1,2 "$T/host_key.pub")" >"$T/known_hosts"
	: >"$T/empty_known_hosts"
	cat >"$T/ssh_config" <<-EOF
	Host *
		IdentityFile $T/user_key
		IdentitiesOnly yes
		IdentityAgent none
		UserKnownHostsFile $T/known_hosts
		GlobalKnownHostsFile /dev/null
		StrictHostKeyChecking yes
		ConnectTimeout 60
	EOF
}

# A hang guard for a command that goes through ssh, not a measure: on a
# loaded machine an ssh key exchange alone can take many seconds.
SSH_TIMEOUT=120

# The CLI through ssh:// as nobody.
rwfv() {
	timeout "$SSH_TIMEOUT" "$WFVAULT" -s "$URL" "$@"
}

# ssh children of ours still around (they must all be reaped).
ssh_children() {
	pgrep -f -- "-F $T/ssh_config" || true
}

@test "get through ssh:// reads a value as the ssh login user" {
	run rwfv get acme f
	# The first ssh of the file: if it fails, say why.
	[ "$status" -eq 0 ] || { echo "$output"; cat "$T/sshd.log"; false; }
	[ "$output" = acme-value ]
	# The daemon saw nobody's uid, not root's.
	run timeout "$SSH_TIMEOUT" env WFVAULT_SOCKET="$URL" "$WFVAULT" get acme
	[ "$status" -eq 0 ]
	echo "$output" | jq -e '. == {"f":"acme-value"}'
	grep -q "\"uid\":$RUID" "$AUDIT"
	# The ssh child went with the connection.
	[ -z "$(ssh_children)" ]
}

@test "put through ssh:// reads the value from stdin, never argv" {
	local v
	v=$(random_token)
	run rwfv put acme g <<<"$v"
	[ "$status" -eq 0 ]
	[ "$(wfv get acme g)" = "$v" ]
	! grep -qF -- "$v" "$T/sshd.log" "$LOG" "$AUDIT"
	# From a file through --file -, too.
	printf '%s' "$v-2" | rwfv put acme h --file -
	[ "$(wfv get acme h)" = "$v-2" ]
}

@test "list through ssh:// shows only the tenants the remote uid may list" {
	run wfv list
	[[ "$output" == *beta* ]]
	run rwfv list
	[ "$status" -eq 0 ]
	[[ "$output" == *acme* ]]
	[[ "$output" != *beta* && "$output" != *gamma* ]]
}

@test "a tenant the remote uid has no rule for is denied (exit 4)" {
	run rwfv get beta f
	[ "$status" -eq 4 ]
	[[ "$output" != *beta-value* ]]
	run rwfv put beta g <<<'x'
	[ "$status" -eq 4 ]
	[ "$(wfv get beta f)" = beta-value ]
}

@test "an unreachable host exits 6 with ssh's reason on one line" {
	# Port 1 on loopback: nothing listens there.
	run timeout "$SSH_TIMEOUT" "$WFVAULT" -s "ssh://$RUSER@127.0.0.1:1$SOCK" \
	    get acme f
	[ "$status" -eq 6 ]
	[ "${#lines[@]}" -eq 1 ]
	[[ "$output" == *"Connection refused"* ]]
	[ -z "$(ssh_children)" ]
}

@test "an unknown host key is refused (exit 6), nothing is sent" {
	WFVAULT_SSH="ssh -F $T/ssh_config -o UserKnownHostsFile=$T/empty_known_hosts" \
	    run rwfv get acme f
	[ "$status" -eq 6 ]
	[ "${#lines[@]}" -eq 1 ]
	[[ "$output" == *"Host key verification failed"* ]]
	[[ "$output" != *acme-value* ]]
}

@test "a bad ssh:// URL is a clear error, no ssh is run" {
	run timeout "$SSH_TIMEOUT" "$WFVAULT" -s "ssh://-oProxyCommand=x/s" \
	    get acme f
	[ "$status" -eq 6 ]
	[[ "$output" == *"bad ssh:// URL"* ]]
	run timeout "$SSH_TIMEOUT" "$WFVAULT" \
	    -s "ssh://$RUSER@127.0.0.1:99999$SOCK" get acme f
	[ "$status" -eq 6 ]
	[[ "$output" == *"port"* ]]
}

@test "wfvault-sync syncs through the ssh tunnel to a Worker's KV" {
	local word hurl
	if [ ! -d "$E2E_ROOT/tests/worker/node_modules" ]; then
		echo "tests/worker/node_modules is missing (make test runs" \
		    "npm ci there)" >&2
		return 1
	fi
	mkfifo "$T/ready"
	# Not through bg: its redirection would block on the fifo here.
	node "$HARNESS" --port 0 >"$T/ready" 2>"$T/harness.log" 3>&- &
	HARNESS_PID=$!
	read -r -t 60 word hurl <"$T/ready" || true
	[ "$word" = READY ] || { cat "$T/harness.log" >&2; return 1; }
	cat "$T/ready" >/dev/null 3>&- &
	BG_PIDS="$BG_PIDS $!"
	# The agent's uid on the vault host is the ssh login user.
	write_conf "socket_mode 0666" "allow uid:$RUID sync *"
	restart_daemon
	printf 'test-token\n' >"$T/token"
	chmod 0400 "$T/token"
	cat >"$T/sync.conf" <<-EOF
	socket $URL
	target default
	cf_api_base $hurl/client/v4
	cf_account_id 0123456789abcdef0123456789abcdef
	cf_namespace_id fedcba9876543210fedcba9876543210
	cf_api_token_file $T/token
	EOF
	run timeout "$SSH_TIMEOUT" "$WFVAULT_SYNC" -c "$T/sync.conf" --once
	echo "$output"
	[ "$status" -eq 0 ]
	run curl -sS --max-time 30 "$hurl/tenant/acme/f"
	[ "$(jq -r .value <<<"$output")" = acme-value ]
	run curl -sS --max-time 30 "$hurl/tenant/gamma/f"
	[ "$(jq -r .value <<<"$output")" = gamma-value ]
	# The agent's uid (nobody, through sshd) acknowledged the feed.
	[ "$(tp call sync_state '{"target":"default"}' |
	    jq -r '.result.acked_seq == .result.last_seq')" = true ]
	[ -z "$(ssh_children)" ]
}

@test "a client killed while connected leaves no ssh behind" {
	local agent _
	write_conf "socket_mode 0666" "allow uid:$RUID sync *"
	restart_daemon
	printf 'test-token\n' >"$T/token"
	chmod 0400 "$T/token"
	# An API that refuses the token at once: the agent's preflight fails
	# without retries, and it waits connected to the daemon (watching)
	# for the next try.
	node -e '
	    require("http").createServer((q, r) => {
	        r.writeHead(401, { "content-type": "application/json" });
	        r.end(JSON.stringify({ success: false, messages: [],
	            result: null, errors: [{ code: 10000,
	            message: "Authentication error" }] }));
	    }).listen(0, "127.0.0.1", function () {
	        console.log(this.address().port);
	    });' >"$T/api.port" 3>&- &
	BG_PIDS="$BG_PIDS $!"
	for _ in $(seq 200); do
		[ -s "$T/api.port" ] && break
		sleep 0.05
	done
	[ -s "$T/api.port" ]
	cat >"$T/sync.conf" <<-EOF2
	socket $URL
	target default
	cf_api_base http://127.0.0.1:$(cat "$T/api.port")/client/v4
	cf_account_id 0123456789abcdef0123456789abcdef
	cf_namespace_id fedcba9876543210fedcba9876543210
	cf_api_token_file $T/token
	EOF2
	"$WFVAULT_SYNC" -c "$T/sync.conf" >"$T/agent.log" 2>&1 3>&- &
	agent=$!
	BG_PIDS="$BG_PIDS $agent"
	for _ in $(seq 200); do
		[ -n "$(ssh_children)" ] &&
		    grep -q 'Accepted publickey' "$T/sshd.log" && break
		sleep 0.05
	done
	[ -n "$(ssh_children)" ]
	kill -KILL "$agent"
	wait "$agent" 2>/dev/null || true
	for _ in $(seq 200); do
		[ -z "$(ssh_children)" ] && break
		sleep 0.05
	done
	[ -z "$(ssh_children)" ]
}
