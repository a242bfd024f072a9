#!/bin/sh
# bench.sh - the VM side of `make vmbench` (busybox ash; scripts/vm.sh bench boots the VM
# and init.sh runs this with gthulhu.mode=bench). One boot measures every scheduler:
#
#   warm-up under EEVDF (not reported) | EEVDF | each sched_ext policy | EEVDF
#
# A sched_ext block starts build/gthulhu-lua --stats=1 POLICY, waits (<= 60 s: the verifier
# is slow under TCG) for state=enabled and ops=gthulhu_lua, runs the workloads, then SIGINT
# and waits for state=disabled. Every run is bounded (its own session, killed after
# VMBENCH_TIMEOUT s) and the whole thing has a time budget (VMBENCH_BUDGET): when the
# sched_ext blocks run late, their remaining runs are skipped (and said so) to keep time
# for the closing EEVDF block.
#
# Knobs (environment; init.sh maps gthulhu.bench_NAME=a,b on the kernel command line to
# VMBENCH_NAME="a b"; scripts/vm.sh bench passes the host's VMBENCH_* variables that way):
#   VMBENCH_SCHEDS     sched_ext blocks, in order (default "gthulhu simple"): a name is
#                      policies/NAME.lua, anything else a policy path under /g
#   VMBENCH_WORKLOADS  subset of: hackbench_pipe hackbench_sock wakelat reqlat storm batch
#                      pingpong pingpong2 perf_messaging perf_pipe stressng (default: all;
#                      perf_* need perf)
#   VMBENCH_RUNS       runs per workload per block (default 3; stressng: VMBENCH_STRESS_RUNS, 1)
#   VMBENCH_TIMEOUT    seconds one run may take before it is killed (default 30)
#   VMBENCH_BUDGET     seconds for the whole guest part (default 840); each sched_ext block
#                      gets an equal share of what the EEVDF blocks leave
#   VMBENCH_WARMUP     workloads of the warm-up block (default "hackbench_pipe hackbench_sock batch")
#   VMBENCH_HOST_ARGS  extra options for gthulhu-lua (e.g. "-c config/x.yaml")
#   VMBENCH_STRESS_SECS  length of the stress-ng run (default 10)
#   VMBENCH_TEST_PANIC=1 panic the guest kernel (sysrq c) after the first EEVDF block unless
#                      VMBENCH_RETRY is set: the test of scripts/vmbench.sh's crash retry
#   VMBENCH_RETRY      set by scripts/vmbench.sh in the boot that reruns a crashed one
#
# Output, on the console (scripts/vmbench.sh parses it into build/vmbench/results.*):
#   BENCH-BLOCK-BEGIN block=B sched=S
#   BENCHV block=B sched=S wl=W run=R metric=M value=V better=lower|higher [censored=1]
#   BENCHF block=B sched=S wl=W run=R rc=N timeout=0|1 skipped=0|1 msg="..."
#   BENCHH block=B sched=S wl=W phase=begin|end host_cpu_ms=N <the host's last stats keys>
#   BENCHA block=B sched=S wl=W attached=0|1 state=... ops=... seq=N
#   BENCHS block=B sched=S wl=stressng run=R stressor=NAME bogo_ops=N   (one per stressor)
#   BENCH-RESTART block=B sched=S before=W exit="..."   (re-attached after an ejection)
#   BENCH-BLOCK-END block=B sched=S attached=0|1 attach_ms=N host_cpu_ms=N host_rc=N
#                   secs=N restarts=N exit="the host's (first abnormal) exit: line"
#                   <the last host's last stats keys>
# "censored=1": the run hit its time limit; the value is the limit (the real figure is
# larger). Lines starting with "  |" are diagnostics.

# The helpers of the test scenarios (now_ms, attached, start_host, stop_host, ...).
GUEST_SH_LIB=1 . /g/tests/vm/guest.sh

