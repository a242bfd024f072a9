# tests/fuzz/fuzz.mk - libFuzzer targets (included by the top-level Makefile).
#   make fuzz           build every target and fuzz each for FUZZ_SECONDS (default 60) on
#                       build/fuzz/corpus-TARGET (new inputs land there; the committed seeds
#                       in tests/fuzz/corpus/TARGET are read too). Crashes: build/fuzz/TARGET-crash-*
#   make fuzz-regress   build, then replay each committed seed and reproducer once
#                       (tests/fuzz/corpus/TARGET, tests/fuzz/regress/TARGET); ends with
#                       "N passed, N failed" (inputs replayed / targets that crashed)
#   make fuzz-seeds     re-extract the fuzz_cfg seeds from tests/cfg/cases.txt
#   FUZZ_TARGETS="fuzz_cfg" limits both to some targets; FUZZ_FLAGS adds libFuzzer flags.
# Needs clang-19 with its sanitizer runtimes (Debian: libclang-rt-19-dev). The host sources
# are compiled into each target with clang and the sanitizers; the gcc objects are not used.
FUZZ_CC      ?= $(CLANG)
FUZZ_SECONDS ?= 60
FUZZ_FLAGS   ?=
FUZZ_TARGETS ?= fuzz_cfg fuzz_cpulist fuzz_strat fuzz_pol fuzz_rec fuzz_wl fuzz_api
FZ := $(B)/fuzz
FUZZ_CFLAGS := -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -g -O1 \
	-std=gnu11 -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers \
	-D_GNU_SOURCE -I$(G) -Ihost -Ibpf -DFUZZ_ROOT=\"$(CURDIR)\"
FUZZ_HDRS := $(wildcard host/*.h host/*/*.h) bpf/intf.h
FUZZ_HINT := echo "fuzz: cannot build with $(FUZZ_CC) -fsanitize=fuzzer: install clang-19 and its runtimes (Debian: apt-get install libclang-rt-19-dev)" >&2; exit 1

.PHONY: fuzz fuzz-build fuzz-regress fuzz-seeds

$(FZ):
	$(Q)mkdir -p $@

$(FZ)/fuzz_cfg: tests/fuzz/fuzz_cfg.c host/cfg.c host/log.c $(FUZZ_HDRS) | $(FZ)
	$(call msg,FUZZ,$@)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) $(shell pkg-config --cflags yaml-0.1) tests/fuzz/fuzz_cfg.c \
		host/cfg.c host/log.c -o $@ $(shell pkg-config --libs yaml-0.1) || { $(FUZZ_HINT); }

$(FZ)/fuzz_cpulist: tests/fuzz/fuzz_cpulist.c host/topo.c host/log.c $(FUZZ_HDRS) | $(FZ)
	$(call msg,FUZZ,$@)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) tests/fuzz/fuzz_cpulist.c host/topo.c host/log.c -o $@ || { $(FUZZ_HINT); }

$(FZ)/fuzz_strat: tests/fuzz/fuzz_strat.c host/strat.c host/log.c $(FUZZ_HDRS) | $(FZ)
	$(call msg,FUZZ,$@)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) tests/fuzz/fuzz_strat.c host/strat.c host/log.c -o $@ || { $(FUZZ_HINT); }

# -rdynamic: garbage.lua reads the fuzzer's plan through ffi.C, which needs the symbol exported.
$(FZ)/fuzz_pol: tests/fuzz/fuzz_pol.c $(POL_SRCS) $(FUZZ_HDRS) $(G)/cdef_lua.h | $(FZ)
	$(call msg,FUZZ,$@)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) $(shell pkg-config --cflags luajit) tests/fuzz/fuzz_pol.c \
		$(POL_SRCS) host/paths.c host/log.c -Ihost/pol -o $@ -rdynamic $(shell pkg-config --libs luajit) -lm -ldl -lpthread \
		|| { $(FUZZ_HINT); }

