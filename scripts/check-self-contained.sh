#!/bin/sh
# Fails when a tracked file of the repository reads the team's shared folder
# (../shared beside a checkout): a clone of the project's own repository has
# no such folder, so tests, scripts, build files and docs must use what the
# repository carries (testdata/corpus/original-tsim, docs/DESIGN.md).
set -eu
cd "$(dirname "$0")/.."
# A path that climbs out of the repository into shared/, or names the
# shared folder's own contents by their old locations.
pattern='(\.\./)+shared/|/work/shared|shared/(corpus|reference|hooks)/|shared/DESIGN\.md'
if hits=$(git grep -n -I -E "$pattern" -- . ':!scripts/check-self-contained.sh' ':!testdata/corpus/'); then
	echo "$hits" >&2
	echo "check-self-contained: these lines read the shared folder, which a clone of the repository does not have; use testdata/ or docs/ instead" >&2
	exit 1
fi
