#!/usr/bin/env bats
# The command-line contract of wfvault (README.md "Using the CLI" and
# "Exit codes"): every command, its output and its exit status, against a
# private daemon.

load helpers

setup() {
	wfv_setup
	write_conf
	start_daemon
}

teardown() {
	wfv_teardown
}

@test "put reads stdin and drops exactly one trailing newline" {
	printf 'plain' | wfv put acme no_newline
	printf 'one\n' | wfv put acme one_newline
	printf 'two\n\n' | wfv put acme two_newlines
	printf 'multi\nline' | wfv put acme multi_line
	run wfv get acme
	[ "$status" -eq 0 ]
	echo "$output" | jq -e '.no_newline == "plain" and
	    .one_newline == "one" and .two_newlines == "two\n" and
	    .multi_line == "multi\nline"'
}

@test "get TENANT FIELD prints a string raw with one newline" {
	printf 'two\n\n' | wfv put acme f
	wfv get acme f >"$T/out"
	printf 'two\n\n' | cmp - "$T/out"
	printf 'say "hi" \\ tab\t' | wfv put acme quoted
	wfv get acme quoted >"$T/out"
	printf 'say "hi" \\ tab\t\n' | cmp - "$T/out"
}

@test "put --file reads the value from a file" {
	printf 'from-a-file' >"$T/value"
	run wfv put acme filed --file "$T/value"
	[ "$status" -eq 0 ]
	run wfv get acme filed
	[ "$status" -eq 0 ]
	[ "$output" = "from-a-file" ]
	run wfv put acme filed --file "$T/does-not-exist"
	[ "$status" -ne 0 ]
	[ "$status" -ne 6 ]
}

@test "put --json merges fields into the tenant" {
	put_value acme a_key one
	printf '{"b_key":"two","n_key":5,"o_key":{"x":[1,2]}}' |
	    wfv put acme --json
	run wfv get acme
	[ "$status" -eq 0 ]
	echo "$output" | jq -e '.a_key == "one" and .b_key == "two" and
	    .n_key == 5 and .o_key == {"x":[1,2]}'
	# A non-string value prints as JSON.
	run wfv get acme n_key
	[ "$output" = "5" ]
	run wfv get acme o_key
	echo "$output" | jq -e '. == {"x":[1,2]}'
}

@test "put --json --replace replaces the whole config" {
	put_value acme a_key one
	put_value acme b_key two
	printf '{"c_key":"three"}' | wfv put acme --json --replace
	run wfv get acme
	[ "$status" -eq 0 ]
	echo "$output" | jq -e '. == {"c_key":"three"}'
}

@test "put --json with null removes that field" {
	printf '{"a_key":"one","b_key":"two"}' | wfv put acme --json
	printf '{"b_key":null,"c_key":"three"}' | wfv put acme --json
	run wfv get acme
	echo "$output" | jq -e '. == {"a_key":"one","c_key":"three"}'
	run wfv get acme b_key
	[ "$status" -eq 3 ]
}

@test "put --json refuses input that is not a JSON object" {
	run wfv put acme --json <<<'["a","b"]'
	[ "$status" -ne 0 ]
	run wfv put acme --json <<<'{"a_key": '
	[ "$status" -ne 0 ]
	run wfv put acme --json <<<'{"Bad-Name":"x"}'
	[ "$status" -eq 2 ]
	run wfv get acme
	[ "$status" -eq 3 ]
}

@test "get TENANT prints the config as one JSON object" {
	put_value acme openai_api_key sk-one
	put_value acme linkedin_client_id client-123
	run wfv get acme
	[ "$status" -eq 0 ]
	echo "$output" | jq -e 'type == "object" and length == 2 and
	    .openai_api_key == "sk-one" and
	    .linkedin_client_id == "client-123"'
}

@test "list prints tenant ids, list PREFIX only the matching ones" {
	put_value acme f 1
	put_value acme-2 f 1
	put_value beta f 1
	run wfv list
	[ "$status" -eq 0 ]
	[ "$(printf '%s\n' "$output" | sort | tr '\n' ' ')" = "acme acme-2 beta " ]
	run wfv list acme
	[ "$status" -eq 0 ]
	[ "$(printf '%s\n' "$output" | sort | tr '\n' ' ')" = "acme acme-2 " ]
	run wfv list zzz
	[ "$status" -eq 0 ]
	[ -z "$output" ]
}

