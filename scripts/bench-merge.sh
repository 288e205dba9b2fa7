#!/bin/bash
# Times `tsim merge` of 100 documents of 3 services each (pdf/testdata/three.json,
# a document with trace and reach) against DESIGN's target: under 1.5 s and
# 150 MB peak RSS. No root needed. Usage: scripts/bench-merge.sh [N] [DOCS]
# (median of N runs, default 5; DOCS documents, default 100). Load: `uptime`.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-5}
DOCS=${2:-100}
export PATH=/usr/local/go/bin:$PATH
[ -x "${TSIM:-}" ] || { make -s build; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
install -m 0755 "${TSIM:-tsim}" "$work/tsim"
for ((i = 0; i < DOCS; i++)); do cat pdf/testdata/three.json; done >"$work/docs.json"
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
export SOURCE_DATE_EPOCH=1790000000
for ((i = 0; i < N; i++)); do
	/usr/bin/time -f '%e %M %U %S' -o "$work/t" "$work/tsim" -q merge -o "$work/m.pdf" <"$work/docs.json" >"$work/out.json"
	cat "$work/t"
done >"$work/times"
s=$(cut -d' ' -f1 "$work/times" | median)
kb=$(cut -d' ' -f2 "$work/times" | median)
cpu=$(awk '{print $3 + $4}' "$work/times" | median)
pages=$(sed -n 's/.*"pages": *\([0-9]*\).*/\1/p' "$work/out.json")
size=$(($(stat -c %s "$work/m.pdf") / 1024))
printf '%-44s %7.2f s   target   1.50 s (%5.2fx)   cpu %.2f s (user+sys; wall includes waiting for a core on a busy machine)\n' "merge, $DOCS documents × 3 services" "$s" "$(echo "$s / 1.5" | bc -l)" "$cpu"
printf '%-44s %7d MB  target %6s MB (%5.2fx)   %s pages, %s KB\n' "peak RSS, merge" "$((kb / 1024))" 150 "$(echo "$kb / 1024 / 150" | bc -l)" "$pages" "$size"
