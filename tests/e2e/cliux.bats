#!/usr/bin/env bats
# What script authors and people at a terminal expect of the CLI (README.md
# "Using the CLI"): errors as JSON on stderr under --json, rm TENANT asking
# on a terminal, and the bash completion, against a private daemon.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	wfv_setup
	write_conf
	start_daemon
}

teardown() {
	wfv_teardown
}

# Runs "wfvault -s $SOCK ARGS..." on a pseudo-terminal (script(1)), with
# $T/answer typed on it; the terminal's output lands in $T/tty.out.
on_tty() {
	local cmd done=$T/tty.done
	rm -f "$done"
	cmd=$(printf '%q ' "$WFVAULT" -s "$SOCK" "$@")
	cmd="$cmd; echo \"rc=\$?\"; : >$(printf '%q' "$done")"
	# script gives the command a pty as stdin, stdout and stderr.  The
	# answer waits in the terminal's input until it is read; script's
	# stdin stays open until the command is done, as a person's would.
	timeout "$WFV_TIMEOUT" script -qec "$cmd" /dev/null \
	    < <(cat "$T/answer"; wait_file "$done") >"$T/tty.out" 2>&1
}

# Waits (bounded) until file $1 exists.
wait_file() {
	local _
	for _ in $(seq 400); do
		[ -e "$1" ] && return 0
		sleep 0.05
	done
	return 1
}

# --- errors as JSON -------------------------------------------------------

@test "--json: a daemon error is one JSON object on stderr, same status" {
	run --separate-stderr wfv get nosuch --json
	[ "$status" -eq 3 ]
	[ -z "$output" ]
	[ "$(printf '%s\n' "$stderr" | wc -l)" -eq 1 ]
	printf '%s' "$stderr" | jq -e '.error.code == -32002 and
	    .error.kind == "not_found" and .error.exit == 3 and
	    (.error.message | type == "string" and length > 0)'
}

@test "--json: usage errors, before or after --json, are JSON too" {
	run --separate-stderr wfv --json frobnicate
	[ "$status" -eq 2 ]
	printf '%s' "$stderr" | jq -e '.error.exit == 2 and
	    (.error | has("code") | not) and (.error | has("kind") | not) and
	    (.error.message | test("unknown command"))'
	run --separate-stderr wfv get --json
	[ "$status" -eq 2 ]
	printf '%s' "$stderr" | jq -e '.error.exit == 2'
	run --separate-stderr wfv get 'bad id!' --json
	[ "$status" -eq 2 ]
	printf '%s' "$stderr" | jq -e '.error.exit == 2'
}

@test "--json: an unreachable daemon is a JSON error with exit 6" {
	run --separate-stderr "$WFVAULT" -s "$T/nowhere.sock" list --json
	[ "$status" -eq 6 ]
	printf '%s' "$stderr" | jq -e '.error.exit == 6 and
	    (.error.message | test("wfvaultd running"))'
}

@test "--json: a --cas conflict carries the daemon's code and kind" {
	put_value acme k v1
	run --separate-stderr bash -c "printf v2 | $(printf '%q' "$WFVAULT") \
	    -s $(printf '%q' "$SOCK") put acme k --cas 7 --json"
	[ "$status" -eq 5 ]
	printf '%s' "$stderr" | jq -e '.error.kind == "conflict" and
	    (.error.code | type == "number") and .error.exit == 5'
}

@test "without --json errors stay one wfvault: line" {
	run --separate-stderr wfv get nosuch
	[ "$status" -eq 3 ]
	[[ "$stderr" == "wfvault: "* ]]
	# "--json" after "--" is run's command's, not ours.
	run --separate-stderr wfv run nosuch -- /bin/echo --json
	[ "$status" -eq 3 ]
	[[ "$stderr" == "wfvault: "* ]]
}

# --- rm TENANT on a terminal ----------------------------------------------

@test "rm TENANT on a terminal asks; n keeps the tenant" {
	put_value acme k v
	echo n >"$T/answer"
	on_tty rm acme
	grep -qF "remove tenant 'acme' and every version of it? [y/N]" \
	    "$T/tty.out"
	grep -q 'rc=1' "$T/tty.out"
	wfv get acme k
	# An empty answer (just Enter) is no too.
	echo >"$T/answer"
	on_tty rm acme
	grep -q 'rc=1' "$T/tty.out"
	wfv get acme k
}

