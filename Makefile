# gthulhu-lua - top-level Makefile.
#   make            build build/gthulhu-lua (installs nothing; see `make deps`)
#   make test       install what is needed, build, run every suite (unit, spec, transport, VM)
#   make run        install what is needed, build, run the scheduler (VM fallback without sched_ext)
#   make vmtest     only the VM end-to-end suite (KERNELS=all: on every kernel series);
#                   make vm-run: watch it schedule in a VM
#   make bench      benchmarks;  make vmbench: every scheduler vs EEVDF in one VM boot (not in test)
#   make install PREFIX=/usr/local;  V=1 shows commands
CLANG    ?= clang-19
LLVM_STRIP ?= llvm-strip-19
BPFTOOL  ?= bpftool
CC       ?= gcc
PREFIX   ?= /usr/local
BINDIR   ?= $(PREFIX)/bin
DATADIR  ?= $(PREFIX)/share/gthulhu-lua
# The config goes to /etc/gthulhu-lua/ when PREFIX=/usr, else to PREFIX/etc/gthulhu-lua/
# (GNU convention: /usr/local/etc); always under DESTDIR. The systemd unit goes to
# PREFIX/lib/systemd/system (/usr/lib/... or /usr/local/lib/..., both on systemd's path).
ifeq ($(PREFIX),/usr)
SYSCONFDIR ?= /etc
else
SYSCONFDIR ?= $(PREFIX)/etc
endif
UNITDIR  ?= $(PREFIX)/lib/systemd/system
POLICY   ?= policies/gthulhu.lua

B := build
G := $(B)/gen
ifeq ($(V),1)
Q :=
msg :=
else
Q := @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

PKGS    := libbpf luajit yaml-0.1 libmicrohttpd jansson libjwt libcurl libcrypto
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers \
	   -D_GNU_SOURCE -I$(G) -Ihost -Ibpf $(PKG_CFLAGS) \
	   -DGTHULHU_DATADIR=\"$(DATADIR)\"
LDLIBS  += $(PKG_LIBS) -lelf -lz -lm -ldl -lpthread
# LuaJIT finds FFI symbols of the host executable only if they are exported.
LDFLAGS += -rdynamic
# Sanitizer flags for the `make asan` tree (build/asan): empty in a normal build.
SAN     ?=
CFLAGS  += $(SAN)
LDFLAGS += $(SAN)

ARCH := $(shell uname -m | sed 's/x86_64/x86/; s/aarch64/arm64/')
BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -I$(G) -Ibpf -Wno-missing-declarations \
	      -Wno-compare-distinct-pointer-types -Wno-microsoft-anon-tag

# Host modules shared by the binary and the C tests; BIN_OBJS are the binary's alone
# (main.c, run.c, stats.c: they call sched_bpf.c, dryrun.c and the API).
POL_SRCS  := host/pol/bridge.c host/pol/state.c host/pol/reload.c host/pol/selftest.c \
	     host/pol/heap.c host/pol/err.c host/pol/guard.c host/pol/validate.c host/pol/watchdog.c
LIB_SRCS  := $(wildcard host/cfg.c host/topo.c host/strat.c host/loop.c host/xport.c host/log.c \
	     host/paths.c) $(POL_SRCS)
