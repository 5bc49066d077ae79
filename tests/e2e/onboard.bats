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
	[[ "$(cat "$T/transcript")" == *"linkedin: incomplete; missing linkedin_client_secret (Primary client secret)"* ]]
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

@test "at a terminal: ^Z at a hidden prompt restores the terminal, then asks again" {
	# The command leads its own session on the pty, so the stop itself
	# is discarded (an orphaned process group): what is left to see is
	# that the prompt comes back and the answer is taken, unechoed.
	cat >"$T/script" <<-EOF
	expect linkedin_client_id: 
	send $LI_ID
	expect linkedin_client_secret (input hidden): 
	susp
	expect linkedin_client_secret (input hidden): 
	send $LI_SECRET
	expect stored:
	EOF
	run timeout 120 "$PTYRUN" -e "$T/script" "$T/transcript" "$WFVAULT" \
	    -s "$SOCK" onboard acme linkedin
	echo "$output"
	cat "$T/transcript"
	[ "$status" -eq 0 ]
	[ "$output" = "echo on" ]
	[[ "$(cat "$T/transcript")" != *SECRET* ]]
	[ "$(wfv get acme linkedin_client_secret)" = "$LI_SECRET" ]
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
	# What is still missing, from wfvaultd's check.
	[[ "$output" == *"still to do:
  linkedin: incomplete; missing linkedin_client_secret (Primary client secret)
  openai: incomplete; missing openai_api_key (API key)"* ]]
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
	# The members README.md "JSON output" lists.
	[ "$(jq -r 'keys | join(",")' <<<"$output")" = \
	    already_present,check,ignored,integrations,problems,stored,tenant,version ]
	[ "$(jq -c '.check.integrations | map(.state)' <<<"$output")" = '["ok","ok"]' ]
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
	[ "${lines[4]}" = "sync: not pushed yet (no sync target has acknowledged a change so far)" ]
	[ "${lines[5]}" = "still to do:" ]
	[ "${lines[6]}" = "  linkedin: incomplete; missing linkedin_client_secret (Primary client secret)" ]
	[[ "$output" != *"$OPENAI"* ]]
	# What was there is kept, not overwritten by the file.
	[ "$(wfv get acme linkedin_client_id)" = "$LI_ID" ]

	# A sync target that acknowledged the feed up to before this
	# version has not pushed it; once it acknowledges all, it has.
	tp call sync_ack '{"target":"kv","seq":1}'
	printf 'LINKEDIN_CLIENT_SECRET=%s\n' "$LI_SECRET" >"$T/env"
	run --separate-stderr wfv onboard acme openai linkedin \
	    --from-env "$T/env"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "${lines[1]}" = "tenant: acme, version 3" ]
	[ "${lines[4]}" = "sync: kv: not pushed yet" ]
	[ "${lines[5]}" = "still to do: nothing, tenant 'acme' is ready" ]
	local last
	last=$(tp call sync_state '{"target":"kv"}' | jq -r .result.last_seq)
	tp call sync_ack "{\"target\":\"kv\",\"seq\":$last}"
	# Nothing to add: no new version, and the summary says pushed.
	run --separate-stderr wfv onboard acme openai linkedin </dev/null
	echo "$output"
	[ "$status" -eq 0 ]
	[ "${lines[1]}" = "tenant: acme, version 3" ]
	[ "${lines[2]}" = "stored: none" ]
	[ "${lines[4]}" = "sync: kv: pushed" ]
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

# A catalog of two stand-in integrations whose live tests GET a local
# HTTP stand-in (livetest_standin.mjs): lt_ok accepts the key, lt_deny
# answers 401.
standin_start() {
	local id key=lk_0123456789abcdefsecret
	mkdir "$T/cat"
	printf '%s\n' "$key" >"$T/key"
	bg node "$E2E_ROOT/tests/e2e/livetest_standin.mjs" "$T/requests" \
	    "$T/key" >"$T/standin.out" 2>&1
	wait_for_line "$T/standin.out" 300 '^READY [0-9]+$' || {
		cat "$T/standin.out" >&2
		return 1
	}
	PORT=$(sed -n 's/^READY //p' "$T/standin.out")
	for id in ok deny; do
		cat >"$T/cat/lt_$id.json" <<-EOF2
		{"id": "lt_$id", "title": "Stand-in $id", "kind": "api_key",
		 "fields": [{"name": "lt_${id}_key", "label": "Key",
		             "secret": true, "format": "^lk_[a-z0-9]{8,}\$",
		             "where": ["Ask"]}],
		 "test": {"method": "GET", "url": "http://127.0.0.1:$PORT/$id",
		          "headers": {"Authorization": "Bearer {{lt_${id}_key}}"},
		          "expect_status": [200]}}
		EOF2
	done
	printf 'LT_OK_KEY=%s\nLT_DENY_KEY=%s\n' "$key" "$key" >"$T/env"
	stop_daemon
	write_conf "integrations_dir none" "integrations_dir $T/cat"
	start_daemon
}

@test "--test runs the live tests after storing and records them; a failure is exit 7" {
	standin_start
	run --separate-stderr wfv onboard acme lt_ok --from-env "$T/env" --test
	echo "$output $stderr"
	[ "$status" -eq 0 ]
	[[ "$output" == *"live tests:
  lt_ok: pass (200 OK)"* ]]
	[[ "$output" == *"still to do: nothing, tenant 'acme' is ready"* ]]
	[[ "$output$stderr" != *lk_0123456789abcdefsecret* ]]
	# Recorded for check, for the version stored.
	[ "$(wfv check acme --json | jq -c '.tenants[0].integrations[0].last_test | [.result, .version]')" = '["pass",1]' ]

	run --separate-stderr wfv onboard acme lt_deny --from-env "$T/env" --test
	echo "$output $stderr"
	[ "$status" -eq 7 ]
	[[ "$output" == *"  lt_deny: FAIL (401 Unauthorized)"* ]]
	[[ "$output" == *"  lt_deny: failing"* ]]
	[[ "$stderr" == *"stored as version 2, but a live test failed"* ]]
	[[ "$output$stderr" != *lk_0123456789abcdefsecret* ]]
	# Stored all the same.
	[ "$(version_of acme)" = 2 ]
	[ "$(wfv get acme --json | jq -c .integrations)" = '["lt_deny","lt_ok"]' ]
}

# The completions of the words given (the last one is being completed).
complete_words() {
	bash -c '
		source "$1"
		shift
		COMP_WORDS=(wfvault "$@")
		COMP_CWORD=$#
		_wfvault
		printf "%s\n" "${COMPREPLY[@]}" | sort
	' complete "$E2E_ROOT/completion/wfvault.bash" "$@"
}

@test "completion: onboard's options, a tenant, then integration ids" {
	PATH=$E2E_BUILD:$PATH
	put_value acme k v
	run complete_words onboard --
	[ "$output" = $'--cas\n--from-env\n--help\n--json\n--partial\n--socket\n--test' ]
	run complete_words -s "$SOCK" onboard a
	[ "$output" = acme ]
	run complete_words -s "$SOCK" onboard acme openai s
	[ "$output" = $'s3\nsendgrid\nstripe' ]
	run complete_words -s "$SOCK" onboard acme --from-env "$T/dat"
	[ "$output" = "$T/data" ]
}
