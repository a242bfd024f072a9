#!/bin/sh
# guest.sh - the VM side of the gthulhu-lua end-to-end tests (busybox ash, runs in the VM
# that scripts/vm.sh boots; /g holds the repository's build/, policies/, config/, tests/vm/
# and the workloads in /g/bin).
#
#   guest.sh test SCENARIO...   run scenarios, each in its own session with a time budget
#   guest.sh one SCENARIO       run one scenario (used by `test`)
#   guest.sh run                demo: the scheduler with --stats=1 under a mixed load, ~30 s
#
# Every scenario asserts and prints exactly one line
#   RESULT <name> PASS|FAIL key=value ... [reason="why it failed"]
# on the console. Lines starting with "  |" are diagnostics (host output, workload output).
# Failures name their cause: a missing binary, a scheduler that did not attach, a workload
# that failed, a counter that did not move, a timeout.

G=/g
W=$G/bin
HOST=$G/build/gthulhu-lua
SCX=/sys/kernel/sched_ext
OPS=gthulhu_lua
NCPU=$(nproc)
BUDGET=${SCENARIO_BUDGET:-85}     # seconds a scenario may take before it is killed

# ---------------------------------------------------------------- helpers
now_ms() { # monotonic ms (uptime has 10 ms resolution, good enough here)
	local u; read u _ < /proc/uptime; echo $(( ${u%.*} * 1000 + 1${u#*.} * 10 - 1000 ))
}
msleep() { usleep $(( $1 * 1000 )); }
scx_state() { cat $SCX/state 2>/dev/null || echo none; }
scx_ops() { cat $SCX/root/ops 2>/dev/null || echo none; }
attached() { [ "$(scx_state)" = enabled ] && [ "$(scx_ops)" = "$OPS" ]; }
# alive PID: the process exists and is not a zombie.
alive() {
	local s
	s=$(sed 's/^.*) //' /proc/$1/stat 2>/dev/null) || return 1
	[ -n "$s" ] && [ "${s%% *}" != Z ] && [ "${s%% *}" != X ]
}
diag() { sed 's/^/  | /' "$@" 2>/dev/null | tail -n ${DIAG_LINES:-15}; }
fail() { FAILS="${FAILS:+$FAILS; }$*"; echo "  ! $*"; }
kv() { KV="$KV $1=$2"; }
log() { echo "  - $*"; }

result() {
	local name=$1
	if [ -z "$FAILS" ]; then
		echo "RESULT $name PASS$KV"
	else
		echo "RESULT $name FAIL$KV reason=\"$(printf %s "$FAILS" | tr '"\n' "' ")\""
	fi
}

# Stats lines of the host: "stats: key=value ...". sget KEY [N]: value in the last line, or
# in line N (1-based) when given. nstats: how many lines so far.
# (grep -c prints 0 and fails when nothing matches: no "|| echo 0", that printed "0 0")
nstats() { local n; n=$(grep -c '^stats:' $T/host.out 2>/dev/null); echo "${n:-0}"; }
sget() {
	local line
	if [ -n "$2" ]; then line=$(grep '^stats:' $T/host.out | sed -n "$2p")
	else line=$(grep '^stats:' $T/host.out | tail -n 1); fi
	echo "$line" | tr ' ' '\n' | sed -n "s/^$1=//p" | head -n 1 | grep -E '^[0-9]+$' || echo -1
}
# wait_stats N SECS: wait until there are at least N stats lines (host must stay alive).
wait_stats() {
	local end=$(( $(now_ms) + $2 * 1000 ))
	while [ "$(nstats)" -lt "$1" ]; do
		alive $HOST_PID || return 1
		[ "$(now_ms)" -lt $end ] || return 1
		msleep 100
	done
}

# start_host POLICY [OPTIONS...]: run the scheduler with --stats=1 in the background.
start_host() {
	local pol=$1; shift
	HOST_PID=""
	if [ ! -x "$HOST" ]; then
		fail "gthulhu-lua binary missing from the VM image (build/gthulhu-lua was not built: run make first)"
		return 1
	fi
	if [ ! -d $SCX ]; then
		fail "guest kernel has no $SCX (not a sched_ext kernel: test setup problem)"
		return 1
	fi
	if [ "$(scx_state)" != disabled ]; then
		fail "a sched_ext scheduler is already loaded before start (state=$(scx_state) ops=$(scx_ops)): previous scenario did not clean up"
		return 1
	fi
	# busybox timeout (and env) exec the program in their own pid, so HOST_PID is the
	# scheduler's pid.
	# HOST_ENV: extra NAME=VALUE words for the scheduler's environment (fault injection).
	env $HOST_ENV timeout -s KILL $(( BUDGET + 30 )) $HOST --stats=1 "$@" $pol > $T/host.out 2> $T/host.err &
	HOST_PID=$!
	echo $HOST_PID > $T/host.pid
	log "started gthulhu-lua $* $pol (pid $HOST_PID)"
}

# wait_attach SECS: wait for state=enabled and ops=gthulhu_lua; fail with the host's
# output when it exits first or the time runs out.
wait_attach() {
	local t0=$(now_ms) end=$(( $(now_ms) + $1 * 1000 ))
	while ! attached; do
		if ! alive $HOST_PID; then
			wait $HOST_PID; local rc=$?
			local why; why=$(grep -h 'gthulhu-lua: error:' $T/host.err | tail -n 1 | cut -c1-200)
			fail "gthulhu-lua exited (rc=$rc) before attaching${why:+: $why}"
			return 1
		fi
		if [ "$(now_ms)" -ge $end ]; then
			fail "scheduler not attached after ${1}s (state=$(scx_state) ops=$(scx_ops))"
			diag $T/host.err
			return 1
		fi
		msleep 100
	done
	kv attach_ms $(( $(now_ms) - t0 ))
	log "attached after $(( $(now_ms) - t0 )) ms"
}

# stop_host: SIGINT, then assert a clean detach: exit 0 within 15 s, the exit line printed,
# state back to disabled.
stop_host() {
	[ -n "$HOST_PID" ] || return 1
	if ! alive $HOST_PID; then
		wait $HOST_PID; local rc=$?
		fail "gthulhu-lua had already exited (rc=$rc) before SIGINT"
		diag $T/host.err; HOST_PID=""; return 1
	fi
	kill -INT $HOST_PID
	local end=$(( $(now_ms) + 15000 ))
	while alive $HOST_PID && [ "$(now_ms)" -lt $end ]; do msleep 100; done
	if alive $HOST_PID; then
		fail "gthulhu-lua still running 15 s after SIGINT (killed)"
		kill -9 $HOST_PID
	fi
	wait $HOST_PID; local rc=$?
	HOST_PID=""
	kv host_rc $rc
	[ $rc -eq 0 ] || { fail "gthulhu-lua exited $rc after SIGINT (expected 0)"; diag $T/host.err; }
	local exitline
	exitline=$(grep -h '^gthulhu-lua: exit:' $T/host.out $T/host.err | tail -n 1)
	if [ -n "$exitline" ]; then log "$exitline"
	else fail "no 'gthulhu-lua: exit:' line after SIGINT"; diag $T/host.err; fi
	wait_state disabled 5 || fail "state is $(scx_state), not disabled, 5 s after the host exited"
}

# wait_state STATE SECS
wait_state() {
	local end=$(( $(now_ms) + $2 * 1000 ))
	while [ "$(scx_state)" != "$1" ]; do
		[ "$(now_ms)" -lt $end ] || return 1
		msleep 50
	done
}

# Workloads. wl TAG PROG ARGS...: start in the background, bounded by timeout -s KILL.
WL_PIDS="" WL_TAGS=""
wl() {
	local tag=$1 prog=$2; shift 2
	timeout -s KILL ${WL_LIMIT:-45} $W/$prog "$@" > $T/wl.$tag.out 2>&1 &
	WL_PIDS="$WL_PIDS $!"; WL_TAGS="$WL_TAGS $tag"
}
# wl_wait: reap every workload, check exit 0 and a WL result line; sets WL_FAILED.
wl_wait() {
	local i=1 pid tag rc
	WL_FAILED=0
	for pid in $WL_PIDS; do
		tag=$(echo $WL_TAGS | cut -d' ' -f$i); i=$((i + 1))
		wait $pid; rc=$?
		if [ $rc -ne 0 ] || ! grep -q '^WL ' $T/wl.$tag.out; then
			WL_FAILED=$((WL_FAILED + 1))
			[ $rc -eq 137 ] && fail "workload $tag killed after ${WL_LIMIT:-45}s (did not finish)" ||
				fail "workload $tag failed (exit $rc)"
			diag $T/wl.$tag.out
		fi
	done
	WL_PIDS="" WL_TAGS=""
	kv workloads_failed $WL_FAILED
}
# wlv TAG KEY: a value from a workload's WL line.
wlv() { grep -h '^WL ' $T/wl.$1.out 2>/dev/null | tail -n 1 | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1; }

# The mixed load of the attach scenarios: hogs, sleepers, ping-pong, a process storm,
# pinned hogs, nice -10 / +10 hogs. D seconds for the timed ones.
mixed_load() {
	local d=$1 last=$((NCPU - 1))
	wl hog1 hog --name hog1 -d $d
	wl hog2 hog --name hog2 -d $d
	wl sleep1 sleeper --name sleep1 -d $d
	wl sleep2 sleeper --name sleep2 -d $d --period-us 2000
	wl pingpong pingpong --name pingpong -n 1000 -d 12
	wl storm storm --name storm -n 250 --exec /bin/true
	wl pin0 pinned --name pin0 --cpus 0 -d $d
	[ $NCPU -ge 3 ] && wl pinhi pinned --name pinhi --cpus 1-$last -d $d
	wl nicem10 hog --name nicem10 --nice -10 -d $d
	wl nicep10 hog --name nicep10 --nice 10 -d $d
}
mixed_figures() {
	kv sleep1_p99_us "$(wlv sleep1 p99_us)"
	kv pingpong_rate "$(wlv pingpong rate_per_s)"
	kv storm_ok "$(wlv storm ok)"
	local a b
	a=$(wlv nicem10 cpu_us); b=$(wlv nicep10 cpu_us)
	[ -n "$a" ] && [ -n "$b" ] && [ "$b" -gt 0 ] && kv nice_m10_p10_x100 $(( a * 100 / b ))
	local t o
	for t in pin0 pinhi; do
		o=$(wlv $t outside)
		[ -n "$o" ] && [ "$o" != 0 ] && fail "pinned task $t ran outside its CPU list (seen $o times)"
	done
}

# still_attached WHAT: assert host alive and scheduler attached.
still_attached() {
	alive $HOST_PID || { fail "gthulhu-lua died $1"; diag $T/host.err; return 1; }
	attached || { fail "scheduler no longer attached $1 (state=$(scx_state) ops=$(scx_ops)): watchdog or error exit"; diag $T/host.err; dmesg | grep -i sched_ext | tail -n 5 | sed 's/^/  | /'; return 1; }
}

# ---------------------------------------------------------------- scenarios
attach_common() { # POLICY
	start_host $1 || return
	wait_attach 60 || return
	wait_stats 2 15 || { fail "no stats lines from --stats=1 within 15 s"; diag $T/host.out $T/host.err; return; }
	local t0 s0 t1 s1 t2 s2
	t0=$(now_ms); s0=$(sget nr_user_dispatches)
	sleep 2
	t1=$(now_ms); s1=$(sget nr_user_dispatches)
	mixed_load 6
	sleep 2
	# Hot reload under load: SIGHUP (gthulhu), or saving the policy file (simple).
	local r0; r0=$(grep -c 'reloaded' $T/host.err)
	case $1 in
	*gthulhu.lua) kill -HUP $HOST_PID ;;
	*) touch $1 ;;
	esac
	sleep 2
	t2=$(now_ms); s2=$(sget nr_user_dispatches)
	still_attached "under load"
	local r1; r1=$(grep -c 'reloaded' $T/host.err)
	kv reloads $(( r1 - r0 ))
	[ "$r1" -gt "$r0" ] || fail "the policy was not reloaded ($(grep -E 'reload' $T/host.err | tail -n 1))"
	wl_wait
	mixed_figures
	local idle_rate=$(( (s1 - s0) * 1000 / (t1 - t0 + 1) )) load_rate=$(( (s2 - s1) * 1000 / (t2 - t1 + 1) ))
	kv user_dispatches_before $s1; kv user_dispatches_during $s2
	kv idle_disp_per_s $idle_rate; kv load_disp_per_s $load_rate
	[ "$s1" -gt 0 ] || [ "$s2" -gt 0 ] || fail "nr_user_dispatches is $s2: the policy never dispatched"
	[ "$s2" -gt "$s1" ] || fail "nr_user_dispatches did not grow under load ($s1 -> $s2)"
	[ "$load_rate" -gt "$idle_rate" ] || fail "dispatch rate under load ($load_rate/s) not above idle ($idle_rate/s)"
	kv policy_errors "$(sget nr_policy_errors)"
	still_attached "after the load"
	stop_host
}

sc_attach_gthulhu() { attach_common policies/gthulhu.lua; }
sc_attach_simple() { attach_common policies/simple.lua; }

sc_weights() {
	start_host policies/gthulhu.lua || return
	wait_attach 60 || return
	local cpu=$((NCPU - 1))
	wl w0 hog --name w_nice0 --cpus $cpu -d 10
	wl w5 hog --name w_nice5 --cpus $cpu --nice 5 -d 10
	wl_wait
	still_attached "after the weights run"
	local a b
	a=$(wlv w0 cpu_us); b=$(wlv w5 cpu_us)
	kv cpu0_us "$a"; kv cpu5_us "$b"
	if [ -n "$a" ] && [ -n "$b" ] && [ "$b" -gt 0 ]; then
		local r=$(( a * 1000 / b ))
		kv ratio_x1000 $r; kv expect_x1000 3057
		# 1024/335 = 3.057; +-15% = 2.598 .. 3.515
		[ $r -ge 2598 ] && [ $r -le 3515 ] || fail "CPU time ratio nice0/nice5 = $r/1000, expected 3057/1000 +-15% (2598..3515)"
	else
		fail "no CPU time figures from the hogs"
	fi
	stop_host
}

sc_priority() {
	start_host policies/gthulhu.lua -c $G/tests/vm/prio.yaml || return
	wait_attach 60 || return
	# Everything on one CPU: 3 hogs and two identical sleepers, lat_prio (priority
	# strategy) and lat_norm. The host runs on the other CPUs. A priority decision goes
	# to the head of that CPU's local DSQ and preempts the hog; a normal one waits for the
	# hog's slice to end. (Spreading hogs over every vCPU instead measures QEMU's
	# single-threaded round robin between vCPUs, not the scheduler.)
	local cpu=1 i=1
	while [ $i -le 3 ]; do wl ph$i hog --name phog$i --cpus $cpu -d 10; i=$((i + 1)); done
	# --delay: set the name, then wait before measuring, so the strategy's regex resolves.
	wl lprio sleeper --name lat_prio --cpus $cpu -d 7 --delay 2
	wl lnorm sleeper --name lat_norm --cpus $cpu -d 7 --delay 2
	wl_wait
	still_attached "after the priority run"
	local pp pn mp mn
	pp=$(wlv lprio p99_us); pn=$(wlv lnorm p99_us); mp=$(wlv lprio mean_us); mn=$(wlv lnorm mean_us)
	kv prio_mean_us "$mp"; kv norm_mean_us "$mn"; kv prio_p99_us "$pp"; kv norm_p99_us "$pn"
	kv prio_count "$(wlv lprio count)"; kv norm_count "$(wlv lnorm count)"
	if [ -n "$mp" ] && [ -n "$mn" ]; then
		# The mean over ~1000 wakeups each; p99 alone is too noisy under emulation.
		[ "$mp" -lt "$mn" ] || fail "lat_prio mean ${mp}us not below lat_norm mean ${mn}us: priority strategy had no effect"
	else
		fail "no latency figures from the sleepers"
	fi
	stop_host
}

sc_crash() {
	start_host policies/gthulhu.lua || return
	wait_attach 60 || return
	local i=1
	while [ $i -le $NCPU ]; do wl ch$i hog --name chog$i -d 8; i=$((i + 1)); done
	wl csleep sleeper --name csleep -d 8
	wl cstorm storm --name cstorm -n 200 --exec /bin/true
	sleep 2
	still_attached "before the kill" || { wl_wait; return; }
	# scxwatch runs SCHED_FIFO (never handed to sched_ext), sends the SIGKILL and times
	# the state change itself, so the figure is the kernel's, not how long a shell
	# waited for a CPU under the dying scheduler and the load.
	$W/scxwatch --name scxwatch --pid $HOST_PID --signal 9 --until disabled --timeout-ms 5000 > $T/scxwatch.out 2>&1
	local dt; dt=$(sed -n 's/.* ms=\([0-9]*\).*/\1/p' $T/scxwatch.out)
	if grep -q 'reached=1' $T/scxwatch.out; then
		kv disable_ms $dt
		[ "$dt" -le 1000 ] || fail "state took ${dt} ms to become disabled after kill -9 (limit 1000 ms)"
	else
		fail "state still $(scx_state) 5 s after kill -9 of the host ($(cat $T/scxwatch.out))"
	fi
	wait $HOST_PID; kv host_rc $?
	HOST_PID=""
	wl_wait
	kv csleep_p99_us "$(wlv csleep p99_us)"
}

sc_stall() {
	start_host policies/gthulhu.lua || return
	wait_attach 60 || return
	wait_stats 2 15 || { fail "no stats lines within 15 s"; return; }
	local i=1
	while [ $i -le $NCPU ]; do wl sh$i hog --name shog$i -d 12; i=$((i + 1)); done
	wl ssleep sleeper --name ssleep -d 12
	wl tick progress --name ticker --file $T/progress -d 12
	sleep 2
	still_attached "before SIGSTOP" || { wl_wait; return; }
	local pre=$(sget nr_user_dispatches) p0 p1 bad=0 n=0 t0
	p0=$(cat $T/progress 2>/dev/null)
	kill -STOP $HOST_PID
	t0=$(now_ms)
	while [ $(( $(now_ms) - t0 )) -lt 3000 ]; do
		n=$((n + 1))
		attached || { bad=$((bad + 1)); [ $bad -eq 1 ] && log "not attached while stopped: state=$(scx_state) ops=$(scx_ops)"; }
		msleep 200
	done
	p1=$(cat $T/progress 2>/dev/null)
	local lines=$(nstats)
	kill -CONT $HOST_PID
	kv stop_checks $n; kv detached_checks $bad
	[ $bad -eq 0 ] || fail "scheduler not attached in $bad of $n checks during the 3 s stop"
	p0=$(echo "${p0:-0}" | sed 's/^0*//'); p1=$(echo "${p1:-0}" | sed 's/^0*//')
	kv ticks_during_stop $(( ${p1:-0} - ${p0:-0} ))
	[ "${p1:-0}" -gt "${p0:-0}" ] || fail "progress ticker did not advance while the host was stopped (${p0:-0} -> ${p1:-0}): tasks stranded"
	if wait_stats $((lines + 3)) 15; then
		local a b
		a=$(sget nr_user_dispatches $((lines + 1))); b=$(sget nr_user_dispatches)
		kv disp_before_stop $pre; kv disp_first_after $a; kv disp_last_after $b
		[ "$b" -gt "$a" ] || fail "nr_user_dispatches did not grow after SIGCONT ($a -> $b)"
	else
		fail "fewer than 3 stats lines within 15 s after SIGCONT"
		diag $T/host.err
	fi
	local st=$(sget nr_host_stalls)
	kv host_stalls $st; kv rescued "$(sget nr_rescued)"
	[ "$st" -gt 0 ] || fail "nr_host_stalls=$st after a 3 s stop (expected > 0)"
	wl_wait
	still_attached "after the stall"
	stop_host
}

sc_policy_failure() {
	start_host $G/tests/vm/flaky.lua || return
	wait_attach 60 || return
	wait_stats 1 15 || { fail "no stats lines within 15 s"; return; }
	local s0=$(sget nr_user_dispatches)
	wl fhog1 hog --name fhog1 -d 6
	wl fhog2 hog --name fhog2 -d 6
	wl fsleep sleeper --name fsleep -d 6
	wl fping pingpong --name fping -n 1000 -d 12
	wl fstorm storm --name fstorm -n 200 --exec /bin/true
	sleep 3
	still_attached "under load with the flaky policy"
	wl_wait
	sleep 1
	still_attached "after the load with the flaky policy"
	local e=$(sget nr_policy_errors) fb=$(sget nr_policy_fallbacks) st=$(sget nr_host_stalls) s1=$(sget nr_user_dispatches)
	kv policy_errors $e; kv policy_fallbacks $fb; kv host_stalls $st; kv user_dispatches $s1
	[ "$e" -gt 0 ] || fail "nr_policy_errors=$e: the flaky policy's errors were not counted"
	[ "$st" -eq 0 ] || fail "nr_host_stalls=$st: the host stalled while the policy was failing"
	[ "$s1" -gt "$s0" ] || fail "nr_user_dispatches did not grow ($s0 -> $s1)"
	stop_host
}

# hotplug: taking a CPU offline and back makes the kernel unregister the scheduler with an
# exit code that asks for a restart; the host must attach again by itself, both times.
sc_hotplug() {
	local cpu=$((NCPU - 1)) f
	f=/sys/devices/system/cpu/cpu$cpu/online
	[ -w $f ] || { fail "cpu$cpu cannot be taken offline here ($f not writable)"; return; }
	start_host policies/gthulhu.lua || return
	wait_attach 60 || return
	wl hhog hog --name hhog -d 8
	local step n0 n1
	for step in 0 1; do
		n0=$(grep -c 'asked for a restart' $T/host.err)
		echo $step > $f || { fail "writing $step to $f failed"; break; }
		local end=$(( $(now_ms) + 20000 ))
		while [ "$(now_ms)" -lt $end ]; do
			n1=$(grep -c 'asked for a restart' $T/host.err)
			[ "$n1" -gt "$n0" ] && attached && break
			alive $HOST_PID || break
			msleep 200
		done
		n1=$(grep -c 'asked for a restart' $T/host.err)
		[ "$n1" -gt "$n0" ] || fail "cpu$cpu online=$step: the host did not restart ($(grep 'exit:' $T/host.err | tail -n 1))"
		attached || { fail "cpu$cpu online=$step: not attached again (state=$(scx_state))"; break; }
	done
	[ "$(cat $f)" = 1 ] || echo 1 > $f
	kv restarts "$(grep -c 'asked for a restart' $T/host.err)"
	kv exit_code "$(grep 'exit:' $T/host.err | head -n 1 | sed -n 's/.*code=\([0-9-]*\).*/\1/p')"
	wl_wait
	still_attached "after the CPU came back"
	stop_host
}

# watchdog: a broken BPF side, injected on purpose (GTHULHU_FAULT=starve-host: the host's
# threads are never dispatched). The last line of defence must hold and the failure must
# be reported, not hang: the kernel's watchdog ejects the scheduler, the host prints the
# exit info and exits 9 (EXIT_SCX_ERROR), the workload completes on the default scheduler.
sc_watchdog() {
	HOST_ENV=GTHULHU_FAULT=starve-host start_host policies/gthulhu.lua -c $G/tests/vm/watchdog.yaml || { HOST_ENV=; return; }
	HOST_ENV=
	wait_attach 60 || return
	wl whog1 hog --name whog1 -d 6
	wl wsleep sleeper --name wsleep -d 6
	local end=$(( $(now_ms) + 30000 )) rc
	while alive $HOST_PID && [ "$(now_ms)" -lt $end ]; do msleep 200; done
	if alive $HOST_PID; then
		fail "the starved scheduler was not ejected within 30 s (state=$(scx_state))"
		kill -9 $HOST_PID
	fi
	wait $HOST_PID; rc=$?
	HOST_PID=""
	kv host_rc $rc
	[ $rc -eq 9 ] || fail "host exit code $rc, expected 9 (ejected by the kernel)"
	grep -q 'exit: kind=error-stall' $T/host.err ||
		fail "no 'exit: kind=error-stall' line from the host: $(grep 'exit:' $T/host.err | head -n 1)"
	kv exit_reason "$(sed -n 's/.*reason="\([^"]*\)".*/\1/p' $T/host.err | head -n 1 | cut -c1-60 | tr ' ' '_')"
	# The kernel's exit dump, printed whole between the host's markers, with ops.dump's
	# own lines in it.
	local dump
	dump=$(sed -n '/^gthulhu-lua: exit dump (/,/^gthulhu-lua: end of exit dump/p' $T/host.err)
	if [ -z "$dump" ]; then
		fail "no exit dump printed after the ejection"
	else
		kv dump_lines "$(printf '%s\n' "$dump" | wc -l)"
		printf '%s\n' "$dump" | grep -q 'gthulhu-lua: end of exit dump' ||
			fail "exit dump not terminated by the end marker"
		printf '%s\n' "$dump" | grep -q 'gthulhu_lua: host_tgid=' ||
			fail "exit dump lacks the scheduler's ops.dump lines"
		printf '%s\n' "$dump" | grep -qi 'cpu' ||
			fail "exit dump lacks the kernel's CPU states"
		printf '%s\n' "$dump" | sed -n '2,4p;/gthulhu_lua:/p' | cut -c1-160 | sed 's/^/  | dump: /'
	fi
	wait_state disabled 5 || fail "state $(scx_state) after the host exited"
	wl_wait
}

# baseline: the mixed load on the kernel's default scheduler (no gthulhu-lua); checks the
# harness and the workloads themselves. Not in the default list.
sc_baseline() {
	mixed_load 4
	wl_wait
	mixed_figures
	kv state "$(scx_state)"
}

# selftest_panic: crash the guest kernel on purpose (sysrq c), to check that the host side
# reports a guest crash, not a scheduler failure. Not in the default list.
sc_selftest_panic() {
	echo 1 > /proc/sys/kernel/sysrq
	echo c > /proc/sysrq-trigger
	sleep 5
}

# partial: scheduler.partial (SCX_OPS_SWITCH_PARTIAL). Only tasks switched to SCHED_EXT
# (policy 7) go through the BPF side and the policy: an ordinary hog alone moves none of
# the host's counters; two SCHED_EXT hogs sharing CPU 1 (so each slice expiry goes back
# through the policy, on every kernel) beside an ordinary hog on CPU 0 do, and both get
# CPU time. (Ordinary tasks are kept off CPU 1: on 6.12 the fair class runs before ext.)
# Also checks the -v line naming the kernel interface the BPF side picked on this kernel
# (6.12: the scx_bpf_dispatch names; later kernels: scx_bpf_dsq_insert).
sc_partial() {
	start_host policies/gthulhu.lua -v -c $G/tests/vm/partial.yaml || return
	wait_attach 60 || return
	wait_stats 2 20 || { fail "no stats lines from the host"; diag $T/host.err; return; }
	local iface
	iface=$(grep -m1 'kernel interface:' $T/host.err)
	log "${iface#gthulhu-lua: }"
	case $iface in
	*mode=partial*) ;;
	*) fail "-v did not report mode=partial: '${iface:-no kernel interface line}'" ;;
	esac
	case $(uname -r) in
	6.12.*) case $iface in *insert=scx_bpf_dispatch*) kv iface dispatch ;;
	        *) fail "6.12 kernel but not the scx_bpf_dispatch path: '$iface'" ;; esac ;;
	*) case $iface in *insert=scx_bpf_dsq_insert*) kv iface dsq_insert ;;
	   *) fail "kernel $(uname -r) but not the scx_bpf_dsq_insert path: '$iface'" ;; esac ;;
	esac

	# --version while attached: sched_ext available, our scheduler named.
	$HOST --version | grep -q "^sched_ext: available, state=enabled (scheduler '$OPS')" ||
		fail "--version while attached: '$($HOST --version | tail -n 1)'"

	# 1: an ordinary (SCHED_OTHER) hog alone: nothing reaches the policy.
	local n t0 u0 k0 t1 u1 k1
	n=$(nstats); t0=$(sget nr_tasks $n); u0=$(sget nr_user_dispatches $n); k0=$(sget nr_kernel_dispatches $n)
	wl plain1 hog --name plain1 -d 3
	wl_wait
	wait_stats $((n + 4)) 15 || { fail "host stopped printing stats"; return; }
	t1=$(sget nr_tasks); u1=$(sget nr_user_dispatches); k1=$(sget nr_kernel_dispatches)
	kv plain_tasks $((t1 - t0)); kv plain_dispatches $((u1 - u0 + k1 - k0))
	[ "$t1" -eq "$t0" ] || fail "the policy saw $((t1 - t0)) tasks while only SCHED_OTHER tasks ran"
	[ "$u1" -eq "$u0" ] && [ "$k1" -eq "$k0" ] ||
		fail "BPF dispatched $((u1 - u0)) user / $((k1 - k0)) kernel decisions while only SCHED_OTHER tasks ran"

	# 2: SCHED_EXT hogs beside an ordinary one: the policy schedules them.
	n=$(nstats); t0=$(sget nr_tasks $n); u0=$(sget nr_user_dispatches $n)
	wl ext1 hog --name ext1 --sched-ext --cpus 1 -d 4
	local ext_pid=${WL_PIDS##* }
	wl ext2 hog --name ext2 --sched-ext --cpus 1 -d 4
	wl plain2 hog --name plain2 --cpus 0 -d 4
	msleep 1500
	local pol
	pol=$(sed 's/^.*) //' /proc/$ext_pid/stat 2>/dev/null | cut -d' ' -f39)
	kv ext_policy "${pol:-gone}"
	[ "$pol" = 7 ] || fail "the --sched-ext hog runs with policy '${pol:-?}', not SCHED_EXT (7)"
	wl_wait
	wait_stats $((n + 6)) 15 || { fail "host stopped printing stats"; return; }
	t1=$(sget nr_tasks); u1=$(sget nr_user_dispatches)
	kv ext_tasks $((t1 - t0)); kv ext_dispatches $((u1 - u0))
	local cpu cpu2; cpu=$(wlv ext1 cpu_us); cpu=${cpu:-0}; cpu2=$(wlv ext2 cpu_us); cpu2=${cpu2:-0}
	kv ext_cpu_ms "$((cpu / 1000))+$((cpu2 / 1000))"
	[ $((t1 - t0)) -ge 3 ] || fail "the policy saw only $((t1 - t0)) tasks while two SCHED_EXT hogs shared a CPU"
	[ $((u1 - u0)) -ge 3 ] || fail "only $((u1 - u0)) decisions applied while two SCHED_EXT hogs shared a CPU"
	[ "$cpu" -ge 500000 ] && [ "$cpu2" -ge 500000 ] ||
		fail "the SCHED_EXT hogs got $cpu and $cpu2 us of CPU in 4 s on a shared CPU (starved?)"
	still_attached "after the partial-mode workloads" || return
	stop_host
}

