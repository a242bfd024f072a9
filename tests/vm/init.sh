#!/bin/sh
# /init of the gthulhu-lua test VM (busybox). Mounts the pseudo file systems, reads what to
# do from the kernel command line and always powers the VM off at the end, so QEMU exits:
#   gthulhu.mode=test gthulhu.scenarios=a,b,c   run scenarios (tests/vm/guest.sh)
#   gthulhu.mode=run                             demo: scheduler + workload for ~30 s
#   gthulhu.mode=shell                           interactive shell on the console
#   gthulhu.mode=bench                           the benchmark of `make vmbench` (tests/vm/bench.sh)
#   gthulhu.mode=none                            boot check only (prints GUEST-READY)
#   gthulhu.bench_NAME=a,b                       exported as VMBENCH_NAME="a b" (bench knobs)
#   gthulhu.budget=SECONDS                       time limit of each scenario (default 75)
#   gthulhu.retry=1                              this boot retries scenarios after a guest
#                                                kernel crash (tests/vm/run.sh): VM_RETRY=1
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run 2>/dev/null
mkdir -p /sys/kernel/debug /sys/kernel/tracing
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mount -t bpf bpf /sys/fs/bpf 2>/dev/null
ulimit -l unlimited 2>/dev/null
# Kernel messages at warning level and above reach the console (console_loglevel 5 shows
# KERN_WARNING and more severe: oopses, WARN()s, sched_ext errors); the scenarios also
# check dmesg for them.
echo 5 > /proc/sys/kernel/printk 2>/dev/null

mode=test scen=""
for a in $(cat /proc/cmdline); do
	case $a in
	gthulhu.mode=*) mode=${a#gthulhu.mode=} ;;
	gthulhu.scenarios=*) scen=${a#gthulhu.scenarios=} ;;
	gthulhu.budget=*) export SCENARIO_BUDGET=${a#gthulhu.budget=} ;;
	gthulhu.budgets=*) export SCENARIO_BUDGETS=${a#gthulhu.budgets=} ;;
	gthulhu.retry=*) export VM_RETRY=${a#gthulhu.retry=} ;;
	gthulhu.bench_*=*)
		k=${a%%=*}; k=$(echo ${k#gthulhu.bench_} | tr a-z A-Z)
		export "VMBENCH_$k=$(echo "${a#*=}" | tr , ' ')" ;;
	esac
done
echo; echo "GUEST-READY kernel=$(uname -r) cpus=$(nproc) mode=$mode uptime=$(cut -d' ' -f1 /proc/uptime)"
cd /g
case $mode in
test) sh /g/tests/vm/guest.sh test $(echo "$scen" | tr ',' ' ') ;;
run) sh /g/tests/vm/guest.sh run ;;
bench) sh /g/tests/vm/bench.sh ;;
shell) echo "gthulhu-lua VM shell: cd /g; build/gthulhu-lua --stats=1 policies/gthulhu.lua; 'poweroff -f' to quit"
       setsid cttyhack sh -l ;;
esac
echo; echo "GUEST-DONE uptime=$(cut -d' ' -f1 /proc/uptime)"
sync
poweroff -f
sleep 5
