#!/bin/sh
# Installs what a fresh Debian machine lacks, with apt-get, only what is
# missing (safe to run again and again):
#   --runtime  what `tsim run` / `tsim hosts up` / `tsim reach` need at run
#              time: iproute2, iptables, ipset, procps (sysctl);
#   (default)  the above plus everything the whole test suite uses:
#              poppler-utils (PDF checks), chromium (browser tests), the
#              example's verification tools (socat, conntrack, ping, python3),
#              the shells of the completion tests, man-db, cgo and PAM
#              headers, jq, curl, openssl and ansible-core for the docs'
#              examples.
# Building needs Go 1.26 (the Makefile finds /usr/local/go/bin).
set -eu

runtime_only=0
case "${1:-}" in
--runtime) runtime_only=1 ;;
"") ;;
*) echo "usage: install-deps.sh [--runtime]" >&2; exit 2 ;;
esac

need=""
have() { command -v "$1" >/dev/null 2>&1; }
have ip || need="$need iproute2"
have iptables-restore || need="$need iptables"
have ipset || need="$need ipset"
have sysctl || [ -x /usr/sbin/sysctl ] || need="$need procps"

if [ "$runtime_only" = 0 ]; then
	have pdftoppm || need="$need poppler-utils"
	# JUnit XML is validated against internal/flowtest/testdata/junit.xsd.
	have xmllint || need="$need libxml2-utils"
	have chromium || need="$need chromium"
	# scripts/example/build.sh --verify (TestVerifyFlows): real probes.
	have socat || need="$need socat"
	have conntrack || [ -x /usr/sbin/conntrack ] || need="$need conntrack"
	have ping || need="$need iputils-ping"
	have python3 || need="$need python3"
	have dash || need="$need dash"
	have zsh || need="$need zsh"
	have fish || need="$need fish"
	[ -f /usr/share/bash-completion/bash_completion ] || need="$need bash-completion"
	have man || need="$need man-db"
	# PAM login (`go test -tags pam`): cgo and the PAM headers.
	have gcc || need="$need gcc libc6-dev"
	[ -f /usr/include/security/pam_appl.h ] || need="$need libpam0g-dev"
	have bc || need="$need bc"
	# The docs' examples (cmd/tsim/docs_test.go) use jq, and the facts guide's
	# Ansible playbook runs against localhost.
	have jq || need="$need jq"
	have curl || need="$need curl"
	have openssl || need="$need openssl"
	have ansible-playbook || need="$need ansible-core"
	[ -x /usr/bin/time ] || need="$need time"
	have git || need="$need git"

	if [ -x /usr/local/go/bin/go ]; then PATH="/usr/local/go/bin:$PATH"; fi
	# Debian 12's golang-go (1.19) is too old to build tsim or to fetch a newer
	# toolchain itself: Go >= 1.21 must be there (it then fetches go1.26 from
	# the module proxy through GOTOOLCHAIN, see the Makefile).
	if ! have go; then
		echo "install-deps: no Go toolchain: install Go 1.26 into /usr/local/go" >&2
		exit 3
	fi
fi

if [ -n "$need" ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "install-deps: missing:$need — run as root (sudo make …) or install them" >&2
		exit 3
	fi
	echo "install-deps: installing:$need" >&2
	export DEBIAN_FRONTEND=noninteractive
	log=$(mktemp)
	# shellcheck disable=SC2086
	if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends $need; } >"$log" 2>&1; then
		cat "$log" >&2
		rm -f "$log"
		echo "install-deps: apt-get failed" >&2
		exit 3
	fi
	rm -f "$log"
fi
