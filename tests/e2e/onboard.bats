#!/usr/bin/env bats
# wfvault onboard (README.md "Onboarding a tenant"): at a terminal, the
# block that says what is needed, where to get it and in what format, no
# echo for secrets, a re-ask after a bad value; without one, the values
# from an .env file or a JSON object, every problem listed at once and
# nothing stored unless all is there and valid (or --partial); one put,
# one version, --cas honoured; a summary that never shows a value.

load helpers

bats_require_minimum_version 1.5.0

PTYRUN=$E2E_BUILD/tests/wfvault-ptyrun

# Values of the repo's catalog formats (integrations/*.json).
OPENAI=sk-SECRETopenai0123456789abcdef
LI_ID=78abcd1234efgh
LI_SECRET=SECRETlinkedin0123456789
STRIPE=sk_test_SECRETstripe0123456789

setup() {
	wfv_setup
	write_conf
	start_daemon
	[ -x "$PTYRUN" ] || {
		echo "missing $PTYRUN: run make test-build" >&2
		return 1
	}
}

teardown() {
	wfv_teardown
}

# The current version of tenant $1, or "none".
version_of() {
	local out
	if out=$(wfv get "$1" --json 2>/dev/null); then
		jq -r .version <<<"$out"
	else
		echo none
	fi
}

# Runs onboard on a pseudo-terminal: pty_onboard SCRIPT ARGS...; the
# transcript is in $T/transcript, the status in $status.
pty_onboard() {
	local script=$1
	shift
	run timeout 120 "$PTYRUN" "$script" "$T/transcript" "$WFVAULT" \
	    -s "$SOCK" onboard "$@"
	echo "transcript:"
	cat "$T/transcript"
}

