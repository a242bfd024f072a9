# gthulhu-lua - top-level Makefile.
#   make            build build/gthulhu-lua (installs nothing; see `make deps`)
#   make test       install what is needed, build, run every suite (unit, spec, transport, VM)
#   make run        install what is needed, build, run the scheduler (VM fallback without sched_ext)
#   make vmtest     only the VM end-to-end suite;  make vm-run: watch it schedule in a VM
#   make bench      benchmarks;  make install PREFIX=/usr/local;  V=1 shows commands
CLANG    ?= clang-19
LLVM_STRIP ?= llvm-strip-19
BPFTOOL  ?= bpftool
CC       ?= gcc
PREFIX   ?= /usr/local
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
	   -DGTHULHU_DATADIR=\"$(PREFIX)/share/gthulhu-lua\"
LDLIBS  += $(PKG_LIBS) -lelf -lz -lm -ldl -lpthread
# LuaJIT finds FFI symbols of the host executable only if they are exported.
LDFLAGS += -rdynamic

ARCH := $(shell uname -m | sed 's/x86_64/x86/; s/aarch64/arm64/')
BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -I$(G) -Ibpf -Wno-missing-declarations \
	      -Wno-compare-distinct-pointer-types -Wno-microsoft-anon-tag

# Host modules shared by the binary and the C tests; main.c and sched_bpf.c are the binary's.
LIB_SRCS  := $(wildcard host/cfg.c host/topo.c host/strat.c host/pol.c host/loop.c host/xport.c host/stats.c)
LIB_OBJS  := $(LIB_SRCS:host/%.c=$(B)/obj/%.o)
# host/api/: the HTTP API and the decision-maker client (binary only).
API_SRCS  := $(wildcard host/api/*.c)
API_OBJS  := $(API_SRCS:host/api/%.c=$(B)/obj/api/%.o)
BIN_OBJS  := $(B)/obj/main.o $(B)/obj/sched_bpf.o $(B)/obj/dryrun.o $(API_OBJS)
GEN_HDRS  := $(G)/main.skel.h $(G)/cdef_lua.h $(G)/gthulhu/cdef.lua

TEST_BINS := $(patsubst tests/%.c,$(B)/tests/%,$(wildcard tests/test_*.c))

.SECONDARY:
.PHONY: all deps run check test unit spec transport dryrun apitest vmtest vm-run install clean
all: $(B)/gthulhu-lua

deps:
	$(Q)bash scripts/deps.sh

# vmlinux.h: the running kernel's BTF when it has sched_ext, else the cached Debian kernel
# that has it (scripts/kernel.sh downloads it once).
$(G)/vmlinux.h: | $(G)
	$(call msg,VMLINUX,$@)
	$(Q)if [ -r /sys/kernel/btf/vmlinux ] && $(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format raw 2>/dev/null | grep -q "STRUCT 'sched_ext_ops'"; then \
		$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp; \
	else \
		k=$$(bash scripts/kernel.sh) && $(BPFTOOL) btf dump file $$k/vmlinux format c > $@.tmp; \
	fi && mv $@.tmp $@

$(G)/%.bpf.o: bpf/%.bpf.c bpf/intf.h $(wildcard bpf/*.bpf.h) $(G)/vmlinux.h | $(G)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@ 2> $@.log || { cat $@.log; exit 1; }
	$(Q)grep -v 'declaration does not declare anything\|^ *[0-9]* | \|^ *| *\^\|warnings\? generated\|^In file included\|vmlinux.h' $@.log >&2 || true

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

$(B)/obj/%.o: host/%.c $(wildcard host/*.h) bpf/intf.h $(GEN_HDRS) | $(B)/obj
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(B)/obj/api/%.o: host/api/%.c $(wildcard host/api/*.h) $(wildcard host/*.h) bpf/intf.h $(GEN_HDRS) | $(B)/obj/api
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(B)/gthulhu-lua: $(BIN_OBJS) $(LIB_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(B)/tests/test_%: tests/test_%.c tests/check.h $(LIB_OBJS) $(GEN_HDRS) | $(B)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -Itests $< $(LIB_OBJS) -o $@ $(LDFLAGS) $(LDLIBS)

$(B)/tests/transport: tests/transport/transport.c tests/transport/transport.h $(G)/transport.skel.h \
		$(LIB_OBJS) | $(B)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -Itests $< $(LIB_OBJS) -o $@ $(LDFLAGS) $(LDLIBS)

$(G) $(B)/obj $(B)/obj/api $(B)/tests:
	$(Q)mkdir -p $@

run: deps all
	$(Q)bash scripts/run.sh $(POLICY)

check: all
	$(Q)$(B)/gthulhu-lua --check $(POLICY)

# Every suite; one closing "N passed, N failed" line summed over all of them.
test: deps
	$(Q)$(MAKE) --no-print-directory all $(TEST_BINS) $(B)/tests/transport
	$(Q)bash scripts/run-tests.sh all

unit: all $(TEST_BINS)
	$(Q)bash scripts/run-tests.sh unit
spec: $(G)/gthulhu/cdef.lua
	$(Q)bash scripts/run-tests.sh spec
transport: all $(B)/tests/transport
	$(Q)bash scripts/run-tests.sh transport
dryrun: all
	$(Q)bash scripts/run-tests.sh dryrun
apitest: all
	$(Q)bash scripts/run-tests.sh api
vmtest: deps all
	$(Q)bash scripts/run-tests.sh vm
vm-run: deps all
	$(Q)bash scripts/vm.sh run

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/gthulhu-lua/policies/lib/gthulhu \
		$(DESTDIR)$(PREFIX)/share/gthulhu-lua/config
	install -m 0755 $(B)/gthulhu-lua $(DESTDIR)$(PREFIX)/bin/gthulhu-lua
	install -m 0644 policies/*.lua $(DESTDIR)$(PREFIX)/share/gthulhu-lua/policies/
	install -m 0644 policies/lib/gthulhu/*.lua $(DESTDIR)$(PREFIX)/share/gthulhu-lua/policies/lib/gthulhu/
	install -m 0644 config/config.yaml $(DESTDIR)$(PREFIX)/share/gthulhu-lua/config/

clean:
	rm -rf $(B)

# Benchmarks and fuzz targets keep their rules next to their sources.
-include tests/bench/bench.mk
-include tests/fuzz/fuzz.mk
