#!/usr/bin/env bats
# The operating-system side of wfvault: the systemd units pass
# systemd-analyze verify and stay within their exposure budgets, the
# daemon and the agent make no system call their units' filters forbid,
# the daemon speaks the notify and socket-activation protocols the units
# rely on, sysusers/tmpfiles make the right users and directories, `make
# install`/`make uninstall` put and take every file, and the manual pages
# render without warnings.  Runs as root in CI; nothing outside mktemp
# directories is touched.

load helpers

UNITS="wfvaultd.service wfvaultd.socket wfvault-sync.service wfvault-backup.service wfvault-backup.timer"
MANS="client/wfvault.1 daemon/wfvaultd.conf.5 daemon/wfvaultd.8 sync/wfvault-sync.8"

setup() {
	S=$(mktemp -d "${TMPDIR:-/tmp}/wfv-systemd.XXXXXX")
	STRACE_PID=
}

teardown() {
	strace_kill
	if [ -n "${T:-}" ]; then
		wfv_teardown
	fi
	rm -rf "$S"
}

# make in the source tree, installing the programs of $BUILD.  They are
# built already (make test built them); "-o all" keeps make from building
# or installing packages in the middle of the test run.
mk() {
	make -C "$E2E_ROOT" --no-print-directory -o all BUILD="$E2E_BUILD" "$@"
}

# Prints the "Overall exposure level" of unit file $1 as a number.
exposure() {
	systemd-analyze security --offline=yes --no-pager "$1" 2>&1 |
	    sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p'
}

# Prints the system calls of the syscall-filter groups and names given,
# groups expanded recursively, one per line.
syscalls_of() {
	local g s
	for g in "$@"; do
		case $g in
		@*)
			systemd-analyze syscall-filter --no-pager "$g" |
			    awk 'NR > 1 && NF && $1 !~ /^#/ { print $1 }' |
			    while read -r s; do syscalls_of "$s"; done
			;;
		*)
			echo "$g"
			;;
		esac
	done
}

# Prints the system calls unit file $1 allows, following its
# SystemCallFilter= lines in order as systemd does: the first allow list
# starts from @default, "~" lines take away, later lines add.
allowed_syscalls() {
	local line list allow=
	: >"$S/allowed"
	while IFS= read -r line; do
		list=${line#SystemCallFilter=}
		case $list in
		"~"*)
			# shellcheck disable=SC2086
			syscalls_of ${list#\~} | sort -u >"$S/deny"
			grep -vxF -f "$S/deny" "$S/allowed" >"$S/allowed.new" || true
			mv "$S/allowed.new" "$S/allowed"
			;;
		*)
			if [ -z "$allow" ]; then
				allow=1
				syscalls_of @default >>"$S/allowed"
			fi
			# shellcheck disable=SC2086
			syscalls_of $list >>"$S/allowed"
			sort -u -o "$S/allowed" "$S/allowed"
			;;
		esac
	done < <(grep '^SystemCallFilter=' "$1")
	[ -n "$allow" ] || return 1
	cat "$S/allowed"
}

# Prints the system calls in strace -f output file $1, one per line.
traced_syscalls() {
	sed -E -e 's/^[0-9]+ +//' -e '/^(---|\+\+\+|<\.\.\.)/d' \
	    -e 's/^([a-z0-9_]+)\(.*/\1/' -e '/^[a-z0-9_]+$/!d' "$1" | sort -u
}

# Fails, naming them, when strace file $1 holds a system call that unit $2
# does not allow.
assert_syscalls_allowed() {
	local bad
	allowed_syscalls "$E2E_ROOT/systemd/$2" >"$S/unit-allows"
	traced_syscalls "$1" >"$S/used"
	[ -s "$S/used" ] || { echo "no system calls traced" >&2; return 1; }
	bad=$(comm -23 "$S/used" "$S/unit-allows")
	if [ -n "$bad" ]; then
		echo "system calls $2 forbids:" $bad >&2
		return 1
	fi
}

