# tests/bench/bench.mk - `make bench` (included by the top Makefile, which defines CC,
# CFLAGS, LDFLAGS, LDLIBS, LIB_OBJS, GEN_HDRS, B and G).
#   build/bench/bridge   policy bridge alone (no BPF, no root)
#   build/bench/xport    real ringbufs through the transport test's syscall programs (root)
# tests/bench/run.sh runs them and writes build/bench/report.txt.
.PHONY: bench bench-bins

BENCH_BINS := $(B)/bench/bridge $(B)/bench/xport $(B)/bench/rec

bench: all bench-bins
	$(Q)bash tests/bench/run.sh

bench-bins: $(BENCH_BINS)

$(B)/bench:
	$(Q)mkdir -p $@

$(B)/bench/bridge: tests/bench/bridge.c $(LIB_OBJS) $(GEN_HDRS) | $(B)/bench
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $< $(LIB_OBJS) -o $@ $(LDFLAGS) $(LDLIBS)

$(B)/bench/xport: tests/bench/xport.c tests/transport/transport.h $(G)/transport.skel.h $(LIB_OBJS) | $(B)/bench
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -Itests/transport $< $(LIB_OBJS) -o $@ $(LDFLAGS) $(LDLIBS)

# record hook cost (host/rec)
$(B)/bench/rec: tests/bench/rec.c $(LIB_OBJS) $(GEN_HDRS) | $(B)/bench
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $< $(LIB_OBJS) -o $@ $(LDFLAGS) $(LDLIBS)
