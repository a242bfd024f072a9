#!/usr/bin/env bash
# extract-cfg-cases.sh [CASES [OUTDIR]]: write the YAML body of every "%% case" in
# tests/cfg/cases.txt (format: see the head of that file) into OUTDIR/case-NNN, the seed
# corpus of fuzz_cfg. Run from the repository root; `make fuzz-seeds` runs it. Old
# case-* files are removed first, so the seeds follow the cases.
set -euo pipefail
cases=${1:-tests/cfg/cases.txt}
out=${2:-tests/fuzz/corpus/fuzz_cfg}
mkdir -p "$out"
rm -f "$out"/case-*
awk -v out="$out" '
	/^%% case / { n++; file = sprintf("%s/case-%03d", out, n); body = 1; printf "" > file; next }
	/^%% /      { if (body) close(file); body = 0; next }
	body        { print >> file }
' "$cases"
echo "$(ls "$out"/case-* | wc -l) case bodies in $out"