# The record file reader (host/rec, the simulator's record/replay).
$(FZ)/fuzz_rec: tests/fuzz/fuzz_rec.c host/rec/rec.c host/rec/rec.h $(FUZZ_HDRS) | $(FZ)
	$(call msg,FUZZ,$@)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) tests/fuzz/fuzz_rec.c host/rec/rec.c -o $@ -lpthread || { $(FUZZ_HINT); }

# The simulator's workload loader (YAML and rt-app JSON).
$(FZ)/fuzz_wl: tests/fuzz/fuzz_wl.c host/sim/sim_wl.c host/sim/sim_rtapp.c host/sim/sim_model.c \
		host/sim/sim_report.c host/topo.c host/loop.c host/sim/sim.h $(POL_SRCS) $(FUZZ_HDRS) | $(FZ)
	$(call msg,FUZZ,$@)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) $(shell pkg-config --cflags yaml-0.1 jansson luajit) tests/fuzz/fuzz_wl.c \
		host/sim/sim_wl.c host/sim/sim_rtapp.c host/sim/sim_model.c host/sim/sim_report.c \
		host/topo.c host/loop.c $(POL_SRCS) host/paths.c host/log.c -Ihost -Ihost/pol -o $@ -rdynamic $(shell pkg-config --libs yaml-0.1 jansson luajit) \
		-lm -ldl -lpthread || { $(FUZZ_HINT); }
# The API's request bodies and tokens (host/api/json.c, token.c, intents.c) with the
# config table and the strategy resolver they validate against.
FUZZ_API_PKGS := jansson libjwt libcrypto yaml-0.1
$(FZ)/fuzz_api: tests/fuzz/fuzz_api.c host/api/json.c host/api/token.c host/api/intents.c \
		host/cfg.c host/strat.c $(wildcard host/api/*.h) $(FUZZ_HDRS) | $(FZ)
	$(call msg,FUZZ,$@)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) $(shell pkg-config --cflags $(FUZZ_API_PKGS)) tests/fuzz/fuzz_api.c \
		host/api/json.c host/api/token.c host/api/intents.c host/cfg.c host/strat.c host/log.c -Ihost -o $@ -lpthread \
		$(shell pkg-config --libs $(FUZZ_API_PKGS)) || { $(FUZZ_HINT); }

fuzz-build: $(addprefix $(FZ)/,$(FUZZ_TARGETS))

# Extra libFuzzer flags per target (dictionaries).
FUZZ_FLAGS_fuzz_cfg := -dict=tests/fuzz/cfg.dict
FUZZ_FLAGS_fuzz_cpulist := -dict=tests/fuzz/cpulist.dict
FUZZ_FLAGS_fuzz_api := -dict=tests/fuzz/api.dict

# One target's run, as a shell snippet (fail=1 when it finds something).
fuzz_run = echo "=== $(1): $(FUZZ_SECONDS) s"; mkdir -p $(FZ)/corpus-$(1); \
	$(FZ)/$(1) -max_total_time=$(FUZZ_SECONDS) -timeout=10 -print_final_stats=1 \
		-artifact_prefix=$(FZ)/$(1)-crash- $(FUZZ_FLAGS_$(1)) $(FUZZ_FLAGS) \
		$(FZ)/corpus-$(1) tests/fuzz/corpus/$(1) \
	|| { echo "=== $(1): FAILED (reproducer: $(FZ)/$(1)-crash-*)"; fail=1; }

fuzz: fuzz-build
	$(Q)fail=0; $(foreach t,$(FUZZ_TARGETS),$(call fuzz_run,$(t));) exit $$fail

fuzz-regress: fuzz-build
	$(Q)bash tests/fuzz/regress.sh $(FZ) $(FUZZ_TARGETS)

fuzz-seeds:
	$(Q)bash tests/fuzz/extract-cfg-cases.sh
