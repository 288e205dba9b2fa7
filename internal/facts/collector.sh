#!/bin/sh
# tsim facts collector: prints one router's facts (interfaces, policy rules,
# routing tables, iptables, ipsets, sysctls) in tsim's section format on
# stdout. Run it on the router as root:
#
#     sh collector.sh > "$(hostname)_facts.txt"
#
# Plain POSIX sh (dash, busybox ash, bash all work). It only reads: it never
# changes the router. A missing command gives a section with EXIT_CODE 127;
# the collection never aborts half way.
#
# Environment (all optional):
#   TSIM_ROUTER        router name to record instead of `hostname`
#   TSIM_RT_TABLES     an extra rt_tables file (ID NAME lines) whose names are
#                      used besides /etc/iproute2 and /usr/share/iproute2
#   TSIM_PATH          where to look for commands (default: the sbin/bin
#                      directories, then $PATH)
#   SOURCE_DATE_EPOCH  fixed time for every timestamp (and for the dates in
#                      iptables-save's comment lines), for reproducible output
#
# Section format (one per command):
#   === TSIM_SECTION_START:<name> ===
#   TITLE: <title>
#   COMMAND: <command line>
#   TIMESTAMP: <YYYY-MM-DD HH:MM:SS>
#   ---
#   <command output>
#   <empty line>
#   EXIT_CODE: <n>
#   === TSIM_SECTION_END:<name> ===

LC_ALL=C
export LC_ALL
PATH=${TSIM_PATH:-/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH}
export PATH

COLLECTOR_VERSION=2.0
SECTIONS=

errfile=$(mktemp 2>/dev/null) || errfile=/tmp/tsim-collect.$$
trap 'rm -f "$errfile"' EXIT
trap 'rm -f "$errfile"; exit 130' INT TERM

# now FORMAT prints the time in FORMAT, fixed when SOURCE_DATE_EPOCH is set.
now() {
	if [ -n "${SOURCE_DATE_EPOCH:-}" ]; then
		date -u -d "@$SOURCE_DATE_EPOCH" "+$1" 2>/dev/null ||
			date -u -r "$SOURCE_DATE_EPOCH" "+$1" 2>/dev/null ||
			date -u "+$1"
	else
		date "+$1"
	fi
}

have() {
	command -v "$1" >/dev/null 2>&1
}

# section NAME TITLE COMMAND runs COMMAND (a shell command line) and frames
# its stdout. Its stderr goes to our stderr on success; on failure it is kept
# in the section as ERROR: lines, so a collected file says what went wrong.
section() {
	name=$1
	title=$2
	cmd=$3
	SECTIONS=${SECTIONS:+$SECTIONS,}$name
	printf '=== TSIM_SECTION_START:%s ===\n' "$name"
	printf 'TITLE: %s\n' "$title"
	printf 'COMMAND: %s\n' "$cmd"
	printf 'TIMESTAMP: %s\n' "$(now '%Y-%m-%d %H:%M:%S')"
	printf '%s\n' ---
	tool=${cmd%% *}
	if have "$tool"; then
		# </dev/null: the script itself may arrive on stdin (curl ... | sh).
		eval "$cmd" </dev/null 2>"$errfile"
		rc=$?
		if [ "$rc" -ne 0 ]; then
			sed 's/^/ERROR: /' "$errfile"
		else
			cat "$errfile" >&2
		fi
	else
		printf "ERROR: Command '%s' not found or not executable\n" "$tool"
		rc=127
	fi
	printf '\nEXIT_CODE: %s\n' "$rc"
	printf '=== TSIM_SECTION_END:%s ===\n\n' "$name"
}