# An AddressSanitizer build makes system calls of its own, and its leak
# checker cannot run under ptrace: the service runs a plain build.
sanitized() {
	grep -q __asan_init "$1"
}

# The pids of strace's children: the traced program (and short-lived
# probes of strace's own).
strace_children() {
	cat "/proc/$STRACE_PID/task/$STRACE_PID/children" 2>/dev/null
}

# Ends the strace of $STRACE_PID and what it traces: a tracee outlives a
# killed strace, so it is killed first, by its pid.
strace_kill() {
	local p
	[ -n "${STRACE_PID:-}" ] || return 0
	for p in $(strace_children); do
		kill -KILL "$p" 2>/dev/null
		[ "$p" != "${DAEMON_PID:-}" ] || DAEMON_PID=
	done
	kill -KILL "$STRACE_PID" 2>/dev/null
	wait "$STRACE_PID" 2>/dev/null
	STRACE_PID=
}

# Runs a command under strace -f into file $1, for at most 60 seconds;
# returns the command's status (124 when it took too long).
strace_run() {
	local out=$1 _ rc
	shift
	strace -f -qq -o "$out" "$@" 3>&- </dev/null &
	STRACE_PID=$!
	for _ in $(seq 600); do
		pid_alive "$STRACE_PID" || break
		sleep 0.1
	done
	if pid_alive "$STRACE_PID"; then
		strace_kill
		return 124
	fi
	wait "$STRACE_PID"
	rc=$?
	STRACE_PID=
	return "$rc"
}

strace_works() {
	command -v strace >/dev/null 2>&1 &&
	    strace -f -qq -o /dev/null true >/dev/null 2>&1
}

@test "the units pass systemd-analyze verify as installed" {
	command -v systemd-analyze >/dev/null || skip "systemd is not installed"
	# Installed into a private prefix, the units name programs and manual
	# pages that exist, so verify checks them too.
	run mk install PREFIX="$S/usr" SYSCONFDIR="$S/etc"
	[ "$status" -eq 0 ] || { echo "$output" >&2; false; }
	grep -q "^ExecStart=$S/usr/sbin/wfvaultd -c $S/etc/wfvault/wfvaultd.conf\$" \
	    "$S/usr/lib/systemd/system/wfvaultd.service"
	for u in $UNITS; do
		run env MANPATH="$S/usr/share/man" systemd-analyze verify \
		    "$S/usr/lib/systemd/system/$u"
		echo "$u: $output"
		[ "$status" -eq 0 ]
		[ -z "$output" ]
	done
}

@test "systemd-analyze verify notices a broken unit" {
	command -v systemd-analyze >/dev/null || skip "systemd is not installed"
	sed -e 's|^ExecStart=/usr/sbin/wfvaultd|ExecStart=/nonexistent/wfvaultd|' \
	    "$E2E_ROOT/systemd/wfvaultd.service" >"$S/wfvaultd.service"
	run systemd-analyze verify --man=no "$S/wfvaultd.service"
	[ "$status" -ne 0 ]
	[[ "$output" == */nonexistent/wfvaultd* ]]
}

@test "wfvaultd.service is rated at most 1.0 by systemd-analyze security" {
	command -v systemd-analyze >/dev/null || skip "systemd is not installed"
	score=$(exposure "$E2E_ROOT/systemd/wfvaultd.service")
	echo "# wfvaultd.service exposure: $score" >&3
	[ -n "$score" ]
	awk -v s="$score" 'BEGIN { exit !(s <= 1.0) }'
}

@test "wfvault-sync.service is rated at most 1.5 by systemd-analyze security" {
	command -v systemd-analyze >/dev/null || skip "systemd is not installed"
	score=$(exposure "$E2E_ROOT/systemd/wfvault-sync.service")
	echo "# wfvault-sync.service exposure: $score" >&3
	[ -n "$score" ]
	awk -v s="$score" 'BEGIN { exit !(s <= 1.5) }'
}

