#!/usr/bin/env bats
# The commands scripts use (README.md "Using the CLI"): import from .env or
# JSON, export, run, get -n and put --file -, against a private daemon.
# Secret values come from files here, never from a command's argv.

load helpers

setup() {
	wfv_setup
	write_conf
	start_daemon
}

teardown() {
	wfv_teardown
}

# The current version of a tenant.
version_of() {
	wfv get "$1" --json | jq -r .version
}

# An .env file with every quoting case; the expected config in $T/want.json.
write_env_cases() {
	cat >"$T/in.env" <<'EOF'
# a comment line, then a blank one

export OPENAI_API_KEY=sk-plain  # an inline comment
UNQUOTED =   spaces inside kept   
HASH_IN=a#b
SINGLE='literal $HOME \n "dq" # not a comment'
DOUBLE="esc \"q\" back\\slash \$HOME nl\nend"   # comment after quotes
MULTI="first
second"
EMPTY=
EOF
	cat >"$T/want.json" <<'EOF'
{"openai_api_key":"sk-plain","unquoted":"spaces inside kept",
 "hash_in":"a#b","single":"literal $HOME \\n \"dq\" # not a comment",
 "double":"esc \"q\" back\\slash $HOME nl\nend","multi":"first\nsecond",
 "empty":""}
EOF
}

@test "import reads .env: export prefix, comments, every kind of quoting" {
	write_env_cases
	run wfv import acme "$T/in.env"
	[ "$status" -eq 0 ]
	[[ "$output" == *"7 fields imported, version 1"* ]]
	wfv get acme >"$T/got.json"
	jq -e --slurpfile w "$T/want.json" '. == $w[0]' "$T/got.json"
}

@test "import reads CRLF files; a '#' right after '=' is text" {
	printf 'A=one\r\nB="two"\r\nC=#three\r\nD=x #c\r\n' >"$T/in.env"
	wfv import acme "$T/in.env"
	wfv get acme | jq -e '. == {"a":"one","b":"two","c":"#three","d":"x"}'
}

@test "import reads a JSON object, from stdin with - or no FILE" {
	printf '  {"a_key":"one","n":5}' | wfv import acme -
	[ "$(wfv get acme a_key)" = one ]
	[ "$(wfv get acme n)" = 5 ]
	printf 'B_KEY="two"\n' | wfv import acme
	[ "$(wfv get acme b_key)" = two ]
	[ "$(wfv get acme a_key)" = one ]
}

@test "import stores everything as one version; --cas and --replace" {
	put_value acme old_key old
	write_env_cases
	wfv import acme "$T/in.env"
	[ "$(version_of acme)" -eq 2 ]
	run wfv import acme "$T/in.env" --cas 1
	[ "$status" -eq 5 ]
	printf 'ONLY=x\n' | wfv import acme --replace --cas 2
	[ "$(version_of acme)" -eq 3 ]
	wfv get acme | jq -e '. == {"only":"x"}'
}

@test "import --dry-run lists names only and stores nothing" {
	local secret
	secret="dry-$(random_token)"
	printf '{"keep":"same","chg":"old","gone":"x"}' | wfv put acme --json
	printf 'KEEP=same\nCHG=%s\nNEW_KEY=%s\n' "$secret" "$secret" \
	    >"$T/in.env"
	run wfv import acme "$T/in.env" --dry-run
	[ "$status" -eq 0 ]
	[[ "$output" == *"add     new_key"* ]]
	[[ "$output" == *"change  chg"* ]]
	[[ "$output" != *"remove"* ]]
	[[ "$output" != *"$secret"* ]]
	run wfv import acme "$T/in.env" --dry-run --replace --json
	[ "$status" -eq 0 ]
	[[ "$output" != *"$secret"* ]]
	echo "$output" | jq -e '. == {"add":["new_key"],"change":["chg"],
	    "remove":["gone"],"unchanged":["keep"]}'
	[ "$(version_of acme)" -eq 1 ]
	[ "$(wfv get acme chg)" = old ]
	# A tenant that does not exist yet: everything is an add.
	run wfv import newt "$T/in.env" --dry-run
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | grep -c '^add')" -eq 3 ]
	run wfv get newt
	[ "$status" -eq 3 ]
}

@test "import refuses a bad name or a broken line, naming the line, not the value" {
	local secret
	secret="bad-$(random_token)"
	printf 'GOOD=1\n# c\nBAD-NAME=%s\n' "$secret" >"$T/in.env"
	run wfv import acme "$T/in.env"
	[ "$status" -eq 2 ]
	[[ "$output" == *"line 3"* ]]
	[[ "$output" != *"$secret"* ]]
	printf 'GOOD=1\n%s\n' "$secret" >"$T/in.env"
	run wfv import acme "$T/in.env"
	[ "$status" -eq 2 ]
	[[ "$output" == *"line 2"* ]]
	[[ "$output" != *"$secret"* ]]
	printf 'A="%s\n' "$secret" >"$T/in.env"
	run wfv import acme "$T/in.env"
	[ "$status" -eq 2 ]
	[[ "$output" == *"line 1"* ]]
	[[ "$output" != *"$secret"* ]]
	printf 'A=1\na=2\n' >"$T/in.env"
	run wfv import acme "$T/in.env"
	[ "$status" -eq 2 ]
	[[ "$output" == *"line 2"* ]]
	run wfv get acme
	[ "$status" -eq 3 ]
}