SCHEDS=${VMBENCH_SCHEDS-gthulhu simple}
ALL_WL="hackbench_pipe hackbench_sock wakelat reqlat storm batch pingpong pingpong2 perf_messaging perf_pipe stressng"
WLS=${VMBENCH_WORKLOADS:-$ALL_WL}
RUNS=${VMBENCH_RUNS:-3}
STRESS_RUNS=${VMBENCH_STRESS_RUNS:-1}
TMO=${VMBENCH_TIMEOUT:-30}
BENCH_BUDGET=${VMBENCH_BUDGET:-840}
WARMUP=${VMBENCH_WARMUP-hackbench_pipe hackbench_sock batch}
STRESS_SECS=${VMBENCH_STRESS_SECS:-10}
# Sizes, calibrated so that one EEVDF run takes a few seconds in the 2-vCPU TCG VM.
HB_LOOPS=${VMBENCH_HB_LOOPS:-500}           # hackbench -p (pipes); -l 500 is the issue's figure
HB_SOCK_LOOPS=${VMBENCH_HB_SOCK_LOOPS:-300} # hackbench (sockets): slower per loop
STORM_N=${VMBENCH_STORM_N:-600}
BATCH_MLOOPS=${VMBENCH_BATCH_MLOOPS:-1500}
PP_SECS=${VMBENCH_PP_SECS:-3}
PM_LOOPS=${VMBENCH_PM_LOOPS:-100}
PP_LOOPS=${VMBENCH_PPIPE_LOOPS:-10000}
WAKE_SECS=${VMBENCH_WAKE_SECS:-5}
REQ_SECS=${VMBENCH_REQ_SECS:-5}
# start_host's own kill limit (BUDGET + 30 s) must outlast a whole block.
BUDGET=$BENCH_BUDGET
T0=$(now_ms)
T=/tmp/bench; rm -rf $T; mkdir -p $T

# Scenario helpers call these; in the bench a failure is reported, not asserted.
FAILS="" KV=""

# ---------------------------------------------------------------- running one bounded run
# bounded SECS OUT CMD...: CMD in its own session (so the whole process tree can be
# killed), output to OUT. Sets RC (137 when killed) and TIMEOUT (1 when the limit hit).
bounded() {
	local secs=$1 out=$2 pid wd
	shift 2
	setsid "$@" > $out 2>&1 &
	pid=$!
	# The watchdog has its own session too, so killing it takes its sleep with it.
	setsid sh -c "sleep $secs; kill -9 -$pid 2>/dev/null; touch $out.killed" > /dev/null 2>&1 &
	wd=$!
	rm -f $out.killed
	wait $pid; RC=$?
	kill -9 -$wd 2>/dev/null; wait $wd 2>/dev/null
	TIMEOUT=0; [ -e $out.killed ] && TIMEOUT=1
	rm -f $out.killed
}

emit() { # METRIC VALUE BETTER [EXTRA]
	echo "BENCHV block=$B sched=$S wl=$WL run=$R metric=$1 value=$2 better=$3${4:+ $4}"
}
efail() { # MSG
	echo "BENCHF block=$B sched=$S wl=$WL run=$R rc=$RC timeout=$TIMEOUT skipped=${SKIP:-0} msg=\"$(printf %s "$1" | tr '"\n' "' ")\""
	[ "${SKIP:-0}" = 1 ] || DIAG_LINES=8 diag $OUTF
}
# ok_or_fail: after a run; on a timeout a time metric is reported as censored at the limit.
# Returns 0 when the output should be parsed.
ran_ok() { # TIME_METRIC_NAME (or "")
	if [ $TIMEOUT = 1 ]; then
		efail "killed after ${TMO}s"
		[ -n "$1" ] && emit $1 $TMO lower censored=1
		return 1
	fi
	[ $RC = 0 ] || { efail "exit $RC"; return 1; }
	return 0
}
# val FILE KEY: a value from a WL line.
val() { grep -h '^WL ' $1 2>/dev/null | tail -n 1 | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1; }
us_to_s() { awk -v u="$1" 'BEGIN{printf "%.3f", u/1e6}'; }