@test "wfvault-backup.service is rated at most 1.0 by systemd-analyze security" {
	command -v systemd-analyze >/dev/null || skip "systemd is not installed"
	score=$(exposure "$E2E_ROOT/systemd/wfvault-backup.service")
	echo "# wfvault-backup.service exposure: $score" >&3
	[ -n "$score" ]
	awk -v s="$score" 'BEGIN { exit !(s <= 1.0) }'
}

@test "the exposure check fails a unit above the budget" {
	command -v systemd-analyze >/dev/null || skip "systemd is not installed"
	printf '[Service]\nExecStart=/bin/true\n' >"$S/loose.service"
	score=$(exposure "$S/loose.service")
	[ -n "$score" ]
	run awk -v s="$score" 'BEGIN { exit !(s <= 1.5) }'
	[ "$status" -ne 0 ]
}

@test "the units keep what the daemon and the clients rely on" {
	d=$E2E_ROOT/systemd/wfvaultd.service
	for want in Type=notify NotifyAccess=main WatchdogSec=30s \
	    User=wfvault Group=wfvault \
	    'ExecStart=/usr/sbin/wfvaultd -c /etc/wfvault/wfvaultd.conf' \
	    'ExecReload=/bin/kill -HUP $MAINPID' \
	    LoadCredentialEncrypted=master-key:/etc/wfvault/master-key.cred \
	    StateDirectoryMode=0700 RuntimeDirectoryMode=0750 UMask=0077 \
	    LimitCORE=0 RestrictAddressFamilies=AF_UNIX Restart=on-failure; do
		grep -qxF -- "$want" "$d" || { echo "$d lacks $want" >&2; false; }
	done
	# Either would hide the clients' real uids or the socket's owner.
	run grep -E '^(PrivateUsers|DynamicUser)=' "$d"
	[ "$status" -eq 1 ]
	s=$E2E_ROOT/systemd/wfvault-sync.service
	for want in Type=simple User=wfvault-sync Restart=on-failure \
	    RestartSec=10s \
	    'ExecStart=/usr/bin/wfvault-sync -c /etc/wfvault/wfvault-sync.conf' \
	    LoadCredentialEncrypted=cf-api-token:/etc/wfvault/cf-api-token.cred \
	    'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6'; do
		grep -qxF -- "$want" "$s" || { echo "$s lacks $want" >&2; false; }
	done
	grep -Eq '^Wants=.*wfvaultd\.service' "$s"
	grep -Eq '^After=.*wfvaultd\.service' "$s"
	b=$E2E_ROOT/systemd/wfvault-backup.service
	for want in Type=oneshot User=wfvault Group=wfvault \
	    'ExecStart=/usr/libexec/wfvault/wfvault-backup -c /etc/wfvault/wfvaultd.conf' \
	    LoadCredentialEncrypted=master-key:/etc/wfvault/master-key.cred \
	    ReadWritePaths=-/var/backups/wfvault \
	    EnvironmentFile=-/etc/default/wfvault-backup \
	    Environment=WFVAULT_BACKUP_KEEP=14 \
	    RestrictAddressFamilies=AF_UNIX PrivateNetwork=yes; do
		grep -qxF -- "$want" "$b" || { echo "$b lacks $want" >&2; false; }
	done
	# A backup must not start a daemon stopped on purpose (a restore).
	run grep -E '^(Wants|Requires|BindsTo)=.*wfvaultd' "$b"
	[ "$status" -eq 1 ]
	t=$E2E_ROOT/systemd/wfvault-backup.timer
	for want in OnCalendar=daily Persistent=true RandomizedDelaySec=1h \
	    WantedBy=timers.target; do
		grep -qxF -- "$want" "$t" || { echo "$t lacks $want" >&2; false; }
	done
	k=$E2E_ROOT/systemd/wfvaultd.socket
	for want in ListenStream=/run/wfvault/wfvault.sock SocketUser=wfvault \
	    SocketGroup=wfvault SocketMode=0660 Service=wfvaultd.service; do
		grep -qxF -- "$want" "$k" || { echo "$k lacks $want" >&2; false; }
	done
}