@test "rm TENANT on a terminal asks; y removes it" {
	put_value acme k v
	echo y >"$T/answer"
	on_tty rm acme
	grep -qF "[y/N]" "$T/tty.out"
	grep -q 'rc=0' "$T/tty.out"
	run wfv get acme
	[ "$status" -eq 3 ]
	put_value beta k v
	echo YES >"$T/answer"
	on_tty rm beta --purge
	grep -q 'rc=0' "$T/tty.out"
	run wfv get beta
	[ "$status" -eq 3 ]
}

@test "rm TENANT --yes on a terminal does not ask" {
	put_value acme k v
	: >"$T/answer"
	on_tty rm acme --yes
	! grep -qF "[y/N]" "$T/tty.out"
	grep -q 'rc=0' "$T/tty.out"
	put_value beta k v
	on_tty rm -y beta
	grep -q 'rc=0' "$T/tty.out"
	run wfv get beta
	[ "$status" -eq 3 ]
}

@test "rm TENANT FIELD on a terminal does not ask" {
	put_value acme k v
	put_value acme j w
	: >"$T/answer"
	on_tty rm acme k
	! grep -qF "[y/N]" "$T/tty.out"
	grep -q 'rc=0' "$T/tty.out"
	[ "$(wfv get acme j)" = w ]
}

@test "rm TENANT from a pipe never asks" {
	put_value acme k v
	run --separate-stderr bash -c "echo n | $(printf '%q' "$WFVAULT") \
	    -s $(printf '%q' "$SOCK") rm acme"
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	run wfv get acme
	[ "$status" -eq 3 ]
}

# --- bash completion -------------------------------------------------------