@test "list follows the cursor past one page" {
	local i
	for i in $(seq -w 1 120); do
		printf '{"f":"%s"}' "$i" | wfv put "t-$i" --json
	done
	run wfv list
	[ "$status" -eq 0 ]
	[ "$(printf '%s\n' "$output" | grep -c '^t-')" -eq 120 ]
	[ "$(printf '%s\n' "$output" | sort -u | grep -c '^t-')" -eq 120 ]
}

@test "fields prints the field names, never values" {
	put_value acme openai_api_key sk-secret-value
	put_value acme b_key other-secret
	run wfv fields acme
	[ "$status" -eq 0 ]
	[ "$(printf '%s\n' "$output" | sort | tr '\n' ' ')" = "b_key openai_api_key " ]
	[[ "$output" != *sk-secret-value* ]]
	run wfv fields nobody
	[ "$status" -eq 3 ]
}

@test "rm TENANT FIELD deletes one field" {
	put_value acme a_key one
	put_value acme b_key two
	run wfv rm acme a_key
	[ "$status" -eq 0 ]
	run wfv get acme a_key
	[ "$status" -eq 3 ]
	run wfv get acme b_key
	[ "$status" -eq 0 ]
	[ "$output" = "two" ]
	run wfv rm acme a_key
	[ "$status" -eq 3 ]
}

@test "rm TENANT deletes the tenant" {
	put_value acme a_key one
	put_value beta a_key two
	run wfv rm acme
	[ "$status" -eq 0 ]
	run wfv get acme
	[ "$status" -eq 3 ]
	run wfv get acme a_key
	[ "$status" -eq 3 ]
	run wfv list
	[ "$output" = "beta" ]
	run wfv rm acme
	[ "$status" -eq 3 ]
	# A deleted tenant can be created again.
	put_value acme a_key three
	run wfv get acme a_key
	[ "$output" = "three" ]
}

@test "status answers and --json gives an object" {
	put_value acme a_key one
	run wfv status
	[ "$status" -eq 0 ]
	[ -n "$output" ]
	run wfv status --json
	[ "$status" -eq 0 ]
	echo "$output" | jq -e 'type == "object"'
	echo "$output" | jq -e '[.. | numbers] | length > 0'
}

@test "--json gives machine-readable output of get, list and fields" {
	put_value acme a_key one-value
	put_value beta b_key two
	run wfv get acme a_key --json
	[ "$status" -eq 0 ]
	echo "$output" | jq -e '[.. | strings] | index("one-value") != null'
	run wfv get acme --json
	[ "$status" -eq 0 ]
	echo "$output" | jq -e '[.. | strings] | index("one-value") != null'
	run wfv list --json
	[ "$status" -eq 0 ]
	echo "$output" | jq -e '[.. | strings] | index("acme") != null and
	    index("beta") != null'
	run wfv fields acme --json
	[ "$status" -eq 0 ]
	echo "$output" | jq -e '[.. | strings] | index("a_key") != null'
}

@test "--cas: matching version succeeds, a stale one exits 5" {
	run wfv put casco f --cas 0 <<<'v1'
	[ "$status" -eq 0 ]
	# 0 means "must not exist yet".
	run wfv put casco f --cas 0 <<<'v2'
	[ "$status" -eq 5 ]
	run wfv put casco f --cas 1 <<<'v2'
	[ "$status" -eq 0 ]
	run wfv put casco f --cas 1 <<<'v3'
	[ "$status" -eq 5 ]
	run wfv get casco f
	[ "$output" = "v2" ]
	printf '{"g":"x"}' >"$T/json"
	run wfv put casco --json --cas 7 <"$T/json"
	[ "$status" -eq 5 ]
	run wfv put casco --json --cas 2 <"$T/json"
	[ "$status" -eq 0 ]
	run wfv rm casco g --cas 2
	[ "$status" -eq 5 ]
	run wfv rm casco g --cas 3
	[ "$status" -eq 0 ]
	run wfv rm casco --cas 3
	[ "$status" -eq 5 ]
	run wfv rm casco --cas 4
	[ "$status" -eq 0 ]
	run wfv get casco
	[ "$status" -eq 3 ]
}