@test "wfvaultd makes no system call its unit forbids" {
	command -v systemd-analyze >/dev/null || skip "systemd is not installed"
	strace_works || skip "strace cannot trace here"
	! sanitized "$WFVAULTD" || skip "a sanitizer build"
	wfv_setup
	write_conf "allow uid:0 admin *"
	strace -f -qq -o "$S/trace" "$WFVAULTD" -c "$CONF" >>"$LOG" 2>&1 \
	    3>&- </dev/null &
	STRACE_PID=$!
	# The daemon is strace's child that runs wfvaultd (strace also forks
	# short-lived children of its own to probe ptrace).
	DAEMON_PID=
	exe=$(readlink -f "$WFVAULTD")
	for _ in $(seq 200); do
		for p in $(strace_children); do
			if [ "$(readlink "/proc/$p/exe")" = "$exe" ]; then
				DAEMON_PID=$p
			fi
		done
		[ -n "$DAEMON_PID" ] && break
		sleep 0.05
	done
	[ -n "$DAEMON_PID" ]
	wait_ready
	# The paths a service goes through: writes, reads, a listing, the
	# status, a reload, a version read, a delete, and an orderly stop.
	put_value acme openai_api_key sk-one
	put_value acme openai_api_key sk-two
	[ "$(wfv get acme openai_api_key)" = sk-two ]
	[ "$(wfv get acme openai_api_key --version 1)" = sk-one ]
	wfv list >/dev/null
	wfv status >/dev/null
	kill -HUP "$DAEMON_PID"
	wait_for_line "$LOG" 50 "reloaded"
	wfv rm acme
	kill -TERM "$DAEMON_PID"
	for _ in $(seq 200); do
		pid_alive "$DAEMON_PID" || break
		sleep 0.05
	done
	if pid_alive "$DAEMON_PID"; then
		echo "wfvaultd ignored SIGTERM" >&2
		false
	fi
	DAEMON_PID=
	# strace exits with the daemon's status.
	wait "$STRACE_PID"
	STRACE_PID=
	grep -q stopped "$LOG"
	assert_syscalls_allowed "$S/trace" wfvaultd.service
	# The filter this checks against is not empty: mlock (for
	# sodium_malloc) and prlimit64 (setrlimit) were used and are allowed.
	grep -qx mlock "$S/used"
	grep -qx mlock "$S/unit-allows"
	run grep -x setuid "$S/unit-allows"
	[ "$status" -eq 1 ]
}

@test "wfvault-backup makes no system call its unit forbids" {
	command -v systemd-analyze >/dev/null || skip "systemd is not installed"
	strace_works || skip "strace cannot trace here"
	! sanitized "$WFVAULTD" || skip "a sanitizer build"
	wfv_setup
	write_conf "allow uid:0 admin *" "backup_dir $T/backups"
	start_daemon
	put_value acme openai_api_key sk-one
	wfv backup 2>/dev/null
	# The whole run: the client, the verifying restore, the pruning.
	rc=0
	strace_run "$S/trace" env WFVAULT_SOCKET="$SOCK" \
	    WFVAULT_BACKUP_CLI="$WFVAULT" WFVAULT_BACKUP_DAEMON="$WFVAULTD" \
	    TMPDIR="$T" "$E2E_ROOT/systemd/wfvault-backup.sh" -c "$CONF" \
	    -k 1 >"$S/backup.out" 2>&1 || rc=$?
	cat "$S/backup.out"
	[ "$rc" -eq 0 ]
	grep -q '^verified ' "$S/backup.out"
	grep -q '^removed ' "$S/backup.out"
	assert_syscalls_allowed "$S/trace" wfvault-backup.service
	grep -qx unlink "$S/used" || grep -qx unlinkat "$S/used"
}

# Starts a stand-in for the Cloudflare API on 127.0.0.1 that answers every
# request with the HTTP reply in file $1; sets API_PORT.
start_fake_api() {
	local _ pid
	for _ in 1 2 3 4 5; do
		API_PORT=$((20000 + RANDOM % 20000))
		socat "TCP-LISTEN:$API_PORT,bind=127.0.0.1,reuseaddr,fork" \
		    SYSTEM:"cat $1" 3>&- 2>/dev/null &
		pid=$!
		BG_PIDS="$BG_PIDS $pid"
		sleep 0.3
		pid_alive "$pid" && return 0
	done
	echo "no free port for the fake API" >&2
	return 1
}