# ---------------------------------------------------------------- workloads (one run each)
have() { command -v $1 > /dev/null 2>&1; }

run_hackbench() { # pipe|sock
	have hackbench || { RC=127 TIMEOUT=0; efail "hackbench (rt-tests) not in the image"; return; }
	if [ $1 = pipe ]; then bounded $TMO $OUTF hackbench -p -g 4 -l $HB_LOOPS
	else bounded $TMO $OUTF hackbench -g 4 -l $HB_SOCK_LOOPS; fi
	ran_ok time_s || return
	local t; t=$(sed -n 's/^Time: *\([0-9.]*\).*/\1/p' $OUTF | tail -n 1)
	[ -n "$t" ] && emit time_s $t lower || efail "no 'Time:' line"
}
wl_hackbench_pipe() { run_hackbench pipe; }
wl_hackbench_sock() { run_hackbench sock; }

wl_wakelat() {
	bounded $TMO $OUTF $W/wakelat --name wakelat -d $WAKE_SECS --threads 4 --hogs 4
	ran_ok "" || return
	local m v
	for m in p50_us p99_us p999_us max_us missed; do
		v=$(val $OUTF $m)
		[ -n "$v" ] && emit $m $v lower
	done
	[ -n "$(val $OUTF p99_us)" ] || efail "no WL line"
}

# Request/response: 2 message threads x 4 workers, 50 us bursts (tests/workloads/reqlat.c).
wl_reqlat() {
	bounded $TMO $OUTF $W/reqlat --name reqlat -d $REQ_SECS --msg 2 --workers 4 --burst-us 50
	ran_ok "" || return
	local m v
	for m in p50_us p99_us; do
		v=$(val $OUTF $m)
		[ -n "$v" ] && emit $m $v lower
	done
	v=$(val $OUTF rps); [ -n "$v" ] && emit rps $v higher
	[ -n "$(val $OUTF p99_us)" ] || efail "no WL line"
}

wl_storm() {
	bounded $TMO $OUTF $W/storm --name storm -n $STORM_N --exec /bin/true -d $TMO
	ran_ok time_s || return
	emit time_s $(us_to_s $(val $OUTF wall_us)) lower
}

wl_batch() {
	bounded $TMO $OUTF $W/batch --name batch -n $BATCH_MLOOPS -d $TMO
	ran_ok time_s || return
	emit time_s $(us_to_s $(val $OUTF wall_us)) lower
}

wl_pingpong() {
	bounded $TMO $OUTF $W/pingpong --name pingpong -n 100000000 -d $PP_SECS
	ran_ok "" || return
	emit rate_per_s $(val $OUTF rate_per_s) higher
}
# Two pairs at once: 4 processes on the 2 vCPUs (rate summed over the pairs).
wl_pingpong2() {
	bounded $TMO $OUTF $W/pingpong --name pingpong2 --pairs 2 -n 100000000 -d $PP_SECS
	ran_ok "" || return
	emit rate_per_s $(val $OUTF rate_per_s) higher
}

wl_perf_messaging() {
	have perf || { RC=127 TIMEOUT=0; efail "perf not in the image"; return; }
	bounded $TMO $OUTF perf bench sched messaging -g 4 -l $PM_LOOPS
	ran_ok time_s || return
	local t; t=$(sed -n 's/.*Total time: *\([0-9.]*\).*/\1/p' $OUTF | tail -n 1)
	[ -n "$t" ] && emit time_s $t lower || efail "no 'Total time:' line"
}

wl_perf_pipe() {
	have perf || { RC=127 TIMEOUT=0; efail "perf not in the image"; return; }
	bounded $TMO $OUTF perf bench sched pipe -l $PP_LOOPS
	ran_ok "" || return
	local o; o=$(sed -n 's/^ *\([0-9]*\) *ops\/sec.*/\1/p' $OUTF | tail -n 1)
	[ -n "$o" ] && emit ops_per_s $o higher || efail "no 'ops/sec' line"
}

