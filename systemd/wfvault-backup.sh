#!/bin/sh
# wfvault-backup -- what wfvault-backup.service runs; installed as
# /usr/libexec/wfvault/wfvault-backup.  One scheduled backup, in three
# steps, each only if the one before succeeded:
#
#   1. "wfvault backup": the daemon writes an online copy of its store
#      into its backup_dir under a default name (wfvault-STAMP.mdb);
#   2. the copy is verified the way a restore verifies it, by restoring
#      it into a scratch data_dir with the configured master key, so a
#      backup that would not restore is never taken for one;
#   3. then, and only then, the older scheduled backups beyond the newest
#      KEEP are removed.  Only files the daemon names that way, plain
#      files owned by the new backup's owner, are ever removed: named
#      backups ("wfvault backup before-upgrade.mdb") and anything else in
#      the directory are left alone.
#
# usage: wfvault-backup [-c CONF] [-k KEEP]
#   -c CONF  the daemon's configuration (/etc/wfvault/wfvaultd.conf)
#   -k KEEP  scheduled backups to keep, the new one included; 0 keeps
#            all (default $WFVAULT_BACKUP_KEEP, else 14)
# The daemon's socket is wfvault's default or $WFVAULT_SOCKET; it must be
# on this host, since the old backups are removed here.  Exit status 0, or
# 1 with the reason on stderr (the new backup is then kept and nothing is
# removed).
set -u

# The programs; the tests name their builds.
WFVAULT=${WFVAULT_BACKUP_CLI:-/usr/bin/wfvault}
WFVAULTD=${WFVAULT_BACKUP_DAEMON:-/usr/sbin/wfvaultd}

conf=/etc/wfvault/wfvaultd.conf
keep=${WFVAULT_BACKUP_KEEP:-14}
scratch=

usage() {
	echo "usage: wfvault-backup [-c CONF] [-k KEEP]" >&2
	exit 2
}

fail() {
	echo "wfvault-backup: $*" >&2
	exit 1
}

while getopts c:k:h opt; do
	case $opt in
	c)	conf=$OPTARG ;;
	k)	keep=$OPTARG ;;
	*)	usage ;;
	esac
done
shift $((OPTIND - 1))
[ $# -eq 0 ] || usage
case $keep in
''|*[!0-9]*)	fail "KEEP must be a number (0 keeps every backup), not '$keep'" ;;
esac
[ -r "$conf" ] || fail "cannot read $conf"

umask 077
trap '[ -z "$scratch" ] || rm -rf "$scratch"' EXIT
trap 'exit 1' HUP INT TERM

scratch=$(mktemp -d "${TMPDIR:-/tmp}/wfvault-backup.XXXXXX") ||
    fail "cannot make a scratch directory in ${TMPDIR:-/tmp}"

# 1. The backup.  stdout is its path; the note about the key is for people.
if ! path=$("$WFVAULT" backup 2>"$scratch/err"); then
	grep -v '^note:' "$scratch/err" >&2
	fail "the backup failed; no backup was removed"
fi
echo "backup written to $path"
case $path in
/*/wfvault-*.mdb) ;;
*)	fail "unexpected backup path '$path'" ;;
esac

# 2. The check: a restore of the new backup into a scratch data_dir, with
# the live configuration's keys (master_key_* lines) and its other
# settings, but its own data_dir and socket, so the live store is never
# touched.  This is what "wfvaultd --restore" does on a standby, too.
grep -Ev '^[[:space:]]*(data_dir|socket|audit_log|backup_dir)([[:space:]]|$)' \
    "$conf" >"$scratch/verify.conf"
printf 'data_dir %s/data\nsocket %s/s\n' "$scratch" "$scratch" \
    >>"$scratch/verify.conf"
mkdir -m 0700 "$scratch/data"
if ! out=$("$WFVAULTD" -c "$scratch/verify.conf" --restore "$path" 2>&1); then
	printf '%s\n' "$out" >&2
	fail "$path failed verification; it is kept, and no backup was removed"
fi
printf '%s\n' "$out" | sed -n "s|^verified |verified $path: |p"
rm -rf "$scratch/data"

# 3. Retention.  The daemon names its default backups
# wfvault-YYYYmmddTHHMMSSZ.mdb, or ..Z_N.mdb when that name is taken; a
# name freed by this pruning may be given again within the same second,
# so within one second the time the file was written decides.
[ "$keep" -gt 0 ] || exit 0
dir=${path%/*}
owner=$(stat -c %u -- "$path") || fail "cannot stat $path"
for f in "$dir"/wfvault-*.mdb; do
	[ "$f" != "$path" ] && [ -f "$f" ] && [ ! -L "$f" ] || continue
	n=${f##*/}
	stamp=${n#wfvault-}
	stamp=${stamp%%Z*}Z
	rest=${n#wfvault-"$stamp"}
	case $stamp in
	[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]T[0-9][0-9][0-9][0-9][0-9][0-9]Z) ;;
	*)	continue ;;
	esac
	case $rest in
	.mdb)	nth=1 ;;
	_*.mdb)	nth=${rest#_}
		nth=${nth%.mdb}
		case $nth in ''|*[!0-9]*) continue ;; esac ;;
	*)	continue ;;
	esac
	meta=$(stat -c '%u %.9Y' -- "$f") || continue
	[ "${meta% *}" = "$owner" ] || continue
	printf '%s %s %s %s\n' "$stamp" "${meta#* }" "$nth" "$n"
done | sort -k1,1 -k2,2n -k3,3n >"$scratch/made" || fail "cannot list $dir"
# The new backup is one of the KEEP; the oldest others go.
total=$(wc -l <"$scratch/made")
drop=$((total - (keep - 1)))
[ "$drop" -gt 0 ] || exit 0
head -n "$drop" "$scratch/made" | while read -r _ _ _ n; do
	rm -f -- "$dir/$n" || exit 1
	echo "removed $dir/$n"
done || fail "cannot remove the oldest backups in $dir"