@test "wfvault-sync makes no system call its unit forbids" {
	command -v systemd-analyze >/dev/null || skip "systemd is not installed"
	strace_works || skip "strace cannot trace here"
	[ -x "$E2E_BUILD/wfvault-sync" ] || skip "wfvault-sync is not built"
	! sanitized "$E2E_BUILD/wfvault-sync" || skip "a sanitizer build"
	wfv_setup
	write_conf "allow uid:0 admin *"
	start_daemon
	put_value acme openai_api_key sk-one
	body='{"success":true,"errors":[],"messages":[],"result":{"successful_key_count":1,"unsuccessful_keys":[]}}'
	printf 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' \
	    "${#body}" "$body" >"$S/reply"
	start_fake_api "$S/reply"
	printf 'test-token\n' >"$T/token"
	chmod 0600 "$T/token"
	{
		echo "socket $SOCK"
		echo "cf_api_base http://127.0.0.1:$API_PORT/client/v4"
		echo "cf_account_id 0123456789abcdef0123456789abcdef"
		echo "cf_namespace_id fedcba9876543210fedcba9876543210"
		echo "cf_api_token_file $T/token"
		# The fake API may answer before it reads the request (an empty
		# reply, retried): no 130 s settle wait past strace_run's 60 s.
		echo "settle_time 0s"
	} >"$T/sync.conf"
	# The agent reads the feed and the config, writes through the HTTP
	# client (a resolver thread, poll, the socket), acknowledges, exits.
	rc=0
	strace_run "$S/trace" "$E2E_BUILD/wfvault-sync" -c "$T/sync.conf" \
	    --once >"$S/sync.out" 2>&1 || rc=$?
	cat "$S/sync.out"
	[ "$rc" -eq 0 ]
	grep -q "up to date" "$S/sync.out"
	assert_syscalls_allowed "$S/trace" wfvault-sync.service
	grep -qx connect "$S/used"
}

@test "wfvaultd speaks the notify and socket-activation protocols of its units" {
	command -v systemd-socket-activate >/dev/null ||
	    skip "systemd-socket-activate is not installed"
	wfv_setup
	write_conf "allow uid:0 admin *"
	# The notify socket: every datagram the daemon sends lands in a file.
	socat -u UNIX-RECV:"$T/notify" OPEN:"$T/notified",creat,append \
	    3>&- 2>/dev/null &
	BG_PIDS="$BG_PIDS $!"
	for _ in $(seq 100); do
		[ -S "$T/notify" ] && break
		sleep 0.05
	done
	# systemd-socket-activate owns the socket, as wfvaultd.socket does,
	# and starts the daemon with LISTEN_FDS=1 on the first connection.
	DAEMON_PREFIX="systemd-socket-activate -l $SOCK -E NOTIFY_SOCKET=$T/notify -E WATCHDOG_USEC=400000"
	start_daemon
	[ -S "$SOCK" ]
	put_value acme k v
	[ "$(wfv get acme k)" = v ]
	grep -q "using the socket passed by systemd" "$LOG"
	# READY=1 once serving, then a watchdog ping with a STATUS line at
	# half of WATCHDOG_USEC.
	wait_for_line "$T/notified" 50 "READY=1"
	wait_for_line "$T/notified" 50 "STATUS=serving 1 tenants"
	for _ in $(seq 200); do
		[ "$(grep -o 'WATCHDOG=1' "$T/notified" | wc -l)" -ge 3 ] && break
		sleep 0.05
	done
	[ "$(grep -o 'WATCHDOG=1' "$T/notified" | wc -l)" -ge 3 ]
	stop_daemon
	wait_for_line "$T/notified" 50 "STOPPING=1"
	# The socket belongs to whoever passed it: the daemon leaves it.
	[ -S "$SOCK" ]
}