# service_caps: the scheduler with exactly the capabilities the systemd unit leaves it
# (CapabilityBoundingSet=CAP_BPF CAP_PERFMON, config/gthulhu-lua.service.in; capdrop
# applies it as systemd does): it attaches, schedules a hog, detaches cleanly. CAP_BPF
# alone is not enough: the host must fail with exit 8 (BPF load), not hang. Other sets
# are recorded as kv only (CAP_SYS_ADMIN alone: the old catch-all).
UNIT_CAPS=38,39      # CAP_PERFMON, CAP_BPF
sc_service_caps() {
	HOST_ENV="$W/capdrop --keep $UNIT_CAPS --" start_host policies/gthulhu.lua || { HOST_ENV=; return; }
	HOST_ENV=
	wait_attach 60 || return
	local eff
	eff=$(sed -n 's/^CapEff:[[:space:]]*//p' /proc/$HOST_PID/status)
	kv cap_eff "$eff"
	[ "$eff" = 000000c000000000 ] || fail "host runs with CapEff=$eff, not the unit's set (000000c000000000)"
	local u0; u0=$(sget nr_user_dispatches)
	wl caphog hog --name caphog -d 3
	wl_wait
	wait_stats $(( $(nstats) + 2 )) 10
	kv dispatches $(( $(sget nr_user_dispatches) - u0 ))
	[ "$(sget nr_user_dispatches)" -gt "$u0" ] || fail "no decisions applied with the unit's capabilities"
	still_attached "with the unit's capabilities" || return
	stop_host
	local set rc name
	for set in 39 21; do
		case $set in 21) name=sys_admin ;; 39) name=bpf_only ;; esac
		env $W/capdrop --keep $set -- timeout -s KILL 40 $HOST policies/gthulhu.lua > $T/c.out 2> $T/c.err &
		local pid=$! end=$(( $(now_ms) + 30000 )) att=0
		while alive $pid && ! attached && [ "$(now_ms)" -lt $end ]; do msleep 100; done
		attached && { att=1; kill -INT $pid; }
		while alive $pid && [ "$(now_ms)" -lt $end ]; do msleep 100; done
		alive $pid && { kill -9 $pid; fail "host with caps $set neither attached nor exited in 30 s"; }
		wait $pid; rc=$?
		if [ $att = 1 ]; then kv "caps_$name" attached
		else kv "caps_$name" "exit$rc"; log "caps $set: $(grep -m1 -i 'error' $T/c.err | cut -c1-150)"; fi
		[ $set = 39 ] && [ $att = 1 ] && fail "the host attached with CAP_BPF alone: the unit grants more than needed"
		[ $set = 39 ] && [ $att = 0 ] && [ $rc -ne 8 ] && fail "with CAP_BPF alone the host exited $rc, expected 8 (BPF load)"
		wait_state disabled 5 || fail "state $(scx_state) after the caps $set run"
	done
}