# The simulator and record/replay (host/sim/, host/rec/).
LIB_SRCS  += $(wildcard host/sim/*.c host/rec/*.c)
LIB_OBJS  := $(LIB_SRCS:host/%.c=$(B)/obj/%.o)
# host/api/: the HTTP API and the decision-maker client (binary only).
API_SRCS  := $(wildcard host/api/*.c)
API_OBJS  := $(API_SRCS:host/api/%.c=$(B)/obj/api/%.o)
BIN_OBJS  := $(B)/obj/main.o $(B)/obj/run.o $(B)/obj/stats.o $(B)/obj/sched_bpf.o $(B)/obj/dryrun.o \
	     $(B)/obj/version.o $(B)/obj/watch.o $(API_OBJS)
GEN_HDRS  := $(G)/main.skel.h $(G)/cdef_lua.h $(G)/gthulhu/cdef.lua

TEST_BINS := $(patsubst tests/%.c,$(B)/tests/%,$(wildcard tests/test_*.c))

.SECONDARY:
.PHONY: all deps run check test unit spec transport bpfunit dryrun apitest vmtest vm-run vmbench install uninstall distcheck bpf-compat clean FORCE asan asan-build
all: $(B)/gthulhu-lua

deps:
	$(Q)bash scripts/deps.sh

# vmlinux.h: VMLINUX_BTF (any kernel's BTF from 6.12 on, e.g. a cached kernel's vmlinux)
# when given, else the running kernel's BTF when it has sched_ext, else the cached Debian
# kernel that has it (scripts/kernel.sh downloads it once). bpf/compat.bpf.h makes the
# object the same whichever kernel's types it was built with.
VMLINUX_BTF ?=
$(G)/vmlinux.h: | $(G)
	$(call msg,VMLINUX,$@)
	$(Q)if [ -n "$(VMLINUX_BTF)" ]; then \
		$(BPFTOOL) btf dump file $(VMLINUX_BTF) format c > $@.tmp; \
	elif [ -r /sys/kernel/btf/vmlinux ] && $(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format raw 2>/dev/null | grep -q "STRUCT 'sched_ext_ops'"; then \
		$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp; \
	else \
		k=$$(bash scripts/kernel.sh) && $(BPFTOOL) btf dump file $$k/vmlinux format c > $@.tmp; \
	fi && mv $@.tmp $@

$(G)/%.bpf.o: bpf/%.bpf.c bpf/intf.h $(wildcard bpf/*.bpf.h) $(G)/vmlinux.h | $(G)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@ 2> $@.log || { cat $@.log; exit 1; }
	$(Q)grep -v 'declaration does not declare anything\|^ *[0-9]* | \|^ *| *\^\|warnings\? generated\|^In file included\|vmlinux.h' $@.log >&2 || true

$(G)/bpfunit.bpf.o: tests/bpfunit/bpfunit.bpf.c tests/bpfunit/bpfunit.h $(wildcard bpf/*.bpf.h) \
		bpf/intf.h $(G)/vmlinux.h | $(G)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -Itests/bpfunit -c $< -o $@ 2> $@.log || { cat $@.log; exit 1; }

$(G)/transport.bpf.o: tests/transport/transport.bpf.c tests/transport/transport.h bpf/rings.bpf.h \
		bpf/intf.h $(G)/vmlinux.h | $(G)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@ 2> $@.log || { cat $@.log; exit 1; }

# bpftool 7.5 writes `map->link = ...` for .struct_ops.link maps; libbpf 1.4's
# bpf_map_skeleton has no such member. Drop that line; the host attaches the struct_ops
# map itself with bpf_map__attach_struct_ops().
$(G)/%.skel.h: $(G)/%.bpf.o
	$(call msg,SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name $(subst .bpf.o,,$(notdir $<))_bpf > $@.tmp
	$(Q)sed -i '/map->link = /d' $@.tmp && mv $@.tmp $@

$(G)/cdef_lua.h $(G)/gthulhu/cdef.lua: bpf/intf.h scripts/gen-cdef.sh | $(G)
	$(call msg,GEN,$(G)/gthulhu/cdef.lua)
	$(Q)bash scripts/gen-cdef.sh bpf/intf.h $(G)

# The install paths compiled in (GTHULHU_DATADIR): objects are rebuilt when they change.
$(B)/paths.stamp: FORCE | $(B)/obj
	$(Q)echo '$(DATADIR)' | cmp -s - $@ || echo '$(DATADIR)' > $@

$(B)/obj/%.o: host/%.c $(wildcard host/*.h host/*/*.h) bpf/intf.h bpf/bounds.bpf.h $(GEN_HDRS) $(B)/paths.stamp | $(B)/obj
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(B)/obj/api/%.o: host/api/%.c $(wildcard host/api/*.h host/pol/*.h) $(wildcard host/*.h) bpf/intf.h bpf/bounds.bpf.h $(GEN_HDRS) | $(B)/obj/api
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

SIM_HDRS := $(wildcard host/*.h host/pol/*.h host/sim/*.h host/rec/*.h) bpf/intf.h bpf/bounds.bpf.h $(GEN_HDRS)
$(B)/obj/sim/%.o: host/sim/%.c $(SIM_HDRS)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D) && $(CC) $(CFLAGS) -c $< -o $@
$(B)/obj/rec/%.o: host/rec/%.c $(SIM_HDRS)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D) && $(CC) $(CFLAGS) -c $< -o $@

$(B)/gthulhu-lua: $(BIN_OBJS) $(LIB_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(B)/tests/test_%: tests/test_%.c tests/check.h $(LIB_OBJS) $(GEN_HDRS) | $(B)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -Itests $< $(LIB_OBJS) -o $@ $(LDFLAGS) $(LDLIBS)

# test_sched opens the scheduler's own BPF object (sched_bpf.c), no load.
$(B)/tests/test_sched: tests/test_sched.c tests/check.h $(B)/obj/sched_bpf.o $(LIB_OBJS) $(GEN_HDRS) | $(B)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -Itests $< $(B)/obj/sched_bpf.o $(LIB_OBJS) -o $@ $(LDFLAGS) $(LDLIBS)

# test_pol checks which thread calls lua_sethook, and that a reload swap takes no lock and
# wakes no thread (see tests/test_pol.c).
$(B)/tests/test_pol: LDFLAGS += -Wl,--wrap=lua_sethook -Wl,--wrap=pthread_mutex_lock \
	-Wl,--wrap=pthread_cond_broadcast -Wl,--wrap=pthread_cond_signal

$(B)/tests/transport: tests/transport/transport.c tests/transport/transport.h $(G)/transport.skel.h \
		$(LIB_OBJS) | $(B)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -Itests $< $(LIB_OBJS) -o $@ $(LDFLAGS) $(LDLIBS)

$(B)/tests/bpfunit: tests/bpfunit/bpfunit.c tests/bpfunit/bpfunit.h $(G)/bpfunit.skel.h \
		$(LIB_OBJS) | $(B)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -Itests -Itests/bpfunit $< $(LIB_OBJS) -o $@ $(LDFLAGS) $(LDLIBS)

$(G) $(B)/obj $(B)/obj/api $(B)/tests:
	$(Q)mkdir -p $@

run: deps all
	$(Q)bash scripts/run.sh $(POLICY)

check: all
	$(Q)$(B)/gthulhu-lua --check $(POLICY)

# Every suite; one closing "N passed, N failed" line summed over all of them.
test: deps
	$(Q)$(MAKE) --no-print-directory all $(TEST_BINS) $(B)/tests/transport $(B)/tests/bpfunit bench-bins
	$(Q)$(MAKE) --no-print-directory asan-build
	$(Q)bash scripts/run-tests.sh all

# The host and every C test with AddressSanitizer + UndefinedBehaviorSanitizer (LeakSanitizer
# at exit), in their own tree build/asan; scripts/run-tests.sh asan runs the unit tests, the
# transport test and --check of every shipped policy there.
ASAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
asan-build:
	$(Q)$(MAKE) --no-print-directory B=$(B)/asan SAN="$(ASAN_FLAGS)" \
		$(B)/asan/gthulhu-lua $(TEST_BINS:$(B)/%=$(B)/asan/%) $(B)/asan/tests/transport
asan: asan-build
	$(Q)bash scripts/run-tests.sh asan

unit: all $(TEST_BINS)
	$(Q)bash scripts/run-tests.sh unit
spec: $(G)/gthulhu/cdef.lua
	$(Q)bash scripts/run-tests.sh spec
transport: all $(B)/tests/transport
	$(Q)bash scripts/run-tests.sh transport
bpfunit: all $(B)/tests/bpfunit
	$(Q)bash scripts/run-tests.sh bpfunit
dryrun: all
	$(Q)bash scripts/run-tests.sh dryrun
# KERNELS=all: the suite on every sched_ext kernel series (tests/vm/matrix.sh); CI runs
# plain `make vmtest` (the newest kernel only).
apitest: all
	$(Q)bash scripts/run-tests.sh api
vmtest: deps all
	$(Q)if [ -n "$(KERNELS)" ]; then KERNELS="$(KERNELS)" nice -n 10 bash tests/vm/matrix.sh; \
	else bash scripts/run-tests.sh vm; fi
vm-run: deps all
	$(Q)bash scripts/vm.sh run
# A benchmark (build/vmbench/results.{json,md}); knobs: VMBENCH_* (scripts/vmbench.sh).
vmbench: deps all
	$(Q)bash scripts/vmbench.sh

# make install [PREFIX=/usr/local] [DESTDIR=]: the binary, the policies with their library
# (DATADIR/policies), the config (SYSCONFDIR/gthulhu-lua/config.yaml; an existing one is
# kept, the new one is put beside it as config.yaml.new) and the systemd unit. The binary
# finds its default policy there without a checkout (host/paths.c).
install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(DATADIR)/policies/lib/gthulhu \
		$(DESTDIR)$(SYSCONFDIR)/gthulhu-lua $(DESTDIR)$(UNITDIR)
	install -m 0755 $(B)/gthulhu-lua $(DESTDIR)$(BINDIR)/gthulhu-lua
	install -m 0644 policies/*.lua $(DESTDIR)$(DATADIR)/policies/
	install -m 0644 policies/lib/gthulhu/*.lua $(DESTDIR)$(DATADIR)/policies/lib/gthulhu/
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/gthulhu-lua/config.yaml ] && \
	    ! cmp -s config/config.yaml $(DESTDIR)$(SYSCONFDIR)/gthulhu-lua/config.yaml; then \
		echo "install: keeping $(DESTDIR)$(SYSCONFDIR)/gthulhu-lua/config.yaml (yours); new one: config.yaml.new"; \
		install -m 0644 config/config.yaml $(DESTDIR)$(SYSCONFDIR)/gthulhu-lua/config.yaml.new; \
	else \
		install -m 0644 config/config.yaml $(DESTDIR)$(SYSCONFDIR)/gthulhu-lua/config.yaml; \
	fi
	sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' config/gthulhu-lua.service.in \
		> $(DESTDIR)$(UNITDIR)/gthulhu-lua.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/gthulhu-lua.service
	@echo "install: done; as a service: systemctl daemon-reload && systemctl enable --now gthulhu-lua"

# Removes what install put there; a config you changed is kept (and said so).
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/gthulhu-lua $(DESTDIR)$(UNITDIR)/gthulhu-lua.service
	rm -f $(addprefix $(DESTDIR)$(DATADIR)/policies/,$(notdir $(wildcard policies/*.lua)))
	rm -f $(addprefix $(DESTDIR)$(DATADIR)/policies/lib/gthulhu/,$(notdir $(wildcard policies/lib/gthulhu/*.lua)))
	rm -f $(DESTDIR)$(SYSCONFDIR)/gthulhu-lua/config.yaml.new
	@c=$(DESTDIR)$(SYSCONFDIR)/gthulhu-lua/config.yaml; \
	if [ -e $$c ] && ! cmp -s config/config.yaml $$c; then echo "uninstall: keeping $$c (changed)"; \
	else rm -f $$c; fi
	-rmdir $(DESTDIR)$(DATADIR)/policies/lib/gthulhu $(DESTDIR)$(DATADIR)/policies/lib \
		$(DESTDIR)$(DATADIR)/policies $(DESTDIR)$(DATADIR) $(DESTDIR)$(SYSCONFDIR)/gthulhu-lua 2>/dev/null

# main.bpf.c against the BTF of every cached kernel (6.12 .. 7.x; tests/compat/build.sh).
bpf-compat: $(G)/gthulhu/cdef.lua
	$(Q)bash tests/compat/build.sh

# Build and test on Debian 13 (trixie) in a debootstrap chroot (root; ~minutes; not in `make test`).
distcheck:
	$(Q)bash scripts/distcheck.sh

clean:
	rm -rf $(B)

# Benchmarks and fuzz targets keep their rules next to their sources.
-include tests/bench/bench.mk
-include tests/fuzz/fuzz.mk