@test "-s wins over \$WFVAULT_SOCKET, which wins over the default" {
	put_value acme a_key one
	run env WFVAULT_SOCKET="$SOCK" "$WFVAULT" get acme a_key
	[ "$status" -eq 0 ]
	[ "$output" = "one" ]
	run env WFVAULT_SOCKET="$T/nowhere.sock" "$WFVAULT" -s "$SOCK" \
	    get acme a_key
	[ "$status" -eq 0 ]
	[ "$output" = "one" ]
	run env WFVAULT_SOCKET="$SOCK" "$WFVAULT" -s "$T/nowhere.sock" \
	    get acme a_key
	[ "$status" -eq 6 ]
}

@test "an unreachable daemon exits 6 with a message" {
	run "$WFVAULT" -s "$T/nowhere.sock" list
	[ "$status" -eq 6 ]
	[[ "$output" == *nowhere.sock* ]]
	# Something that is not a socket at all.
	: >"$T/plain-file"
	run "$WFVAULT" -s "$T/plain-file" get acme a_key
	[ "$status" -eq 6 ]
	# A socket with nobody listening any more.
	stop_daemon
	run "$WFVAULT" -s "$SOCK" status
	[ "$status" -eq 6 ]
}

@test "a missing tenant or field exits 3" {
	put_value acme a_key one
	run wfv get acme no_such_field
	[ "$status" -eq 3 ]
	run wfv get nobody_here
	[ "$status" -eq 3 ]
	run wfv get nobody_here a_key
	[ "$status" -eq 3 ]
	run wfv rm nobody_here
	[ "$status" -eq 3 ]
}

@test "an invalid tenant id or field name exits 2" {
	local t
	for t in 'bad/tenant' '.hidden' '-dash' 'sp ace' "$(printf 'x%.0s' $(seq 129))" \
	    'ü'; do
		run wfv put "$t" f <<<'x'
		[ "$status" -eq 2 ] || { echo "tenant '$t' gave $status"; false; }
		run wfv get "$t"
		[ "$status" -eq 2 ] || { echo "get '$t' gave $status"; false; }
	done
	for t in 'Bad' '1abc' 'a-b' 'a.b' "$(printf 'a%.0s' $(seq 65))"; do
		run wfv put acme "$t" <<<'x'
		[ "$status" -eq 2 ] || { echo "field '$t' gave $status"; false; }
	done
	run wfv list
	[ -z "$output" ]
	# The longest valid names work.
	run wfv put "$(printf 'x%.0s' $(seq 128))" "$(printf 'a%.0s' $(seq 64))" \
	    <<<'x'
	[ "$status" -eq 0 ]
	run wfv put A.b_c-9 _f9 <<<'x'
	[ "$status" -eq 0 ]
}

@test "a value in argv is refused with exit 2" {
	run wfv put acme a_key sk-in-argv
	[ "$status" -eq 2 ]
	run wfv get acme
	[ "$status" -eq 3 ]
}

@test "an empty value is refused" {
	run wfv put acme a_key </dev/null
	[ "$status" -ne 0 ]
	[ "$status" -ne 6 ]
	run wfv put acme a_key <<<''
	[ "$status" -ne 0 ]
	: >"$T/empty"
	run wfv put acme a_key --file "$T/empty"
	[ "$status" -ne 0 ]
	run wfv get acme
	[ "$status" -eq 3 ]
}

@test "unknown commands and options are usage errors (exit 2)" {
	run wfv frobnicate
	[ "$status" -eq 2 ]
	run wfv get acme a_key --no-such-option
	[ "$status" -eq 2 ]
	run wfv put acme a_key --cas notanumber <<<'x'
	[ "$status" -eq 2 ]
	run wfv get
	[ "$status" -eq 2 ]
}

@test "a value over max_config_bytes fails with 'too large'" {
	head -c 70000 /dev/zero | tr '\0' a >"$T/big"
	run wfv put acme big --file "$T/big"
	[ "$status" -ne 0 ]
	[ "$status" -ne 6 ]
	[[ "$output" == *"too large"* ]]
	run wfv put acme big <"$T/big"
	[ "$status" -ne 0 ]
	[[ "$output" == *"too large"* ]]
	# Two fields that fit alone but not together.
	head -c 40000 /dev/zero | tr '\0' b >"$T/half"
	run wfv put acme half_one --file "$T/half"
	[ "$status" -eq 0 ]
	run wfv put acme half_two --file "$T/half"
	[ "$status" -ne 0 ]
	[[ "$output" == *"too large"* ]]
	run wfv fields acme
	[ "$output" = "half_one" ]
}