# rt_tables_files prints the rt_tables files that exist, in the order
# iproute2 reads them, plus $TSIM_RT_TABLES.
rt_tables_files() {
	for f in /usr/share/iproute2/rt_tables /usr/share/iproute2/rt_tables.d/*.conf \
		/etc/iproute2/rt_tables /etc/iproute2/rt_tables.d/*.conf "${TSIM_RT_TABLES:-}"; do
		[ -n "$f" ] && [ -f "$f" ] && printf '%s\n' "$f"
	done
}

# rt_tables_lines prints the ID NAME lines of every rt_tables file.
rt_tables_lines() {
	{
		printf '255 local\n254 main\n253 default\n0 unspec\n'
		rt_tables_files | while IFS= read -r f; do cat "$f"; done
	} | awk '$1 !~ /^#/ && NF >= 2 { print $1, $2 }'
}

# table_id NAME prints the numeric id of table NAME (NAME itself if unknown).
table_id() {
	case $1 in
	*[!0-9]*) ;;
	*)
		printf '%s\n' "$1"
		return
		;;
	esac
	id=$(rt_tables_lines | awk -v n="$1" '$2 == n { id = $1 } END { print id }')
	printf '%s\n' "${id:-$1}"
}

# table_name ID prints the last rt_tables name of table ID (ID if none).
table_name() {
	n=$(rt_tables_lines | awk -v i="$1" '$1 == i { n = $2 } END { print n }')
	printf '%s\n' "${n:-$1}"
}

# policy_tables prints the ids of the tables that hold routes or that a
# policy rule looks up, except local (kernel made) and main (own section).
policy_tables() {
	{
		ip route show table all 2>/dev/null |
			awk '{ for (i = 1; i < NF; i++) if ($i == "table") print $(i + 1) }'
		ip rule show 2>/dev/null |
			awk '{ for (i = 1; i < NF; i++) if ($i == "lookup" || $i == "table") print $(i + 1) }'
	} | sort -u | while IFS= read -r t; do
		table_id "$t"
	done | sort -n -u | while IFS= read -r id; do
		case $id in
		255 | 254 | local | main) ;;
		*)
			# A rule may name a table that was never created.
			ip route show table "$id" >/dev/null 2>&1 && printf '%s\n' "$id"
			;;
		esac
	done
}

if [ -n "${TSIM_ROUTER:-}" ]; then
	host=$TSIM_ROUTER
	hostcmd='printenv TSIM_ROUTER'
else
	host=$(hostname 2>/dev/null || uname -n)
	hostcmd=hostname
fi
root=0
[ "$(id -u 2>/dev/null)" = 0 ] && root=1

printf '# tsim facts collection\n'
printf '# Generated on: %s\n' "$(now '%Y-%m-%d %H:%M:%S')"
printf '# Hostname: %s\n' "$host"
printf '# Kernel: %s\n' "$(uname -r 2>/dev/null)"
printf '# Collection Script Version: %s\n' "$COLLECTOR_VERSION"
printf '# Running as root: %s\n' "$root"
printf '\n'

section interfaces 'Network Interfaces' 'ip addr show'
section policy_rules 'IP Policy Rules' 'ip rule show'

rtfiles=$(rt_tables_files | tr '\n' ' ')
rtfiles=${rtfiles% }
section rt_tables 'Routing Table Names' "cat ${rtfiles:-/etc/iproute2/rt_tables}"

section routing_table_main 'IP Routing Table main (254)' 'ip route show table main'
if have ip; then
	for id in $(policy_tables); do
		section "routing_table_$id" "IP Routing Table $(table_name "$id") ($id)" "ip route show table $id"
	done
fi

if have iptables-save && iptables-save -c >/dev/null 2>&1; then
	ipt='iptables-save -c'
else
	ipt='iptables-save'
fi
if [ -n "${SOURCE_DATE_EPOCH:-}" ]; then
	# iptables-save stamps its comment lines with the current time.
	d=$(now '%a %b %e %H:%M:%S %Y')
	ipt="$ipt | sed -e 's/^\\(# Generated by .* on \\).*\$/\\1$d/' -e 's/^\\(# Completed on \\).*\$/\\1$d/'"
fi
section iptables_save 'iptables-save Output' "$ipt"
section ipset_save 'Ipset Save Output' 'ipset save'

section ip_forwarding 'IP Forwarding Status' 'cat /proc/sys/net/ipv4/ip_forward'
section sysctls 'Routing sysctls' "sysctl -a 2>/dev/null | grep -E '^net\\.ipv4\\.(ip_forward|ip_nonlocal_bind|fib_multipath_hash_(policy|fields|seed)|fwmark_reflect|conf\\.[^.]+\\.(forwarding|rp_filter|accept_local|src_valid_mark|proxy_arp|send_redirects|accept_redirects)) |^net\\.netfilter\\.nf_conntrack_tcp_(loose|be_liberal) '"
section kernel_version 'Kernel Version' 'uname -r'
section hostname 'System Hostname' "$hostcmd"

printf '=== TSIM_FACTS_COLLECTION_COMPLETE ===\n'
printf 'TIMESTAMP: %s\n' "$(now '%Y-%m-%d %H:%M:%S')"
printf 'HOSTNAME: %s\n' "$host"
printf 'SECTIONS_COLLECTED: %s\n' "$SECTIONS"