@test "export env and json round-trip through import exactly" {
	# Every awkward byte: newlines, quotes, $, backslashes, '#', spaces.
	jq -n '{"nl":"a\nb\n","dq":"say \"hi\"","sq":"it'"'"'s",
	    "dollar":"$HOME ${X} $(id) `id`","bs":"\\ \\n \\\\","hash":"x #y",
	    "sp":"  lead and trail  ","mix":"\\\"$\n#\"\\","n":5}' |
	    wfv put acme --json
	wfv get acme >"$T/orig.json"
	wfv export acme --format env >"$T/out.env"
	wfv import env_copy "$T/out.env"
	wfv export acme --format json | wfv import json_copy
	wfv get json_copy | jq -e --slurpfile o "$T/orig.json" '. == $o[0]'
	# env holds text: the number comes back as the string "5".
	wfv get env_copy | jq -e --slurpfile o "$T/orig.json" \
	    '. == ($o[0] | .n = "5")'
	# A shell reads the env format back to the same bytes too.
	(set -a && . "$T/out.env" && printf '%s' "$MIX") >"$T/mix"
	wfv get acme mix -n | cmp - "$T/mix"
	[ "$(version_of env_copy)" -eq 1 ]
}

@test "export refuses a terminal, unless --force" {
	command -v script >/dev/null || skip "needs script(1)"
	put_value acme api_key sk-secret-on-tty
	run script -qec "$WFVAULT -s $SOCK export acme" /dev/null
	[ "$status" -ne 0 ]
	[[ "$output" == *"terminal"* ]]
	[[ "$output" != *"sk-secret-on-tty"* ]]
	run script -qec "$WFVAULT -s $SOCK export acme --force" /dev/null
	[ "$status" -eq 0 ]
	[[ "$output" == *'API_KEY="sk-secret-on-tty"'* ]]
	run script -qec "$WFVAULT -s $SOCK export acme --format json --force" \
	    /dev/null
	[ "$status" -eq 0 ]
	# To a pipe it needs no --force.
	[ "$(wfv export acme)" = 'API_KEY="sk-secret-on-tty"' ]
}

@test "run passes the fields as upper-case variables, --only filters" {
	printf '{"api_key":"k1","other":"o$1;x","n":7}' | wfv put acme --json
	API_KEY=before wfv run acme -- sh -c \
	    'printf "%s|%s|%s" "$API_KEY" "$OTHER" "$N"' >"$T/out"
	[ "$(cat "$T/out")" = 'k1|o$1;x|7' ]
	OTHER=kept wfv run acme --only api_key -- sh -c \
	    'printf "%s|%s|%s" "$API_KEY" "$OTHER" "${N-unset}"' >"$T/out"
	[ "$(cat "$T/out")" = 'k1|kept|unset' ]
	run wfv run acme --only nope -- true
	[ "$status" -eq 3 ]
}

@test "run: no shell, CMD's exit status, 127 for a missing command" {
	put_value acme k v
	run wfv run acme -- printf '%s\n' 'a; echo injected' '$(id)' '$K'
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = 'a; echo injected' ]
	[ "${lines[1]}" = '$(id)' ]
	[ "${lines[2]}" = '$K' ]
	run wfv run acme -- sh -c 'exit 42'
	[ "$status" -eq 42 ]
	run wfv run acme -- sh -c 'kill -TERM $$'
	[ "$status" -eq 143 ]
	# Not through "run": bats warns about any 127 it sees.
	local rc=0
	wfv run acme -- "$T/no-such-command" --version 2>"$T/err" || rc=$?
	[ "$rc" -eq 127 ]
	grep -q "cannot run" "$T/err"
	run wfv run acme
	[ "$status" -eq 2 ]
	run wfv run nobody -- true
	[ "$status" -eq 3 ]
}

@test "get -n prints the value with no trailing newline" {
	printf 'val\n\n' | wfv put acme f
	wfv get acme f -n >"$T/out"
	printf 'val\n' | cmp - "$T/out"
	wfv get acme f --no-newline >"$T/out"
	printf 'val\n' | cmp - "$T/out"
	printf '{"n":5}' | wfv put acme --json
	wfv get acme n -n >"$T/out"
	printf '5' | cmp - "$T/out"
	run wfv get acme -n
	[ "$status" -eq 2 ]
}

@test "put --file - reads the value from stdin" {
	printf 'from-stdin\n' | wfv put acme f --file -
	[ "$(wfv get acme f)" = from-stdin ]
}

@test "import, export and run keep values out of every argv" {
	local secret _ f found=
	secret="argv-$(random_token)"
	printf '%s\n' "$secret" >"$T/patterns"
	printf 'SLOW_KEY=%s\n' "$secret" >"$T/in.env"
	wfv import acme "$T/in.env"
	# A command run with the secret in its environment, caught alive.
	bg "$WFVAULT" -s "$SOCK" run acme -- sleep 1000
	for _ in $(seq 200); do
		grep -qaFf "$T/patterns" "/proc/$BG_PID/environ" 2>/dev/null &&
		    break
		sleep 0.05
	done
	grep -qaFf "$T/patterns" "/proc/$BG_PID/environ"
	for f in /proc/[0-9]*/cmdline; do
		if grep -qaFf "$T/patterns" "$f" 2>/dev/null; then
			found="$found $f"
		fi
	done
	[ -z "$found" ] || { echo "secret in argv: $found"; false; }
}