@test "sysusers and tmpfiles make the users, the membership and the directories" {
	command -v systemd-sysusers >/dev/null || skip "systemd is not installed"
	[ "$(id -u)" -eq 0 ] || skip "tmpfiles needs root to chown"
	r=$S/root
	mkdir -p "$r/etc"
	for f in passwd group shadow gshadow; do
		[ ! -e "/etc/$f" ] || cp -p "/etc/$f" "$r/etc/$f"
	done
	# A config that is already there gets the group's read access.
	mkdir -m 0755 "$r/etc/wfvault"
	install -m 0600 "$E2E_ROOT/config/wfvaultd.conf.example" \
	    "$r/etc/wfvault/wfvaultd.conf"
	systemd-sysusers --root="$r" - <"$E2E_ROOT/systemd/wfvault.sysusers"
	grep -Eq '^wfvault:x:[0-9]+:[0-9]+:[^:]*:/var/lib/wfvault:/usr/sbin/nologin$' \
	    "$r/etc/passwd"
	grep -Eq '^wfvault-sync:x:[0-9]+:[0-9]+:[^:]*:[^:]*:/usr/sbin/nologin$' \
	    "$r/etc/passwd"
	grep -Eq '^wfvault:x:[0-9]+:(.*,)?wfvault-sync(,.*)?$' "$r/etc/group"
	grep -Eq '^wfvault-sync:x:[0-9]+:' "$r/etc/group"
	uid=$(awk -F: '$1 == "wfvault" { print $3 }' "$r/etc/passwd")
	gid=$(awk -F: '$1 == "wfvault" { print $3 }' "$r/etc/group")
	[ "$uid" -lt 1000 ]
	systemd-tmpfiles --create --root="$r" - <"$E2E_ROOT/systemd/wfvault.tmpfiles"
	[ "$(stat -c '%a %u %g' "$r/etc/wfvault")" = "750 0 $gid" ]
	[ "$(stat -c '%a %u %g' "$r/etc/wfvault/wfvaultd.conf")" = "640 0 $gid" ]
	[ "$(stat -c '%a %u %g' "$r/var/lib/wfvault")" = "700 $uid $gid" ]
	[ "$(stat -c '%a %u %g' "$r/var/backups/wfvault")" = "700 $uid $gid" ]
	[ "$(stat -c '%a %u %g' "$r/run/wfvault")" = "750 $uid $gid" ]
}

# Checks that file $2 exists under $1 with mode $3.
assert_file_mode() {
	if [ ! -f "$1$2" ]; then
		echo "make install did not put $2" >&2
		return 1
	fi
	if [ "$(stat -c %a "$1$2")" != "$3" ]; then
		echo "$2 has mode $(stat -c %a "$1$2"), not $3" >&2
		return 1
	fi
}