@test "a put that changes nothing makes no new version; all-null on a new tenant stores nothing" {
	put_value acme same_key v1
	v1=$(wfv get acme --json | jq .version)
	put_value acme same_key v1
	printf '{"never_there":null}' | wfv put acme --json >/dev/null
	[ "$(wfv get acme --json | jq .version)" = "$v1" ]
	put_value acme same_key v2
	[ "$(wfv get acme --json | jq .version)" = "$((v1 + 1))" ]
	run wfv put ghost_tenant --json <<<'{"a_key":null}'
	[ "$status" -eq 2 ]
	[[ "$output" == *"nothing to store"* ]]
	run wfv get ghost_tenant
	[ "$status" -eq 3 ]
}

@test "put --replace with the current config makes no new version, no change" {
	printf '{"a_key":"one","b_key":"two"}' | wfv put acme --json >/dev/null
	v1=$(wfv get acme --json | jq .version)
	seq1=$(wfv status --json | jq .store.last_seq)
	printf '{"b_key":"two","a_key":"one"}' | wfv put acme --json --replace \
	    >/dev/null
	[ "$(wfv get acme --json | jq .version)" = "$v1" ]
	[ "$(wfv status --json | jq .store.last_seq)" = "$seq1" ]
	# A null in a replace stores nothing, so it changes nothing either.
	printf '{"b_key":"two","a_key":"one","c_key":null}' |
	    wfv put acme --json --replace >/dev/null
	[ "$(wfv get acme --json | jq .version)" = "$v1" ]
	# A replace that drops a field is a change.
	printf '{"a_key":"one"}' | wfv put acme --json --replace >/dev/null
	[ "$(wfv get acme --json | jq .version)" = "$((v1 + 1))" ]
	[ "$(wfv fields acme)" = "a_key" ]
}

@test "status counts live tenants through puts, deletes and purges" {
	load_tenants 30
	wfv rm t-1 >/dev/null
	wfv rm t-2 --purge >/dev/null
	wfv rm t-1 --purge >/dev/null
	put_value t-3 k again
	put_value t-1 k back
	[ "$(wfv status --json | jq .tenants)" = 29 ]
	restart_daemon
	[ "$(wfv status --json | jq .tenants)" = 29 ]
}

@test "the feed is trimmed up to what every target acknowledged, a long backlog too" {
	load_tenants 3000
	[ "$(wfv status --json | jq .store.changes)" = 3000 ]
	run tp call sync_ack '{"target":"kv","seq":3000}'
	[ "$(jq -c .result <<<"$output")" = '{}' ]
	# One commit trims a bounded part; the rest follows in the background.
	for _ in $(seq 200); do
		[ "$(wfv status --json | jq .store.changes)" = 1 ] && break
		sleep 0.1
	done
	[ "$(wfv status --json | jq .store.changes)" = 1 ]
	[ "$(wfv status --json | jq .store.trimmed_seq)" = 2999 ]
	run tp call changes '{"since":2998}'
	[ "$(jq -r .error.data.kind <<<"$output")" = feed_trimmed ]
	run tp call changes '{"since":2999}'
	[ "$(jq -c '[.result.changes[].seq]' <<<"$output")" = '[3000]' ]
	check_tenants 3000
}

@test "--version and -h/--help on all three programs: stdout, exit 0" {
	local prog bin version
	version=$(sed -n 's/^#define PROTO_SERVER_VERSION[[:space:]]*"\(.*\)"$/\1/p' \
	    "$E2E_ROOT/proto/proto.h")
	[ -n "$version" ]
	for prog in wfvaultd wfvault wfvault-sync; do
		bin=$E2E_BUILD/$prog
		"$bin" --version >"$T/out" 2>"$T/err"
		[ "$(cat "$T/out")" = "$prog $version" ]
		[ ! -s "$T/err" ]
		for opt in -h --help; do
			"$bin" "$opt" >"$T/out" 2>"$T/err"
			grep -q "^usage: $prog " "$T/out"
			[ ! -s "$T/err" ]
		done
	done
	# get's --version N is still get's.
	put_value acme a_key one
	put_value acme a_key two
	[ "$(wfv get acme a_key --version 1)" = one ]
	run wfv get acme a_key --version
	[ "$status" -eq 2 ]
	[[ "$output" == *"--version needs a value"* ]]
	# A usage error still goes to stderr with exit 2.
	run "$E2E_BUILD/wfvaultd" --no-such-option
	[ "$status" -eq 2 ]
	run "$E2E_BUILD/wfvault-sync" --no-such-option
	[ "$status" -eq 2 ]
}