# stress-ng's scheduler class, every stressor at once; exit 0, or 3/4 (some stressors could
# not start or are not implemented here: stress-ng(1) EXIT STATUS) count as completed.
wl_stressng() {
	have stress-ng || { RC=127 TIMEOUT=0; efail "stress-ng not in the image"; return; }
	rm -f $T/stress.yaml
	bounded $((STRESS_SECS + TMO)) $OUTF stress-ng --class scheduler --all 1 -t ${STRESS_SECS}s \
		--temp-path /tmp --metrics --yaml $T/stress.yaml
	kill_comm 'stress-ng*'   # stressors that left the session (e.g. the session stressor)
	local done=0
	case $RC in 0|3|4) [ $TIMEOUT = 0 ] && done=1 ;; esac
	emit completed $done higher rc=$RC
	[ $done = 1 ] || efail "stress-ng exit $RC (0/3/4 = completed)"
	local ops; ops=$(awk '/bogo-ops:/{s+=$2; n++} END{if (n) printf "%d", s}' $T/stress.yaml 2>/dev/null)
	[ -n "$ops" ] && emit bogo_ops $ops higher stressors=$(grep -c 'stressor:' $T/stress.yaml)
	# Per stressor, for the report's geometric mean of ratios (the sum is dominated by the
	# few stressors with cheap bogo-ops).
	awk -v pre="BENCHS block=$B sched=$S wl=$WL run=$R" '/- stressor:/{st=$3} /bogo-ops:/{if (st != "") print pre " stressor=" st " bogo_ops=" $2; st=""}' $T/stress.yaml 2>/dev/null
}

# ---------------------------------------------------------------- host figures
# read_hcpu: HCPU = utime + stime of the host in ms (USER_HZ is 100 on x86); keeps the
# last value read once the host is gone (the block's figure is then a lower bound).
read_hcpu() {
	local v
	[ -n "$HOST_PID" ] || return 0
	v=$(sed 's/^.*) //' /proc/$HOST_PID/stat 2>/dev/null | awk '{print ($12 + $13) * 10}')
	[ -n "$v" ] && HCPU=$v
}
last_stats() { grep '^stats:' $T/host.out 2>/dev/null | tail -n 1 | cut -d' ' -f2-; }
enable_seq() { cat $SCX/enable_seq 2>/dev/null || echo -1; }
hstat() { # PHASE
	[ $SX = 1 ] || return 0
	read_hcpu
	echo "BENCHH block=$B sched=$S wl=$WL phase=$1 host_cpu_ms=$HCPU $(last_stats)"
}
attach_check() {
	[ $SX = 1 ] || return 0
	local a=0
	attached && alive $HOST_PID && [ "$(enable_seq)" = "$SEQ" ] && a=1
	[ $a = 1 ] || BLOCK_ATT=0
	echo "BENCHA block=$B sched=$S wl=$WL attached=$a state=$(scx_state) ops=$(scx_ops) seq=$(enable_seq)"
}