@test "make install puts every file in place with its mode" {
	d=$S/dest
	run mk install DESTDIR="$d" PREFIX=/usr
	[ "$status" -eq 0 ] || { echo "$output" >&2; false; }
	assert_file_mode "$d" /usr/sbin/wfvaultd 755
	assert_file_mode "$d" /usr/bin/wfvault 755
	assert_file_mode "$d" /usr/bin/wfvault-sync 755
	assert_file_mode "$d" /usr/libexec/wfvault/wfvault-test 755
	assert_file_mode "$d" /usr/libexec/wfvault/wfvault-backup 755
	cmp "$E2E_ROOT/systemd/wfvault-backup.sh" \
	    "$d/usr/libexec/wfvault/wfvault-backup"
	# The installed CLI finds its helper (else exit 1, not 6).
	run env -u WFVAULT_TEST_HELPER "$d/usr/bin/wfvault" \
	    -s "$S/nowhere.sock" test acme
	[ "$status" -eq 6 ] || { echo "$output" >&2; false; }
	for u in $UNITS; do
		assert_file_mode "$d" "/usr/lib/systemd/system/$u" 644
		cmp "$E2E_ROOT/systemd/$u" "$d/usr/lib/systemd/system/$u"
	done
	assert_file_mode "$d" /usr/lib/sysusers.d/wfvault.conf 644
	assert_file_mode "$d" /usr/lib/tmpfiles.d/wfvault.conf 644
	assert_file_mode "$d" /usr/share/man/man1/wfvault.1 644
	assert_file_mode "$d" /usr/share/man/man5/wfvaultd.conf.5 644
	assert_file_mode "$d" /usr/share/man/man8/wfvaultd.8 644
	assert_file_mode "$d" /usr/share/man/man8/wfvault-sync.8 644
	assert_file_mode "$d" /usr/share/bash-completion/completions/wfvault 644
	cmp "$E2E_ROOT/completion/wfvault.bash" \
	    "$d/usr/share/bash-completion/completions/wfvault"
	assert_file_mode "$d" /etc/wfvault/wfvaultd.conf 640
	assert_file_mode "$d" /etc/wfvault/wfvault-sync.conf 640
	[ "$(stat -c %a "$d/etc/wfvault")" = 750 ]
	cmp "$E2E_ROOT/config/wfvaultd.conf.example" "$d/etc/wfvault/wfvaultd.conf"
	cmp "$E2E_BUILD/wfvaultd" "$d/usr/sbin/wfvaultd"
	# The shipped integration catalog, where wfvaultd looks by default.
	local f n=0
	for f in "$E2E_ROOT"/integrations/*.json; do
		assert_file_mode "$d" "/usr/share/wfvault/integrations/${f##*/}" 644
		cmp "$f" "$d/usr/share/wfvault/integrations/${f##*/}"
		n=$((n + 1))
	done
	[ "$n" -ge 7 ]
	# Nothing else: no stray temporary files.
	[ "$(find "$d" -type f | wc -l)" -eq $((19 + n)) ]
}