# ---------------------------------------------------------------- drivers
one() {
	local name=$1
	T=/tmp/sc.$name; rm -rf $T; mkdir -p $T
	FAILS="" KV="" HOST_PID=""
	if type sc_$name >/dev/null 2>&1; then
		sc_$name
	else
		fail "unknown scenario"
	fi
	if [ -n "$HOST_PID" ] && alive $HOST_PID; then kill -9 $HOST_PID; fi
	result $name
	[ -z "$FAILS" ] || { echo "  | host stderr:"; diag $T/host.err; }
}

# Kill whatever a scenario left behind and wait for sched_ext to be disabled again.
cleanup() {
	local p
	for p in $(pidof gthulhu-lua) $(pidof hog sleeper pingpong storm pinned progress) ; do
		kill -9 $p 2>/dev/null
	done
	[ -d $SCX ] && ! wait_state disabled 10 && echo "  ! sched_ext state still $(scx_state) after cleanup"
}

test_all() {
	local name pid end t0 rc
	for name in "$@"; do
		echo "SCENARIO-BEGIN $name uptime=$(cut -d' ' -f1 /proc/uptime)"
		t0=$(now_ms)
		rm -f /tmp/sc.pgid.$name
		setsid sh -c "echo \$\$ > /tmp/sc.pgid.$name; exec sh $0 one $name" &
		pid=$!
		end=$(( t0 + BUDGET * 1000 ))
		while alive $pid && [ "$(now_ms)" -lt $end ]; do msleep 200; done
		if alive $pid; then
			local pg=$(cat /tmp/sc.pgid.$name 2>/dev/null)
			[ -n "$pg" ] && kill -9 -$pg 2>/dev/null
			kill -9 $pid 2>/dev/null
			echo "RESULT $name FAIL reason=\"scenario exceeded its ${BUDGET}s budget in the guest and was killed (hang: state=$(scx_state) ops=$(scx_ops))\""
			for f in /tmp/sc.$name/host.err /tmp/sc.$name/host.out; do echo "  | $f:"; diag $f; done
		fi
		wait $pid 2>/dev/null
		cleanup
		echo "SCENARIO-END $name ms=$(( $(now_ms) - t0 ))"
	done
}