# ---------------------------------------------------------------- blocks
policy_path() {
	case $1 in
	*/*|*.lua) echo $1 ;;
	*) echo policies/$1.lua ;;
	esac
}

# host_up: start the scheduler of block $S and wait (<= 60 s) until it is attached.
# Sets SEQ (enable_seq, to see a detach/re-attach later) and ATT_MS. Returns 1 if it did
# not attach (FAILS says why).
host_up() {
	local ta=$(now_ms)
	FAILS="" KV="" HCPU=-1
	# NAME@b: the same policy run by the second binary (GTHULHU_BIN_B), for A/B
	# comparisons of two builds in one boot. NAME+CFG: with -c tests/vm/bench-CFG.yaml
	# (A/B of config settings).
	local pol=$S cfgarg=""
	HOST=$G/build/gthulhu-lua
	case $pol in *@b) HOST=$G/build/gthulhu-lua-b; pol=${pol%@b} ;; esac
	case $pol in *+*) cfgarg="-c $G/tests/vm/bench-${pol#*+}.yaml"; pol=${pol%%+*} ;; esac
	start_host $(policy_path $pol) $cfgarg $VMBENCH_HOST_ARGS
	if [ -z "$HOST_PID" ] || ! wait_attach 60; then
		[ -n "$HOST_PID" ] && { kill -9 $HOST_PID; wait $HOST_PID; }
		HOST_PID=""
		DIAG_LINES=20 diag $T/host.err
		wait_state disabled 10
		return 1
	fi
	ATT_MS=$(( $(now_ms) - ta ))
	SEQ=$(enable_seq)
	# A first stats line, so the first workload has a "begin" figure.
	wait_stats 1 5
	return 0
}
# host_down: SIGINT and wait for the detach (or reap a host that already exited). Adds
# its CPU time to CPU_SUM, sets HOST_RC and HOST_EXIT (its exit: line), keeps its output
# as host.B.N.{out,err}.
host_down() {
	read_hcpu
	[ "$HCPU" -ge 0 ] && CPU_SUM=$((CPU_SUM + HCPU))
	LAST_ST=$(last_stats)
	FAILS="" KV=""
	if alive $HOST_PID; then
		stop_host   # SIGINT, waits (<= 15 s) for the exit, then for state=disabled
		HOST_RC=$(echo "$KV" | tr ' ' '\n' | sed -n 's/^host_rc=//p' | tail -n 1)
		[ -n "$FAILS" ] && DIAG_LINES=10 diag $T/host.err
	else
		wait $HOST_PID; HOST_RC=$?
		echo "  ! gthulhu-lua had exited (rc=$HOST_RC) during block $B ($S)"
		wait_state disabled 10
	fi
	HOST_PID="" KV=""
	HOST_EXIT=$(grep -h '^gthulhu-lua: exit:' $T/host.out $T/host.err | tail -n 1 | cut -c 20-220 | tr '"' "'")
	N_HOST=$((N_HOST + 1))
	mv $T/host.out $T/host.$B.$N_HOST.out; mv $T/host.err $T/host.$B.$N_HOST.err
}

# block B SCHED WORKLOADS RUNS
# If the scheduler is ejected (or its host exits) during a workload, that workload is
# marked detached and the scheduler is started again before the next one, so every
# workload is measured under it; the block then reports attached=0, restarts=N and the
# first abnormal exit line.
block() {
	B=$1 S=$2
	local wls=$3 runs=$4 t0=$(now_ms) n att_ms=-1 restarts=0 first_exit="" rc=-1
	SX=1; case $S in eevdf|warmup) SX=0 ;; esac
	BLOCK_ATT=1 HOST_PID="" FAILS="" HCPU=-1 CPU_SUM=0 N_HOST=0 LAST_ST=""
	echo "BENCH-BLOCK-BEGIN block=$B sched=$S uptime=$(cut -d' ' -f1 /proc/uptime)"
	if [ $SX = 1 ]; then
		if ! host_up; then
			echo "BENCH-BLOCK-END block=$B sched=$S attached=0 attach_ms=-1 host_cpu_ms=-1 host_rc=-1 secs=0 restarts=0 exit=\"not attached: $(printf %s "$FAILS" | tr '"\n' "' ")\""
			return
		fi
		att_ms=$ATT_MS
	fi
	for WL in $wls; do
		type wl_$WL > /dev/null 2>&1 || { R=0 RC=2 TIMEOUT=0; efail "unknown workload (known: $ALL_WL)"; continue; }
		n=$runs; [ $WL = stressng ] && [ $S != warmup ] && n=$STRESS_RUNS
		if [ $SX = 1 ] && { [ -z "$HOST_PID" ] || ! alive $HOST_PID || ! attached || [ "$(enable_seq)" != "$SEQ" ]; }; then
			[ -n "$HOST_PID" ] && host_down
			[ -n "$first_exit" ] || first_exit=$HOST_EXIT
			restarts=$((restarts + 1))
			echo "BENCH-RESTART block=$B sched=$S before=$WL exit=\"$HOST_EXIT\""
			if ! host_up; then
				R=0 RC=-1 TIMEOUT=0 SKIP=1; efail "the scheduler did not attach again: $FAILS"; SKIP=0
				continue
			fi
		fi
		hstat begin
		attach_check
		R=1
		while [ $R -le $n ]; do
			OUTF=$T/$B.$WL.$R.out
			SKIP=0
			if [ $SX = 1 ] && [ "$(now_ms)" -ge "$SX_DEADLINE" ]; then
				SKIP=1 RC=-1 TIMEOUT=0; efail "time budget: skipped to keep time for the last EEVDF block"
			else
				wl_$WL
			fi
			R=$((R + 1))
		done
		hstat end
		attach_check
	done
	if [ $SX = 1 ]; then
		[ -n "$HOST_PID" ] && host_down
		[ -n "$first_exit" ] || first_exit=$HOST_EXIT
		echo "BENCH-BLOCK-END block=$B sched=$S attached=$BLOCK_ATT attach_ms=$att_ms host_cpu_ms=$CPU_SUM host_rc=${HOST_RC:--1} secs=$(( ($(now_ms) - t0) / 1000 )) restarts=$restarts exit=\"$first_exit\" $LAST_ST"
	else
		echo "BENCH-BLOCK-END block=$B sched=$S attached=1 attach_ms=-1 host_cpu_ms=-1 host_rc=-1 secs=$(( ($(now_ms) - t0) / 1000 )) restarts=0"
	fi
}

# The guest's kernel messages of sched_ext (ejections) are on the console already
# (printk level 4). Print the setup so the log says what ran.
echo "BENCH-CONFIG scheds=\"$SCHEDS\" workloads=\"$WLS\" runs=$RUNS timeout=$TMO budget=$BENCH_BUDGET warmup=\"$WARMUP\" cpus=$NCPU kernel=$(uname -r) hb_loops=$HB_LOOPS hb_sock_loops=$HB_SOCK_LOOPS storm_n=$STORM_N batch_mloops=$BATCH_MLOOPS pp_secs=$PP_SECS req_secs=$REQ_SECS perf=$(have perf && echo 1 || echo 0) stress_ng=$(have stress-ng && echo 1 || echo 0) hackbench=$(have hackbench && echo 1 || echo 0)"
SX_DEADLINE=999999999
b=0
if [ -n "$WARMUP" ]; then block $b warmup "$WARMUP" 1; b=$((b + 1)); fi
te=$(now_ms)
block $b eevdf "$WLS" $RUNS; b=$((b + 1))
if [ -n "$VMBENCH_TEST_PANIC" ] && [ -z "$VMBENCH_RETRY" ]; then
	echo "BENCH-TEST-PANIC: panicking the guest kernel on purpose (VMBENCH_TEST_PANIC)"
	sync; echo c > /proc/sysrq-trigger; sleep 5
fi
eevdf_ms=$(( $(now_ms) - te ))
# Keep 1.25x the first EEVDF block's time (and 30 s for detaching) for the last one (seen:
# the last EEVDF block took 0.85-1.2x the first); the sched_ext blocks share the rest:
# each may use an equal part of what is left when it starts (time a fast block leaves
# goes to the later ones).
SX_END=$(( T0 + BENCH_BUDGET * 1000 - eevdf_ms * 5 / 4 - 30000 ))
left=$(echo $SCHEDS | wc -w)
for s in $SCHEDS; do
	now=$(now_ms)
	SX_DEADLINE=$(( now + (SX_END - now) / left ))
	block $b $s "$WLS" $RUNS; b=$((b + 1)) left=$((left - 1))
done
block $b eevdf "$WLS" $RUNS
echo "BENCH-DONE secs=$(( ($(now_ms) - T0) / 1000 ))"