@test "make install under another prefix makes the units name it" {
	d=$S/dest
	run mk install DESTDIR="$d" PREFIX=/opt/wfv SYSCONFDIR=/opt/wfv/etc
	[ "$status" -eq 0 ] || { echo "$output" >&2; false; }
	u=$d/opt/wfv/lib/systemd/system
	grep -qxF 'ExecStart=/opt/wfv/sbin/wfvaultd -c /opt/wfv/etc/wfvault/wfvaultd.conf' \
	    "$u/wfvaultd.service"
	grep -qxF 'ExecStart=/opt/wfv/bin/wfvault-sync -c /opt/wfv/etc/wfvault/wfvault-sync.conf' \
	    "$u/wfvault-sync.service"
	grep -qxF 'LoadCredentialEncrypted=master-key:/opt/wfv/etc/wfvault/master-key.cred' \
	    "$u/wfvaultd.service"
	grep -qxF 'ExecStart=/opt/wfv/libexec/wfvault/wfvault-backup -c /opt/wfv/etc/wfvault/wfvaultd.conf' \
	    "$u/wfvault-backup.service"
	b=$d/opt/wfv/libexec/wfvault/wfvault-backup
	grep -q '^WFVAULT=${WFVAULT_BACKUP_CLI:-/opt/wfv/bin/wfvault}$' "$b"
	grep -q '^WFVAULTD=${WFVAULT_BACKUP_DAEMON:-/opt/wfv/sbin/wfvaultd}$' "$b"
	grep -q '^conf=/opt/wfv/etc/wfvault/wfvaultd.conf$' "$b"
	run grep '/usr/s\?bin/wfvault' "$u"/*.service
	[ "$status" -eq 1 ]
	grep -q '^d	/opt/wfv/etc/wfvault	' \
	    "$d/opt/wfv/lib/tmpfiles.d/wfvault.conf"
	# The system's nologin is not the prefix's.
	grep -q /usr/sbin/nologin "$d/opt/wfv/lib/sysusers.d/wfvault.conf"
	[ -f "$d/opt/wfv/etc/wfvault/wfvaultd.conf" ]
	[ -x "$d/opt/wfv/sbin/wfvaultd" ]
}

@test "a second make install keeps an edited config" {
	d=$S/dest
	run mk install DESTDIR="$d" PREFIX=/usr
	[ "$status" -eq 0 ] || { echo "$output" >&2; false; }
	c=$d/etc/wfvault/wfvaultd.conf
	echo "allow user:deploy read acme" >>"$c"
	cp "$c" "$S/edited"
	run mk install DESTDIR="$d" PREFIX=/usr
	[ "$status" -eq 0 ] || { echo "$output" >&2; false; }
	cmp "$S/edited" "$c"
	[[ "$output" == *"kept $c"* ]]
	cmp "$E2E_ROOT/config/wfvaultd.conf.example" "$c.example"
	cmp "$E2E_ROOT/config/wfvault-sync.conf.example" \
	    "$d/etc/wfvault/wfvault-sync.conf.example"
}

@test "make uninstall removes what make install put but edited configs" {
	d=$S/dest
	run mk install DESTDIR="$d" PREFIX=/usr
	[ "$status" -eq 0 ] || { echo "$output" >&2; false; }
	echo "allow user:deploy read acme" >>"$d/etc/wfvault/wfvaultd.conf"
	cp "$d/etc/wfvault/wfvaultd.conf" "$S/edited"
	run mk install DESTDIR="$d" PREFIX=/usr
	[ "$status" -eq 0 ]
	run mk uninstall DESTDIR="$d" PREFIX=/usr
	[ "$status" -eq 0 ] || { echo "$output" >&2; false; }
	[[ "$output" == *"kept the edited $d/etc/wfvault/wfvaultd.conf"* ]]
	# Left: the edited config alone.
	run find "$d" -type f
	[ "$output" = "$d/etc/wfvault/wfvaultd.conf" ]
	cmp "$S/edited" "$d/etc/wfvault/wfvaultd.conf"
	# Without edits, /etc/wfvault goes too.
	rm -rf "$d"
	run mk install DESTDIR="$d" PREFIX=/usr
	[ "$status" -eq 0 ]
	run mk uninstall DESTDIR="$d" PREFIX=/usr
	[ "$status" -eq 0 ]
	[ "$(find "$d" -type f | wc -l)" -eq 0 ]
	[ ! -e "$d/etc/wfvault" ]
}

@test "the manual pages render without warnings" {
	command -v man >/dev/null || skip "man-db is not installed"
	for m in $MANS; do
		run env MANWIDTH=80 LC_ALL=C.UTF-8 man --warnings -l "$E2E_ROOT/$m"
		[ "$status" -eq 0 ]
		n=$(basename "$m")
		n=${n%.*}
		[[ "$output" == *NAME*"$n "* ]]
		[[ "$output" == *"SEE ALSO"* ]]
		# Warnings go to stderr, which run mixes in: render again for it.
		err=$(MANWIDTH=80 man --warnings -l "$E2E_ROOT/$m" 2>&1 >/dev/null)
		[ -z "$err" ] || { echo "$m: $err" >&2; false; }
	done
}

@test "the manual pages are mandoc -T lint clean" {
	command -v mandoc >/dev/null || skip "mandoc is not installed"
	for m in $MANS; do
		run mandoc -T lint -W warning "$E2E_ROOT/$m"
		[ "$status" -eq 0 ] || { echo "$m: $output" >&2; false; }
		[ -z "$output" ]
	done
}

@test "wfvault-sync(8) renders its literals and lists each key once" {
	command -v mandoc >/dev/null || skip "mandoc is not installed"
	# Without the overstrike that makes bold.
	run bash -c 'mandoc -T ascii "$1" | sed "s/.\x08//g"' _ \
	    "$E2E_ROOT/sync/wfvault-sync.8"
	[ "$status" -eq 0 ]
	# Quotes inside a literal are not taken for argument quotes.
	[[ "$output" == *'{"version": N, "wfvault": 1}'* ]]
	# Each configuration key has one entry.
	[ "$(grep -c '^     seal_key_file path' <<<"$output")" -eq 1 ]
	# "0% to 100%", with no quoted stray "%".
	[[ "$output" == *"0% to 100%"* ]]
	[[ "$output" != *"(\`%"* ]]
}