@test "at a terminal: the block, no echo for a secret, echo otherwise, a bad value re-asked" {
	cat >"$T/script" <<-EOF
	expect WAITING FOR INPUT
	expect linkedin_client_id: 
	send not an id!
	expect try again
	expect linkedin_client_id: 
	send
	expect linkedin_client_id is needed
	expect linkedin_client_id: 
	send $LI_ID
	expect linkedin_client_secret (input hidden): 
	send $LI_SECRET
	expect WAITING FOR INPUT
	expect openai_api_key (input hidden): 
	send sk-tooshort
	expect try again
	expect openai_api_key (input hidden): 
	send $OPENAI
	expect stored:
	EOF
	pty_onboard "$T/script" acme linkedin openai
	[ "$status" -eq 0 ]
	local tr
	tr=$(tr -d '\r' <"$T/transcript")
	# The block of the issue, for the first field.
	[[ "$tr" == *"WAITING FOR INPUT
Task: LinkedIn (OAuth app) for tenant acme
What I need: Client ID (linkedin_client_id)
Where to get it:
  1. Sign in at https://www.linkedin.com/developers/apps
"* ]]
	[[ "$tr" == *"Format: 78abcd1234efgh (^[A-Za-z0-9]{10,32}\$)"* ]]
	[[ "$tr" == *"Task: OpenAI for tenant acme
What I need: API key (openai_api_key)"* ]]
	# The bad value is re-asked, naming the field and the format.
	[[ "$tr" == *"linkedin_client_id does not match the format 78abcd1234efgh (^[A-Za-z0-9]{10,32}\$); try again"* ]]
	[[ "$tr" == *"openai_api_key does not match the format sk-proj-… (^sk-[A-Za-z0-9_-]{20,}\$); try again"* ]]
	# Echo for the client id, none for the secrets (good or bad).
	[[ "$tr" == *"linkedin_client_id: $LI_ID"* ]]
	[[ "$tr" != *SECRET* ]]
	[[ "$tr" != *tooshort* ]]
	# The summary: names and version, never a value.
	[[ "$tr" == *"stored: linkedin_client_id, linkedin_client_secret, openai_api_key"* ]]
	[[ "$tr" == *"tenant: acme, version 1"* ]]
	# One version holds it all, with the integrations.
	[ "$(version_of acme)" = 1 ]
	[ "$(wfv get acme linkedin_client_id)" = "$LI_ID" ]
	[ "$(wfv get acme linkedin_client_secret)" = "$LI_SECRET" ]
	[ "$(wfv get acme openai_api_key)" = "$OPENAI" ]
	[ "$(wfv get acme --json | jq -c .integrations)" = '["linkedin","openai"]' ]
}

@test "at a terminal: ^D stops and stores nothing; with --partial what was entered" {
	cat >"$T/script" <<-EOF
	expect linkedin_client_id: 
	send $LI_ID
	expect linkedin_client_secret (input hidden): 
	eof
	EOF
	pty_onboard "$T/script" acme linkedin
	[ "$status" -eq 2 ]
	[[ "$(cat "$T/transcript")" == *"input ended before linkedin_client_secret; nothing stored"* ]]
	[ "$(version_of acme)" = none ]

	pty_onboard "$T/script" acme linkedin --partial
	[ "$status" -eq 0 ]
	[[ "$(cat "$T/transcript")" == *"stored: linkedin_client_id"* ]]
	[[ "$(cat "$T/transcript")" == *"linkedin_client_secret (linkedin)"* ]]
	[ "$(wfv get acme linkedin_client_id)" = "$LI_ID" ]
	run wfv get acme linkedin_client_secret
	[ "$status" -eq 3 ]
	# The next session asks only for what is still missing.
	cat >"$T/script2" <<-EOF
	expect linkedin_client_secret (input hidden): 
	send $LI_SECRET
	expect stored:
	EOF
	pty_onboard "$T/script2" acme linkedin
	[ "$status" -eq 0 ]
	[[ "$(cat "$T/transcript")" != *"linkedin_client_id:"* ]]
	[[ "$(cat "$T/transcript")" == *"already present, not asked again: linkedin_client_id"* ]]
	[ "$(version_of acme)" = 2 ]
}

@test "at a terminal: ^C at a hidden prompt stores nothing" {
	cat >"$T/script" <<-EOF
	expect linkedin_client_id: 
	send $LI_ID
	expect linkedin_client_secret (input hidden): 
	intr
	EOF
	run timeout 120 "$PTYRUN" -e "$T/script" "$T/transcript" "$WFVAULT" \
	    -s "$SOCK" onboard acme linkedin
	echo "$output"
	# Killed by the SIGINT it re-raised after restoring the terminal.
	[ "$status" -eq 130 ]
	[ "$output" = "echo on" ]
	[ "$(version_of acme)" = none ]
}

@test "--from-env with every field: one new version, the others ignored by name" {
	put_value acme region eu
	[ "$(version_of acme)" = 1 ]
	cat >"$T/env" <<-EOF
	# the tenant's keys
	export OPENAI_API_KEY=$OPENAI
	LINKEDIN_CLIENT_ID="$LI_ID"
	LINKEDIN_CLIENT_SECRET='$LI_SECRET'
	UNRELATED_THING=SECRETunrelated
	EOF
	run wfv onboard acme openai linkedin --from-env "$T/env"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(version_of acme)" = 2 ]
	[ "$(wfv get acme --version 1 --json | jq -c .fields)" = '{"region":"eu"}' ]
	[ "$(wfv get acme openai_api_key)" = "$OPENAI" ]
	[ "$(wfv get acme linkedin_client_secret)" = "$LI_SECRET" ]
	run wfv get acme unrelated_thing
	[ "$status" -eq 3 ]
	[[ "$output" != *SECRET* ]]
	run wfv onboard acme openai linkedin --from-env "$T/env"
	[[ "$output" == *"ignored (not a field of these integrations): unrelated_thing"* ]]
	[[ "$output" != *SECRET* ]]
}

@test "--from-env with a field missing and one malformed: both listed, nothing stored, exit 2" {
	cat >"$T/env" <<-EOF
	OPENAI_API_KEY=sk-SECRETbad
	LINKEDIN_CLIENT_ID=$LI_ID
	EOF
	run wfv onboard acme openai linkedin --from-env "$T/env"
	echo "$output"
	[ "$status" -eq 2 ]
	[[ "$output" == *"openai_api_key (openai): does not match the format; format ^sk-[A-Za-z0-9_-]{20,}\$"* ]]
	[[ "$output" == *"linkedin_client_secret (linkedin): missing; format ^[A-Za-z0-9_.=+/-]{16,128}\$"* ]]
	[[ "$output" == *"2 problems with the input for tenant 'acme'"*"nothing stored"* ]]
	[[ "$output" != *SECRET* ]]
	[ "$(version_of acme)" = none ]
	# --json: the problems in the summary object, the error on stderr.
	run --separate-stderr wfv onboard acme openai linkedin --from-env "$T/env" --json
	[ "$status" -eq 2 ]
	[ "$(jq -c '[.problems[] | [.name, .problem]]' <<<"$output")" = \
	    '[["openai_api_key","does not match the format"],["linkedin_client_secret","missing"]]' ]
	[ "$(jq -r .error.exit <<<"$stderr")" = 2 ]
	[[ "$output$stderr" != *SECRET* ]]
	[ "$(version_of acme)" = none ]
}

@test "--partial stores the valid fields and says what is still missing" {
	cat >"$T/env" <<-EOF
	OPENAI_API_KEY=sk-SECRETbad
	LINKEDIN_CLIENT_ID=$LI_ID
	EOF
	run wfv onboard acme openai linkedin --from-env "$T/env" --partial
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"not stored: openai_api_key (openai): does not match the format"* ]]
	[[ "$output" == *"stored: linkedin_client_id"* ]]
	[[ "$output" == *"openai_api_key (openai), linkedin_client_secret (linkedin)"* ]]
	[[ "$output" != *SECRET* ]]
	[ "$(version_of acme)" = 1 ]
	[ "$(wfv get acme --json | jq -c '[.fields, .integrations]')" = \
	    "[{\"linkedin_client_id\":\"$LI_ID\"},[\"linkedin\",\"openai\"]]" ]
}

@test "--json reads a JSON object on stdin and prints a JSON summary" {
	run --separate-stderr wfv onboard acme stripe openai --json \
	    <<<"{\"stripe_secret_key\":\"$STRIPE\",\"openai_api_key\":\"$OPENAI\",\"extra\":1}"
	echo "$output $stderr"
	[ "$status" -eq 0 ]
	[ "$(jq -c '[.tenant, .version, .stored, .ignored, .integrations]' <<<"$output")" = \
	    '["acme",1,["stripe_secret_key","openai_api_key"],["extra"],["stripe","openai"]]' ]
	[[ "$output" != *SECRET* ]]
	[ "$(wfv get acme stripe_secret_key)" = "$STRIPE" ]
	# Not a string, and not an object at all.
	run --separate-stderr wfv onboard acme2 stripe --json \
	    <<<'{"stripe_secret_key":42}'
	[ "$status" -eq 2 ]
	[ "$(jq -c '.problems' <<<"$output")" = \
	    '[{"format":"^(sk|rk)_(live|test)_[A-Za-z0-9]{20,}$","integration":"stripe","name":"stripe_secret_key","problem":"not a string"}]' ]
	[[ "$(jq -r .error.message <<<"$stderr")" == *'(see "problems"); nothing stored'* ]]
	run wfv onboard acme2 stripe --json <<<'["sk_test_SECRET"]'
	[ "$status" -eq 2 ]
	[[ "$output" == *"not an object"* ]]
	[[ "$output" != *SECRET* ]]
	[ "$(version_of acme2)" = none ]
}

@test "--cas: a conflict stores nothing (exit 5); the right version stores" {
	put_value acme region eu
	printf 'OPENAI_API_KEY=%s\n' "$OPENAI" >"$T/env"
	run wfv onboard acme openai --from-env "$T/env" --cas 0
	echo "$output"
	[ "$status" -eq 5 ]
	[ "$(version_of acme)" = 1 ]
	run wfv get acme openai_api_key
	[ "$status" -eq 3 ]
	run wfv onboard acme openai --from-env "$T/env" --cas 1
	[ "$status" -eq 0 ]
	[ "$(version_of acme)" = 2 ]
}

@test "a malformed value stored before is refused by the daemon's format check" {
	# Stored before the tenant used openai: nothing checked it then.
	put_value acme openai_api_key sk-SECRETold
	printf 'LINKEDIN_CLIENT_ID=%s\nLINKEDIN_CLIENT_SECRET=%s\n' "$LI_ID" \
	    "$LI_SECRET" >"$T/env"
	run wfv onboard acme openai linkedin --from-env "$T/env"
	echo "$output"
	[ "$status" -eq 2 ]
	[[ "$output" == *"field 'openai_api_key' does not match the format of integration 'openai' (^sk-[A-Za-z0-9_-]{20,}\$); nothing stored"* ]]
	[[ "$output" != *SECRET* ]]
	[ "$(version_of acme)" = 1 ]
	run wfv get acme linkedin_client_id
	[ "$status" -eq 3 ]
}

@test "the summary: stored names and version, what was there, sync, what is missing" {
	put_value acme linkedin_client_id "$LI_ID"
	printf 'OPENAI_API_KEY=%s\nLINKEDIN_CLIENT_ID=other0000000\n' \
	    "$OPENAI" >"$T/env"
	run --separate-stderr wfv onboard acme openai linkedin \
	    --from-env "$T/env" --partial
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$stderr" = "wfvault: not stored: linkedin_client_secret (linkedin): missing; format ^[A-Za-z0-9_.=+/-]{16,128}\$" ]
	[ "${lines[0]}" = "onboarded: openai, linkedin" ]
	[ "${lines[1]}" = "tenant: acme, version 2" ]
	[ "${lines[2]}" = "stored: openai_api_key" ]
	[ "${lines[3]}" = "already present, not asked again: linkedin_client_id" ]
	[[ "$output" == *"sync: "* ]]
	[[ "$output" == *"linkedin_client_secret"* ]]
	[[ "$output" != *"$OPENAI"* ]]
	# What was there is kept, not overwritten by the file.
	[ "$(wfv get acme linkedin_client_id)" = "$LI_ID" ]
}

@test "an unknown integration is refused naming it; nothing stored" {
	printf 'OPENAI_API_KEY=%s\n' "$OPENAI" >"$T/env"
	run wfv onboard acme openai nosuch other --from-env "$T/env"
	[ "$status" -eq 2 ]
	[[ "$output" == *"no integration 'nosuch', 'other' in the catalog"* ]]
	# An id that could be a pasted secret is not repeated.
	run wfv onboard acme 'sk-SECRET/x' --from-env "$T/env"
	[ "$status" -eq 2 ]
	[[ "$output" != *SECRET* ]]
	[ "$(version_of acme)" = none ]
}

@test "without a terminal and without --from-env or --json: a clear error" {
	run wfv onboard acme openai </dev/null
	[ "$status" -eq 2 ]
	[[ "$output" == *"without one, give them with --from-env FILE or as a JSON object on stdin with --json"* ]]
	[ "$(version_of acme)" = none ]
	run wfv onboard acme
	[ "$status" -eq 2 ]
	[[ "$output" == *"usage: wfvault onboard TENANT INTEGRATION..."* ]]
}