demo() {
	T=/tmp/demo; mkdir -p $T
	if [ ! -x "$HOST" ]; then echo "demo: $HOST is missing (build it with make)"; return 1; fi
	echo "demo: starting gthulhu-lua --stats=1 policies/gthulhu.lua"
	# stats lines (stdout) go to the console; stderr (a verifier log can be long) to a file.
	$HOST --stats=1 policies/gthulhu.lua 2> $T/host.err &
	HOST_PID=$!
	local end=$(( $(now_ms) + 40000 ))
	while ! attached && alive $HOST_PID && [ "$(now_ms)" -lt $end ]; do msleep 100; done
	if ! attached; then
		echo "demo: scheduler did not attach (state=$(scx_state)); last lines of its stderr:"
		DIAG_LINES=25 diag $T/host.err
		kill -9 $HOST_PID 2>/dev/null; return 1
	fi
	echo "demo: attached: state=$(scx_state) ops=$(scx_ops); running hogs, sleepers, ping-pong, a process storm for ~30 s"
	local i=1
	while [ $i -le $((NCPU + 2)) ]; do $W/hog --name demo_hog$i -d 25 & i=$((i + 1)); done
	$W/sleeper --name demo_sleep -d 25 &
	$W/pingpong --name demo_ping -n 1000000 -d 25 &
	( for i in 1 2 3 4 5; do $W/storm --name demo_storm -n 200 --exec /bin/true; sleep 4; done ) &
	sleep 28
	echo "demo: stopping the scheduler with SIGINT"
	kill -INT $HOST_PID
	end=$(( $(now_ms) + 15000 ))
	while alive $HOST_PID && [ "$(now_ms)" -lt $end ]; do msleep 100; done
	alive $HOST_PID && kill -9 $HOST_PID
	wait $HOST_PID; echo "demo: gthulhu-lua exited $?; sched_ext state=$(scx_state)"
	grep -h 'gthulhu-lua: exit:' $T/host.err
	wait
}

case $1 in
test) shift; test_all "$@" ;;
one) one $2 ;;
run) demo ;;
*) echo "usage: guest.sh test SCENARIO... | one SCENARIO | run" >&2; exit 2 ;;
esac
