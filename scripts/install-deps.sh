#!/bin/sh
# Installs what a fresh Debian machine lacks to build and test tsim:
# iproute2, iptables, ipset (labs), poppler-utils (PDF checks), chromium
# (browser tests), and a Go toolchain when none (or an old one) is present.
# Safe to run repeatedly: it installs only what is missing.
set -eu

need=""
have() { command -v "$1" >/dev/null 2>&1; }
have ip || need="$need iproute2"
have iptables-restore || need="$need iptables"
have ipset || need="$need ipset"
have pdftoppm || need="$need poppler-utils"
# JUnit XML is validated against internal/flowtest/testdata/junit.xsd.
have xmllint || need="$need libxml2-utils"
have chromium || need="$need chromium"
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
have ansible-playbook || need="$need ansible-core"
[ -x /usr/bin/time ] || need="$need time"

if [ -x /usr/local/go/bin/go ]; then PATH="/usr/local/go/bin:$PATH"; fi
# Debian 12's golang-go (1.19) is too old to build tsim or to fetch a newer
# toolchain itself: Go >= 1.21 must be there (it then fetches go1.26 from
# the module proxy through GOTOOLCHAIN, see the Makefile).
if ! have go; then
	echo "install-deps: no Go toolchain: install Go 1.26 into /usr/local/go" >&2
	exit 3
fi

if [ -n "$need" ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "install-deps: missing:$need — run as root (sudo make test) or install them" >&2
		exit 3
	fi
	echo "install-deps: installing:$need" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $need >&2
fi
