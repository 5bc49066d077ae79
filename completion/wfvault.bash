# bash completion for wfvault(1): commands, each command's options,
# tenant ids from `wfvault list` (the ids the caller may list) and, for
# onboard, integration ids from `wfvault integrations`.  The
# socket is the one the command line being completed names (-s, --socket,
# --socket=), else $WFVAULT_SOCKET.  When the daemon cannot be reached the
# tenant ids are simply not offered: nothing is printed, nothing waits long.
# Installed by `make install` as share/bash-completion/completions/wfvault.

_wfvault_commands="put get list fields rm status backup rotate-master-key
rotate-key integrations import export run test check onboard history rollback
help"

# The options of one command (the common -s/--socket/-h/--help included).
_wfvault_options()
{
	local common="-s --socket -h --help"
	case $1 in
	put)	echo "$common --cas --file --integrations --json --replace" ;;
	get)	echo "$common --json --version -n --no-newline" ;;
	list|fields|status|backup|rotate-master-key|rotate-key|integrations|test|\
	history|check)
		echo "$common --json" ;;
	rollback) echo "$common --cas --json" ;;
	rm)	echo "$common --cas --json --purge -y --yes" ;;
	import)	echo "$common --cas --json --replace --dry-run" ;;
	export)	echo "$common --format --force" ;;
	run)	echo "$common --only" ;;
	onboard) echo "$common --cas --from-env --json --partial --test" ;;
	*)	echo "$common --version" ;;
	esac
}

# Tenant ids starting with $1, from the daemon; quiet when unreachable.
_wfvault_tenants()
{
	local sock=$2 prog=${3:-wfvault}
	local -a args=()
	[ -n "$sock" ] && args=(-s "$sock")
	args+=(list)
	[ -n "$1" ] && args+=(-- "$1")
	# A tenant id is [A-Za-z0-9._-], so the output needs no quoting.
	timeout 5 "$prog" "${args[@]}" 2>/dev/null </dev/null
}

# The catalog's integration ids (the first column of `wfvault
# integrations` after its header); quiet when unreachable.
_wfvault_integrations()
{
	local sock=$1 prog=${2:-wfvault}
	local -a args=()
	[ -n "$sock" ] && args=(-s "$sock")
	timeout 5 "$prog" "${args[@]}" integrations 2>/dev/null </dev/null |
	    awk 'NR > 1 { print $1 }'
}

_wfvault()
{
	local cur prev cmd="" sock="" i w nops=0 takes
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=""
	[ "$COMP_CWORD" -gt 0 ] && prev=${COMP_WORDS[COMP_CWORD-1]}
	COMPREPLY=()

	# Walk the words before the cursor: the socket, the command, and
	# how many operands it has so far.
	for ((i = 1; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		case $w in
		-s|--socket)
			sock=${COMP_WORDS[i+1]}
			((i++))
			continue ;;
		--socket=*)
			sock=${w#--socket=}
			continue ;;
		--cas|--file|--version|--format|--only|--from-env)
			((i++))
			continue ;;
		--)
			[ "$cmd" = run ] && return 0
			continue ;;
		-*)	continue ;;
		esac
		if [ -z "$cmd" ]; then
			cmd=$w
		else
			((nops++))
		fi
	done
	[ -z "$sock" ] && sock=${WFVAULT_SOCKET:-}

	# The value of an option that takes one.
	case $prev in
	-s|--socket|--file|--from-env)
		COMPREPLY=($(compgen -f -- "$cur"))
		return 0 ;;
	--format)
		COMPREPLY=($(compgen -W "env json" -- "$cur"))
		return 0 ;;
	--cas|--version|--only)
		return 0 ;;
	esac

	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$(_wfvault_options "$cmd")" -- "$cur"))
		return 0
	fi
	if [ -z "$cmd" ]; then
		COMPREPLY=($(compgen -W "$_wfvault_commands" -- "$cur"))
		return 0
	fi

	case $cmd in
	help)
		[ "$nops" -eq 0 ] &&
		    COMPREPLY=($(compgen -W "$_wfvault_commands" -- "$cur")) ;;
	put|get|fields|rm|rotate-key|export|run|test|history|rollback)
		[ "$nops" -eq 0 ] &&
		    COMPREPLY=($(_wfvault_tenants "$cur" "$sock" \
		    "${COMP_WORDS[0]}")) ;;
	check)
		# Any number of tenants (or patterns, typed by hand).
		COMPREPLY=($(_wfvault_tenants "$cur" "$sock" \
		    "${COMP_WORDS[0]}")) ;;
	onboard)
		# A tenant, then any number of the catalog's integrations.
		if [ "$nops" -eq 0 ]; then
			COMPREPLY=($(_wfvault_tenants "$cur" "$sock" \
			    "${COMP_WORDS[0]}"))
		else
			COMPREPLY=($(compgen -W "$(_wfvault_integrations \
			    "$sock" "${COMP_WORDS[0]}")" -- "$cur"))
		fi ;;
	import)
		if [ "$nops" -eq 0 ]; then
			COMPREPLY=($(_wfvault_tenants "$cur" "$sock" \
			    "${COMP_WORDS[0]}"))
		elif [ "$nops" -eq 1 ]; then
			COMPREPLY=($(compgen -f -- "$cur"))
		fi ;;
	esac
	return 0
}

complete -F _wfvault wfvault