# Completes the words given (the last one is the one under the cursor) as
# bash would, with the completion script sourced; prints COMPREPLY sorted.
complete_words() {
	WFVAULT="$WFVAULT" bash -c '
		source "$1"
		shift
		COMP_WORDS=("$WFVAULT" "$@")
		COMP_CWORD=$#
		COMP_LINE="${COMP_WORDS[*]}"
		COMP_POINT=${#COMP_LINE}
		_wfvault
		printf "%s\n" "${COMPREPLY[@]}" | sort
	' complete "$E2E_ROOT/completion/wfvault.bash" "$@"
}

@test "completion: commands and each command's options" {
	run complete_words ''
	[ "$status" -eq 0 ]
	[[ "$output" == *$'\nput\n'* ]]
	[[ "$output" == *rotate-master-key* ]]
	run complete_words ro
	[ "$output" = $'rollback\nrotate-key\nrotate-master-key' ]
	run complete_words check --
	[ "$output" = $'--help\n--json\n--socket' ]
	run complete_words rm acme --
	[[ "$output" == *--yes* ]]
	[[ "$output" == *--purge* ]]
	[[ "$output" != *--replace* ]]
	run complete_words export acme --format ''
	[ "$output" = $'env\njson' ]
	run complete_words get acme --no
	[ "$output" = --no-newline ]
}

@test "completion: tenant ids from the daemon, -s or \$WFVAULT_SOCKET" {
	put_value acme k v
	put_value acme-beta k v
	put_value zeta k v
	run complete_words -s "$SOCK" get ''
	[ "$output" = $'acme\nacme-beta\nzeta' ]
	run complete_words --socket="$SOCK" rm ac
	[ "$output" = $'acme\nacme-beta' ]
	WFVAULT_SOCKET=$SOCK run complete_words fields z
	[ "$output" = zeta ]
	# The second operand of get is a field, not a tenant.
	run complete_words -s "$SOCK" get acme ''
	[ -z "$output" ]
	# check takes any number of tenants.
	run complete_words -s "$SOCK" check zeta ac
	[ "$output" = $'acme\nacme-beta' ]
}

@test "completion: an unreachable daemon completes nothing, quietly" {
	run --separate-stderr complete_words -s "$T/nowhere.sock" get ''
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	[ -z "$stderr" ]
	WFVAULT_SOCKET=$T/nowhere.sock run --separate-stderr complete_words rm a
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	[ -z "$stderr" ]
}

# --- the documented --json shapes (README.md "JSON output") ---------------

# The sorted keys of the JSON on stdin, comma-separated.
keys_of() {
	jq -r "$1"' | keys | join(",")'
}

@test "--json outputs have the members the README lists" {
	[ "$(printf v | wfv put acme k --json | keys_of .)" = tenant,version ]
	[ "$(echo '{"j":"w"}' | wfv put acme --json | keys_of .)" = \
	    tenant,version ]
	[ "$(wfv get acme --json | keys_of .)" = \
	    fields,integrations,tenant,version ]
	[ "$(wfv get acme k --json | keys_of .)" = field,tenant,value,version ]
	[ "$(wfv list --json | keys_of .)" = tenants ]
	[ "$(wfv list --json | keys_of '.tenants[0]')" = \
	    fields,tenant,updated_at,version ]
	# fields is an object like the others: the tenant's list entry.
	[ "$(wfv fields acme --json | keys_of .)" = \
	    fields,tenant,updated_at,version ]
	[ "$(wfv fields acme --json | jq -c .fields)" = '["j","k"]' ]
	[ "$(wfv status --json | keys_of .)" = \
	    connections,protocol,server,store,sync,tenants,uptime,version ]
	[ "$(wfv rotate-key acme --json | keys_of .)" = resealed,tenant ]
	[ "$(wfv integrations --json | keys_of .)" = integrations ]
	[ "$(wfv integrations --json | keys_of '.integrations[0]')" = \
	    fields,id,kind,title ]
	[ "$(printf 'X=1\n' | wfv import acme --dry-run --json | keys_of .)" = \
	    add,change,remove,unchanged ]
	[ "$(printf 'X=1\n' | wfv import acme --json | keys_of .)" = \
	    tenant,version ]
	[ "$(wfv rm acme x --json | keys_of .)" = tenant,version ]
	[ "$(wfv rm acme --json </dev/null | keys_of .)" = tenant,version ]
	put_value beta k v
	[ "$(wfv rm beta --purge --json </dev/null | keys_of .)" = \
	    purged,tenant,version ]
}

@test "completion: every option wfvault help lists for a command" {
	local cmd opts o
	for cmd in put get list fields rm status backup rotate-key \
	    rotate-master-key integrations import export run; do
		opts=$(complete_words "$cmd" x -)
		for o in $("$WFVAULT" help "$cmd" | sed -n '2,/^Options/p' |
		    grep -oE -- '(^|[ [(])--?[a-z][a-z-]*' | tr -d ' [('); do
			if ! grep -qxF -- "$o" <<<"$opts"; then
				echo "$cmd: $o not completed" >&2
				return 1
			fi
		done
	done
}

@test "put at a terminal: no echo, ^C and ^Z right after the prompt are not lost" {
	local ptyrun=$E2E_BUILD/tests/wfvault-ptyrun
	[ -x "$ptyrun" ]
	# ^Z straight after the prompt: the prompt comes back (the stop of an
	# orphaned process group is discarded) and the value is taken unechoed.
	cat >"$T/script" <<-EOF
	expect Value for acme.openai_api_key: 
	susp
	expect Value for acme.openai_api_key: 
	send sk-SECRETput0123456789abcdefgh
	eof
	EOF
	run timeout 120 "$ptyrun" -e "$T/script" "$T/transcript" "$WFVAULT" \
	    -s "$SOCK" put acme openai_api_key
	cat "$T/transcript"
	[ "$status" -eq 0 ]
	[ "$output" = "echo on" ]
	[[ "$(cat "$T/transcript")" != *SECRETput* ]]
	[ "$(wfv get acme openai_api_key)" = sk-SECRETput0123456789abcdefgh ]
	# ^C: nothing stored, the terminal's echo back on.
	cat >"$T/script" <<-EOF
	expect Value for acme.other: 
	intr
	EOF
	run timeout 120 "$ptyrun" -e "$T/script" "$T/transcript" "$WFVAULT" \
	    -s "$SOCK" put acme other
	[ "$status" -eq 130 ]
	[ "$output" = "echo on" ]
	run wfv get acme other
	[ "$status" -eq 3 ]
}
