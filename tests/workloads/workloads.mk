# workloads.mk - the VM test workloads, for `include tests/workloads/workloads.mk` in the
# top Makefile (scripts/vm.sh also builds them itself, into the same place, when missing
# or out of date).
WORKLOAD_NAMES := hog pinned sleeper pingpong storm progress scxwatch scxmon wakelat batch capdrop reqlat
WORKLOAD_BINS  := $(addprefix build/vm/bin/,$(WORKLOAD_NAMES))

build/vm/bin/%: tests/workloads/%.c tests/workloads/wl.h
	@mkdir -p $(dir $@)
	$(CC) -O2 -Wall -Wextra -pthread -o $@ $<

.PHONY: workloads
workloads: $(WORKLOAD_BINS)
