#!/usr/bin/env bash
# tests/vm/matrix.sh [SCENARIO...] - the VM suite on several kernels (`make vmtest KERNELS=all`).
#
# KERNELS (env) says which:
#   all      the newest downloadable Debian kernel of every series with sched_ext
#            (scripts/kernel.sh series: trixie-backports' cloud kernels, checked for
#            sched_ext when fetched) and the 6.12 kernel built from Debian's linux-source
#            (scripts/kernel-src.sh 6.12; the first build takes ~6 minutes)
#   a list   of series ("6.12 7.2"; 6.12 means the source-built one) or kernel directories
# Each kernel boots the whole suite (tests/vm/run.sh, under VM_KERNEL_DIR); its console log
# and results are kept in build/vm/matrix/<kernel>.{console.log,results.txt}. Prints a
# table kernel x scenario (PASS, FAIL, or "-" when there is no result line: boot failure,
# crash or time limit, see that kernel's results file), writes it as Markdown to
# build/vm/matrix/matrix.md (the README shows it), and ends with "N passed, N failed"
# over all cells. A kernel that cannot be fetched or built counts one failure per scenario.
# A kernel on which no sched_ext scheduler using DSQs can load at all (the host says its
# BTF lacks a kfunc's _impl: a kernel build problem, see host/sched_bpf.c) is shown as
# "n/r" with that reason, and counted apart ("not runnable"), not as a scheduler failure.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=build/vm/matrix
KERNELS=${KERNELS:-all}
mkdir -p "$OUT"
mapfile -t SCEN < <(bash scripts/vm.sh list)
[ $# -gt 0 ] && SCEN=("$@")

say() { echo "matrix: $*" >&2; }

# The kernels, resolved one at a time (a source build may take minutes): "LABEL|DIR"
# entries (DIR empty when it could not be had, LABEL then says why).
list=()
if [ "$KERNELS" = all ]; then
	mapfile -t series < <(bash scripts/kernel.sh series)
	if [ ${#series[@]} -eq 0 ]; then
		say "no Debian binary series listed (offline?): the cached kernels"
		mapfile -t series < <(ls -1d "${GTHULHU_CACHE:-${HOME:-/root}/.cache/gthulhu-lua}"/kernels/*/ 2>/dev/null | sed 's:/$::')
	fi
	KERNELS="${series[*]} 6.12"   # 6.12 last: its first build (~6 min) may be under way
fi
resolve() {
	local k=$1 d
	if [ -d "$k" ]; then d=$k
	else case $k in
		6.12) d=$(bash scripts/kernel-src.sh 6.12) || d="" ;;
		*)    d=$(bash scripts/kernel.sh "$k") || d="" ;;
	esac; fi
	if [ -n "$d" ] && [ -s "$d/vmlinuz" ]; then echo "$(cat "$d/version" 2>/dev/null || basename "$d")|$d"
	else echo "$k (not available)|"; fi
}

pass=0 fail=0 nr=0 t_all=$SECONDS
declare -A cell
declare -a notes=()
for k in $KERNELS; do
	e=$(resolve "$k"); list+=("$e")
	label=${e%%|*} dir=${e#*|}
	if [ -z "$dir" ]; then
		for s in "${SCEN[@]}"; do cell[$label,$s]="-"; fail=$((fail + 1)); done
		say "$label: no kernel (fetch or build failed)"; continue
	fi
	say "$label: running ${#SCEN[@]} scenarios ($dir)"
	t0=$SECONDS
	VM_KERNEL_DIR=$dir bash tests/vm/run.sh "${SCEN[@]}" > "$OUT/$label.log" 2>&1
	cp build/vm/console.log "$OUT/$label.console.log" 2>/dev/null
	cp build/vm/results.txt "$OUT/$label.results.txt" 2>/dev/null
	why=$(grep -m1 -o "declares the sched_ext kfunc [a-z_]* with its implicit aux argument" "$OUT/$label.console.log" 2>/dev/null)
	if [ -n "$why" ] && ! grep -q "^RESULT [a-z_]* PASS" "$OUT/$label.console.log"; then
		k=$(awk '{print $5}' <<<"$why")
		notes+=("$label: not runnable: its BTF declares $k with the implicit aux argument and has no ${k}_impl, so no BPF program can call it (kernel build problem)")
		for s in "${SCEN[@]}"; do cell[$label,$s]="n/r"; nr=$((nr + 1)); done
		say "$label: not runnable (BTF lacks ${k}_impl)"; continue
	fi
	for s in "${SCEN[@]}"; do
		v=$(grep -m1 -o "^RESULT $s \(PASS\|FAIL\)" "$OUT/$label.console.log" 2>/dev/null | awk '{print $3}')
		[ -n "$v" ] || v="-"
		cell[$label,$s]=$v
		[ "$v" = PASS ] && pass=$((pass + 1)) || fail=$((fail + 1))
	done
	say "$label: $(tail -n 1 "$OUT/$label.log") in $((SECONDS - t0)) s"
done

# Plain table on stdout, Markdown in matrix.md.
w=26
printf '\n%-*s' $w KERNEL
for s in "${SCEN[@]}"; do printf ' %-*s' ${#s} "$s"; done; echo
md=$OUT/matrix.md
{
	printf '| kernel |'; for s in "${SCEN[@]}"; do printf ' %s |' "$s"; done; echo
	printf '|---|'; for s in "${SCEN[@]}"; do printf '%s' '---|'; done; echo
} > "$md"
for e in "${list[@]}"; do
	label=${e%%|*}
	printf '%-*s' $w "$label"
	printf '| %s |' "$label" >> "$md"
	for s in "${SCEN[@]}"; do
		printf ' %-*s' ${#s} "${cell[$label,$s]}"
		printf ' %s |' "${cell[$label,$s]}" >> "$md"
	done
	echo; echo >> "$md"
done
echo
for n in "${notes[@]}"; do echo "$n"; echo "- $n" >> "$md"; done
echo "matrix: $(date -u '+%Y-%m-%d %H:%M UTC'), ${#list[@]} kernels, ${#SCEN[@]} scenarios, $((SECONDS - t_all)) s, $nr cells not runnable; logs in $OUT/" | tee "$OUT/summary.txt"
echo "$pass passed, $fail failed" | tee -a "$OUT/summary.txt"
[ "$fail" -eq 0 ]
