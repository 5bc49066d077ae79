#!/usr/bin/env bats
# The repository itself: what `make` and `make install` pull in, and docs
# that name only files the repository has and every method it serves.

load helpers

setup() {
	T=$(mktemp -d "${TMPDIR:-/tmp}/wfv-repo.XXXXXX")
}

teardown() {
	rm -rf "$T"
}

# What make would run for target $1 (and the sub-makes it starts), with
# a private, empty build directory so nothing is taken as built already.
make_n() {
	make -C "$E2E_ROOT" --no-print-directory -n BUILD="$T/b" "$@" 2>&1
}

# The repository's own files (not node_modules, builds or .git).
repo_files() {
	find "$E2E_ROOT" \( -name .git -o -name node_modules -o -name 'build*' \
	    -o -name '*.mdb' \) -prune -o -type f -print
}

@test "make and make install install the build packages only, never Node, npm or test tools" {
	local target out
	for target in all build "install DESTDIR=$T/dest"; do
		# shellcheck disable=SC2086
		out=$(make_n $target)
		echo "make -n $target:"
		echo "$out"
		[[ "$out" != *npm* ]]
		[[ "$out" != *nodejs* ]]
		[[ "$out" != *libcmocka* ]]
		[[ "$out" != *" bats "* ]]
		[[ "$out" != *socat* ]]
		# The three programs only: unit tests are make test's.
		[[ "$out" == *"-o $T/b/wfvaultd "* ]]
		[[ "$out" == *"-o $T/b/wfvault-sync "* ]]
		[[ "$out" != *tests/unit/* ]]
		[[ "$out" != *wfvault-testpeer* ]]
	done
	# The build packages are checked (and installed when missing).
	[[ "$(make_n all)" == *libsodium-dev* ]]
	[[ "$(make_n install DESTDIR="$T/dest")" == *libsodium-dev* ]]
}

@test "each folder compiles with its own include path; proto/ logs nothing" {
	local out line n=0
	out=$(make_n build)
	# proto/ and the CLI see no header of the daemon or the agent, so
	# they cannot include one by accident; nor does config/.
	while read -r line; do
		case "$line" in
		*" -c proto/"*|*" -c client/"*|*" -c config/"*)
			n=$((n + 1))
			[[ "$line" != *-Idaemon* ]] || { echo "$line"; false; }
			[[ "$line" != *-Isync* ]] || { echo "$line"; false; }
			[[ "$line" != *-Iclient* || "$line" == *" -c client/"* ]] ||
			    { echo "$line"; false; }
			;;
		esac
	done <<<"$out"
	[ "$n" -ge 3 ]
	# The logger lives in common/; proto/ only returns errors.
	[ ! -e "$E2E_ROOT/proto/log.c" ]
	run grep -l 'log\.h\|log_warn\|log_info\|log_debug' "$E2E_ROOT"/proto/*.[ch]
	echo "$output"
	[ "$status" -eq 1 ]
}

@test "make test, make demo and make bench install what they run" {
	local target out
	for target in test demo bench; do
		out=$(make_n "$target")
		[[ "$out" == *"npm ci"* ]]
		[[ "$out" == *libcmocka-dev* ]]
		[[ "$out" == *bats* ]]
		[[ "$out" == *socat* ]]
	done
	out=$(make_n test)
	[[ "$out" == *tests/unit/test_store.c* ]]
	[[ "$out" == *wfvault-testpeer* ]]
	[[ "$out" == *tests/run.sh* ]]
}

@test "nothing refers to a DESIGN.md the repository does not have" {
	[ ! -e "$E2E_ROOT/DESIGN.md" ]
	run grep -ln 'DESIGN\.md' $(repo_files | grep -v '/tests/e2e/repo\.bats$')
	echo "$output"
	[ "$status" -eq 1 ]
}

@test "every relative link in the README names a file that exists" {
	local link missing=
	for link in $(grep -o '](\([^)#:]*\))' "$E2E_ROOT/README.md" |
	    sed 's/^](\(.*\))$/\1/'); do
		[ -e "$E2E_ROOT/$link" ] || missing="$missing $link"
	done
	[ -z "$missing" ] || { echo "missing:$missing"; false; }
}

@test "docs/protocol.md documents every method and every error kind" {
	local doc=$E2E_ROOT/docs/protocol.md m k missing=
	[ -f "$doc" ]
	for m in $(sed -n 's/^[[:space:]]*{ "\([a-z_]*\)",[[:space:]]*PM_.*/\1/p' \
	    "$E2E_ROOT/proto/proto.c"); do
		grep -qx "### $m" "$doc" || missing="$missing $m"
		grep -q "^| \`$m\` |" "$doc" || missing="$missing $m(permission)"
	done
	for k in $(sed -n 's/^[[:space:]]*{ PROTO_E_[A-Z_]*,[[:space:]]*"\([a-z_]*\)" },/\1/p' \
	    "$E2E_ROOT/proto/proto.c"); do
		grep -q "| \`$k\` |" "$doc" || missing="$missing $k"
	done
	[ -z "$missing" ] || { echo "not in docs/protocol.md:$missing"; false; }
}

@test "exit status 5 reads the same in the README, wfvault help and the man page" {
	local want='5 conflict: the --cas version did not match, or a backup of that name exists'
	grep -qF '| 5 | conflict: the `--cas` version did not match, or a backup of that name exists |' \
	    "$E2E_ROOT/README.md"
	run "$WFVAULT" help
	[[ "$(printf '%s\n' "$output" | tr -s ' \n' '  ')" == *"$want"* ]]
	run env MANWIDTH=200 man -l "$E2E_ROOT/client/wfvault.1"
	[[ "$(printf '%s\n' "$output" | sed 's/.\x08//g' | tr -s ' \n' '  ')" == *"$want"* ]]
}

@test "the README's Worker reads the keys under the prefix it recommends" {
	local prefix
	prefix=$(sed -n 's/^#kv_key_prefix[[:space:]]*//p' \
	    "$E2E_ROOT/config/wfvault-sync.conf.example")
	[ -n "$prefix" ]
	grep -qF "const KV_KEY_PREFIX = '$prefix';" "$E2E_ROOT/README.md"
	grep -qF 'env.TENANT_CONFIGS.get(KV_KEY_PREFIX + tenantId' \
	    "$E2E_ROOT/README.md"
	grep -qF "\`kv_key_prefix\` such as
   \`$prefix\`" "$E2E_ROOT/README.md"
}
