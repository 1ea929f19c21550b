# iovkit top-level Makefile (GNU make).
#
#   make              library (shared + static), libiovkit.pc, iovctl
#   make check        unit + CLI tests under ASan/UBSan, then the VM tier
#   make check-unit   criterion unit tests only (run under ASan/UBSan; the plain build compiled too)
#   make check-cli    iovctl against the fixture hosts
#   make check-host   iovctl over real netlink in a private network namespace (tests/host/)
#   make check-daemon iovd end to end on a private dbus-daemon (tests/daemon/)
#   make check-install make install into a DESTDIR, a consumer built on it (tests/install/)
#   make check-deb    the Debian packages: built, lintian, installed, iovd activated (tests/install/deb)
#   make bench-iovd   iovd allocate+release throughput and latency (bench/)
#   make bench-list   iovctl list --json against lspci -vmmnnk on a 1,024-function fixture host (bench/list-bench)
#   make check-vm     integration tests in a QEMU guest (tests/vm/)
#   make check-fuzz   each libFuzzer harness (tests/fuzz/) for FUZZ_RUNS executions (clang)
#   make fuzz         each harness for FUZZ_SECONDS, growing its corpus in $(BUILDDIR)/fuzz/corpus
#   make bench-vfio   DMA map cost of 1 GiB in the test guest (bench/vfio-dma-run)
#   make bench-failover  planned bond switch vs miimon failover in the test guest (bench/failover-run)
#   make bench-datapath the datapath against dpdk-testpmd as forwarder (bench/datapath-bench)
#   make bench-datapath-vfio the vfio port against testpmd's virtio PMD in the test guest
#   make deps         install the Debian build and test dependencies (apt-get)
#   make install      (also libvirt's qemu hook in $(SYSCONFDIR)/libvirt/hooks/qemu.d) honours PREFIX, LIBDIR, SBINDIR, MANDIR, SYSCONFDIR, SYSTEMD_UNITDIR,
#                     BASH_COMPLETIONDIR, DOCDIR, DATADIR, SYSUSERSDIR, TMPFILESDIR, UDEVRULESDIR, DESTDIR
#   make uninstall    removes what make install put there (same variables)
#
# CPPFLAGS, CFLAGS and LDFLAGS are added to the project's own flags, after
# them, as dpkg-buildflags sets them. Warnings are errors (WERROR=-Werror)
# in developer and CI builds; a distribution build passes WERROR= (debian/rules
# does), so a new compiler's new warning does not fail a package build.

VERSION     := 0.1.0
SOVERSION   := 0
PREFIX      ?= /usr/local
LIBDIR      ?= $(PREFIX)/lib
INCLUDEDIR  ?= $(PREFIX)/include
SBINDIR     ?= $(PREFIX)/sbin
MANDIR      ?= $(PREFIX)/share/man
SYSCONFDIR  ?= /etc
# dbus-daemon reads policies from /usr/share and /etc only, whatever PREFIX
DBUS_SYSTEM_CONFDIR    ?= /usr/share/dbus-1/system.d
DBUS_SYSTEM_SERVICEDIR ?= $(PREFIX)/share/dbus-1/system-services
SYSTEMD_UNITDIR        ?= $(PREFIX)/lib/systemd/system
BASH_COMPLETIONDIR     ?= $(PREFIX)/share/bash-completion/completions
DOCDIR                 ?= $(PREFIX)/share/doc/iovkit
# what tools read at run time (not documentation, which a minimal system may leave out)
DATADIR                ?= $(PREFIX)/share/iovkit
SYSUSERSDIR            ?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR            ?= $(PREFIX)/lib/tmpfiles.d
# udev reads /usr/local/lib/udev/rules.d too; Debian's udevdir is /lib/udev
UDEVRULESDIR           ?= $(PREFIX)/lib/udev/rules.d
DESTDIR     ?=
BUILDDIR    ?= build
SANITIZE    ?= 0

CC          ?= cc
PKG_CONFIG  ?= pkg-config

# Everything the project links against, checked up front so a missing
# package is named instead of failing deep in a compile.
LIB_PKGS    := libpci libkmod libnl-3.0 libnl-route-3.0 json-c libsystemd libxdp libbpf
CLI_PKGS    := json-c libsystemd
DAEMON_PKGS := json-c libsystemd
TEST_PKGS   := criterion
# What libiovkit.so links: libkmod is opened when a module is first looked
# up (lib/core/kmod-dl.h), not loaded with every program; its headers still
# come from LIB_PKGS.
LIB_LINK_PKGS := $(filter-out libkmod,$(LIB_PKGS))
ALL_PKGS    := $(LIB_PKGS) $(CLI_PKGS) libnl-3.0 libnl-route-3.0 libsystemd


WERROR      ?= -Werror
CPPFLAGS    ?=
WARN        := -Wall -Wextra $(WERROR) -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	       -Wno-unused-parameter -Wformat=2 -Wno-format-nonliteral -Wno-format-truncation
# IOVKIT_VERSION: what iovctl --version, iovd --version and iovd's Version property say
BASE_CFLAGS := -std=gnu11 -D_GNU_SOURCE -g -O2 $(WARN) -fno-strict-aliasing \
	       -Ilib/include -I. -DIOVKIT_VERSION='"$(VERSION)"' $(CPPFLAGS)
ifeq ($(SANITIZE),1)
BASE_CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all -O1
SAN_LDFLAGS := -fsanitize=address,undefined
endif
# The fuzzing build (clang): libFuzzer's coverage in everything a harness
# reaches. Not -Werror: a warning only clang gives must not stop the fuzzers.
ifeq ($(SANITIZE),fuzz)
BASE_CFLAGS += -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all -O1 \
	       -Wno-error -Wno-unknown-warning-option
SAN_LDFLAGS := -fsanitize=address,undefined
endif
CFLAGS      ?=
LDFLAGS     ?=

pc_cflags    = $(shell $(PKG_CONFIG) --cflags $(1))
pc_libs      = $(shell $(PKG_CONFIG) --libs $(1))

LIB_SRCS    := $(wildcard lib/core/*.c lib/link/*.c lib/iommu/*.c lib/passthrough/*.c lib/vfio/*.c lib/sriov/*.c lib/apply/*.c lib/datapath/*.c)
CLI_SRCS    := $(wildcard cli/*.c)
DAEMON_SRCS := $(wildcard daemon/*.c)
# common/*.c: code shared by the library and the programs (kmod's shared/).
# Built into the library, hidden (-fvisibility=hidden, and not in
# libiovkit.sym), so iovctl and iovd get it through libiovkit.a.
COMMON_SRCS := $(wildcard common/*.c)
TEST_SRCS   := $(wildcard tests/unit/*.c)

COMMON_OBJS := $(COMMON_SRCS:%.c=$(BUILDDIR)/%.o)
LIB_OBJS    := $(LIB_SRCS:%.c=$(BUILDDIR)/%.o) $(COMMON_OBJS)
CLI_OBJS    := $(CLI_SRCS:%.c=$(BUILDDIR)/%.o)
DAEMON_OBJS := $(DAEMON_SRCS:%.c=$(BUILDDIR)/%.o)
TEST_OBJS   := $(TEST_SRCS:%.c=$(BUILDDIR)/%.o)

SONAME      := libiovkit.so.$(SOVERSION)
LIB_SO      := $(BUILDDIR)/libiovkit.so.$(VERSION)
LIB_A       := $(BUILDDIR)/libiovkit.a
IOVCTL      := $(BUILDDIR)/iovctl
IOVD        := $(BUILDDIR)/iovd
IOVD_BENCH  := $(BUILDDIR)/iovd-bench
IOVD_OPEN_DEVICE := $(BUILDDIR)/tests/iovd-open-device
VFIO_TEST   := $(BUILDDIR)/tests/vfio-test
IOVK_LINK   := $(BUILDDIR)/tests/iovk-link
UNIT_TESTS  := $(BUILDDIR)/tests/unit-tests
PC          := $(BUILDDIR)/libiovkit.pc

.PHONY: all check check-unit check-cli check-host check-daemon check-install check-deb check-vm check-pkgs deps install uninstall clean fixtures bench-iovd bench-list bench-vfio bench-failover bench-datapath bench-datapath-vfio \
	fuzz fuzz-build check-fuzz

# iovd-open-device and vfio-test are test clients (tests/daemon, the VM
# tier), built with everything so a case can run from a plain 'make'.
all: check-pkgs $(LIB_SO) $(LIB_A) $(PC) $(IOVCTL) $(IOVD) $(IOVD_OPEN_DEVICE) $(VFIO_TEST) $(IOVK_LINK)

check-pkgs:
	@missing=""; for p in $(ALL_PKGS); do $(PKG_CONFIG) --exists $$p || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "Missing pkg-config packages:$$missing (run 'make deps')" >&2; exit 1; fi

$(BUILDDIR)/lib/%.o: lib/%.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) -fPIC -fvisibility=hidden $(call pc_cflags,$(LIB_PKGS)) $(CFLAGS) -MMD -MP -c $< -o $@

# The files that spell IOVKIT_VERSION: built again when the Makefile (VERSION) changes.
$(BUILDDIR)/cli/iovctl.o $(BUILDDIR)/daemon/main.o $(BUILDDIR)/daemon/manager.o: Makefile

$(BUILDDIR)/cli/%.o: cli/%.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(call pc_cflags,$(CLI_PKGS)) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILDDIR)/daemon/%.o: daemon/%.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(call pc_cflags,$(DAEMON_PKGS)) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILDDIR)/common/%.o: common/%.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) -fPIC -fvisibility=hidden $(call pc_cflags,json-c) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILDDIR)/bench/%.o: bench/%.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(call pc_cflags,libsystemd) $(CFLAGS) -MMD -MP -c $< -o $@

# libnl's headers: tests/unit/test-link.c builds netlink attributes
$(BUILDDIR)/tests/%.o: tests/%.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(call pc_cflags,$(TEST_PKGS) libnl-route-3.0) $(CFLAGS) -MMD -MP -c $< -o $@

$(LIB_SO): $(LIB_OBJS) lib/libiovkit.sym
	$(CC) -shared -pthread -Wl,-soname,$(SONAME) -Wl,--version-script=lib/libiovkit.sym -Wl,--no-undefined \
		$(SAN_LDFLAGS) $(LDFLAGS) -o $@ $(LIB_OBJS) $(call pc_libs,$(LIB_LINK_PKGS))
	ln -sf libiovkit.so.$(VERSION) $(BUILDDIR)/$(SONAME)
	ln -sf $(SONAME) $(BUILDDIR)/libiovkit.so

$(LIB_A): $(LIB_OBJS)
	rm -f $@
	ar rcs $@ $^

PC_SED = sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' \
	     -e 's|@VERSION@|$(VERSION)|'

$(PC): lib/libiovkit.pc.in Makefile
	@mkdir -p $(dir $@)
	$(PC_SED) $< > $@

# iovctl and iovd link libiovkit.so.0, as a distribution ships them (one
# copy of the library to update), plus common/'s objects, which the library
# keeps hidden. In the build tree (and the test guest, which sees it) they
# find the library beside them through RUNPATH $ORIGIN; make install
# installs the same programs linked without it ($(BUILDDIR)/dist/).
link_prog = $(CC) $(SAN_LDFLAGS) $(LDFLAGS) $(3) -o $@ $(1) $(COMMON_OBJS) $(LIB_SO) $(call pc_libs,$(2))
BUILD_RPATH := -Wl,-rpath,'$$ORIGIN'

$(IOVCTL): $(CLI_OBJS) $(COMMON_OBJS) $(LIB_SO)
	$(call link_prog,$(CLI_OBJS),$(CLI_PKGS),$(BUILD_RPATH))
$(BUILDDIR)/dist/iovctl: $(CLI_OBJS) $(COMMON_OBJS) $(LIB_SO)
	@mkdir -p $(dir $@)
	$(call link_prog,$(CLI_OBJS),$(CLI_PKGS))

$(IOVD): $(DAEMON_OBJS) $(COMMON_OBJS) $(LIB_SO)
	$(call link_prog,$(DAEMON_OBJS),$(DAEMON_PKGS),-pthread $(BUILD_RPATH))
$(BUILDDIR)/dist/iovd: $(DAEMON_OBJS) $(COMMON_OBJS) $(LIB_SO)
	@mkdir -p $(dir $@)
	$(call link_prog,$(DAEMON_OBJS),$(DAEMON_PKGS),-pthread)

# libiovkit.a for common/'s time-util.o only: a static link takes no more
$(IOVD_BENCH): $(BUILDDIR)/bench/iovd-bench.o $(LIB_A)
	$(CC) $(SAN_LDFLAGS) $(LDFLAGS) -pthread -o $@ $^ $(call pc_libs,libsystemd)

# tests/daemon/iovd-open-device: a D-Bus client that receives OpenDevice's
# descriptor and uses it (tests/daemon/run-tests, tests/vm/cases/80-iovd-*).
$(IOVD_OPEN_DEVICE): $(BUILDDIR)/tests/daemon/iovd-open-device.o
	$(CC) $(SAN_LDFLAGS) $(LDFLAGS) -o $@ $^ $(call pc_libs,libsystemd)

# tests/vm/vfio-test: libiovkit against real VFIO in the test guest (hot
# and function reset seen in a virtio device, mapping-list replay); built
# with everything so tests/vm/cases/72-vfio-hot-reset.sh and 73-vfio-replay.sh
# can run it.
$(VFIO_TEST): $(BUILDDIR)/tests/vm/vfio-test.o $(LIB_A)
	$(CC) $(SAN_LDFLAGS) $(LDFLAGS) -o $@ $< $(LIB_A) $(call pc_libs,$(LIB_LINK_PKGS))

# tests/host/iovk-link: libiovkit's link calls from the command line, for
# tests/host/run-tests and the VM tier's failover cases (84-failover-*).
$(IOVK_LINK): $(BUILDDIR)/tests/host/iovk-link.o $(LIB_A)
	$(CC) $(SAN_LDFLAGS) $(LDFLAGS) -o $@ $< $(LIB_A) $(call pc_libs,$(LIB_LINK_PKGS))

# tests/unit/test-iovd.c drives iovd's manager over a socketpair: the unit
# tests link iovd's objects, all but its main().
DAEMON_LIB_OBJS := $(filter-out $(BUILDDIR)/daemon/main.o,$(DAEMON_OBJS))

VFIO_BENCH := $(BUILDDIR)/vfio-dma-bench
$(VFIO_BENCH): $(BUILDDIR)/bench/vfio-dma-bench.o $(LIB_A)
	$(CC) $(SAN_LDFLAGS) $(LDFLAGS) -o $@ $< $(LIB_A) $(call pc_libs,$(LIB_LINK_PKGS))

$(UNIT_TESTS): $(TEST_OBJS) $(DAEMON_LIB_OBJS) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(SAN_LDFLAGS) $(LDFLAGS) -pthread -o $@ $(TEST_OBJS) $(DAEMON_LIB_OBJS) $(LIB_A) \
		$(call pc_libs,$(TEST_PKGS) $(DAEMON_PKGS) $(LIB_LINK_PKGS))

fixtures: $(BUILDDIR)/fixtures/.stamp
$(BUILDDIR)/fixtures/.stamp: tests/fixtures/mkfixtures.py
	python3 tests/fixtures/mkfixtures.py $(BUILDDIR)/fixtures
	touch $@

# Unit and CLI tests run under ASan+UBSan in their own build tree.
ASAN_DIR := $(BUILDDIR)/asan

# Leaks fail the unit tests. LeakSanitizer reports when a test's worker
# exits, after criterion has counted the test as passed, and criterion
# ignores the worker's exit status: so ASan writes its reports to files
# (log_path), and any report fails the run.
UNIT_ASAN_REPORTS := $(abspath $(ASAN_DIR)/tmp/asan-reports)
# criterion prints a failure's [FAIL] line when the test ends, in the middle
# of a 2-minute run and among iovd's expected log lines, and CI shows only
# the tail: the run's TAP report is kept, and a failed run ends with its
# "not ok" entries (test name, file:line and assertion message).
UNIT_TAP := $(abspath $(ASAN_DIR)/tmp/unit-tests.tap)
# The plain -O2 build of the unit tests is compiled too, not run: gcc warns
# at -O2 about things the sanitizer build (-O1) does not see (5fb6a83's
# -Warray-bounds broke it unnoticed). Its library and daemon objects are
# the ones 'all' builds; the tests' own ~30 s of CPU is the added cost.
check-unit: check-pkgs
	$(MAKE) --no-print-directory $(UNIT_TESTS)
	$(MAKE) --no-print-directory BUILDDIR=$(ASAN_DIR) SANITIZE=1 $(ASAN_DIR)/tests/unit-tests $(ASAN_DIR)/fixtures/.stamp
	rm -rf $(ASAN_DIR)/tmp && mkdir -p $(ASAN_DIR)/tmp $(UNIT_ASAN_REPORTS)
	rc=0; ASAN_OPTIONS=$${ASAN_OPTIONS:+$$ASAN_OPTIONS:}detect_leaks=1:log_path=$(UNIT_ASAN_REPORTS)/asan \
		TMPDIR=$(abspath $(ASAN_DIR)/tmp) IOVKIT_TEST_FIXTURES=$(abspath $(ASAN_DIR)/fixtures) \
		IOVKIT_TEST_PCI_IDS=$(abspath tests/fixtures/pci.ids) $(ASAN_DIR)/tests/unit-tests --jobs 2 \
		--tap=$(UNIT_TAP) || rc=$$?; \
	asan=; if [ -n "$$(ls -A $(UNIT_ASAN_REPORTS))" ]; then cat $(UNIT_ASAN_REPORTS)/*; asan=1; fi; \
	if [ $$rc -ne 0 ]; then \
		echo "check-unit: unit-tests exited with status $$rc; the tests that failed ($(UNIT_TAP)):" >&2; \
		[ -s $(UNIT_TAP) ] && awk '/^not ok/ { p = 1; print; next } p && /^  / { print; next } { p = 0 }' \
			$(UNIT_TAP) >&2; \
	fi; \
	if [ -n "$$asan" ]; then \
		echo "check-unit: AddressSanitizer reported the errors above ($(UNIT_ASAN_REPORTS))" >&2; exit 1; \
	fi; exit $$rc

check-cli: check-pkgs
	$(MAKE) --no-print-directory BUILDDIR=$(ASAN_DIR) SANITIZE=1 $(ASAN_DIR)/iovctl $(ASAN_DIR)/fixtures/.stamp
	IOVCTL=$(abspath $(ASAN_DIR)/iovctl) FIXTURES=$(abspath $(ASAN_DIR)/fixtures) tests/cli/run-tests

# The real kernel's netlink, inside a private network namespace (root or
# user namespaces; skips otherwise).
check-host: check-pkgs
	$(MAKE) --no-print-directory BUILDDIR=$(ASAN_DIR) SANITIZE=1 $(ASAN_DIR)/iovctl $(ASAN_DIR)/tests/iovk-link \
		$(ASAN_DIR)/fixtures/.stamp
	IOVCTL=$(abspath $(ASAN_DIR)/iovctl) IOVK_LINK=$(abspath $(ASAN_DIR)/tests/iovk-link) \
		FIXTURES=$(abspath $(ASAN_DIR)/fixtures) tests/host/run-tests

# iovd and iovctl under ASan+UBSan against a private dbus-daemon and fixture copies.
check-daemon: check-pkgs
	$(MAKE) --no-print-directory BUILDDIR=$(ASAN_DIR) SANITIZE=1 $(ASAN_DIR)/iovd $(ASAN_DIR)/iovctl \
		$(ASAN_DIR)/tests/iovd-open-device $(ASAN_DIR)/fixtures/.stamp
	rm -rf $(ASAN_DIR)/tmp-daemon && mkdir -p $(ASAN_DIR)/tmp-daemon
	TMPDIR=$(abspath $(ASAN_DIR)/tmp-daemon) IOVD=$(abspath $(ASAN_DIR)/iovd) IOVCTL=$(abspath $(ASAN_DIR)/iovctl) \
		FIXTURES=$(abspath $(ASAN_DIR)/fixtures) tests/daemon/run-tests

# Optimised build, no sanitizers: the figures are iovd's, not ASan's.
bench-iovd: all $(IOVD_BENCH) fixtures
	IOVD=$(abspath $(IOVD)) IOVD_BENCH=$(abspath $(IOVD_BENCH)) FIXTURES=$(abspath $(BUILDDIR)/fixtures) \
		bench/iovd-bench

# Interleaved A/B, median of 11 (bench/list-bench --help).
bench-list: all
	bench/list-bench $(BENCH_ARGS)

# iovkit's datapath against dpdk-testpmd as the forwarder, interleaved
# A/B/A/B, 64-byte packets, both --no-huge (bench/datapath-bench --help);
# BENCH_ARGS=--af-xdp: benchmark 2, vhost-user <-> af-xdp on a veth (root).
bench-datapath: all
	bench/datapath-bench $(BENCH_ARGS)

# Benchmark 3: the vfio port against dpdk-testpmd's virtio PMD on the same
# vfio-bound virtio-net device, in the test guest (bench/datapath-vfio-bench --help).
bench-datapath-vfio: all
	bench/datapath-vfio-bench $(VFIO_BENCH_ARGS)

# Runs in the test guest: this host has no VFIO.
bench-vfio: all $(VFIO_BENCH)
	bench/vfio-dma-run

# Runs in the test guest: this host has no bonding module.
FAILOVER_BENCH := $(BUILDDIR)/failover-bench
$(FAILOVER_BENCH): $(BUILDDIR)/bench/failover-bench.o $(LIB_A)
	$(CC) $(SAN_LDFLAGS) $(LDFLAGS) -o $@ $< $(LIB_A) $(call pc_libs,$(LIB_LINK_PKGS))
bench-failover: all $(FAILOVER_BENCH)
	bench/failover-run

check-vm: all
	tests/vm/build-netdevsim --optional
	tests/vm/run-tests
# The VFIO cases again, in iommufd and container mode, on a self-built 6.12
# kernel (tests/vm/build-kernel: ~15 min once, then cached); a visible SKIP
# when it cannot be built here.
	tests/vm/run-tests --kernel iommufd --vfio-cases

# make install into a DESTDIR: the files, libiovkit.pc, a consumer program built against them.
check-install: all
	tests/install/run-tests

# dpkg-buildpackage on a copy of the tree (debian/), lintian, dpkg -i (root)
check-deb:
	tests/install/deb

# ---- tests/fuzz: libFuzzer harnesses, one per parser of untrusted text -----
# Built in $(BUILDDIR)/fuzz with clang (SANITIZE=fuzz above); iovd's
# harnesses link iovd's objects but main.o, as the unit tests do. A crash or
# a failed oracle leaves its input in tests/fuzz/corpus/<harness>/ (crash-*,
# leak-*, timeout-*): fixed, it stays there as a regression seed.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
# all seven harnesses: 30 s on this project's 2-core machine; vhost-user (a
# memory table mapped, fds passed and counted per input, ~2 ms each) a 40th of it
FUZZ_RUNS    ?= 200000
FUZZ_DIR     := $(BUILDDIR)/fuzz
FUZZERS      := $(patsubst tests/fuzz/fuzz-%.c,%,$(wildcard tests/fuzz/fuzz-*.c))
FUZZ_OPTS    := -timeout=10 -rss_limit_mb=2048 -print_final_stats=1

# (inside the SANITIZE=fuzz build, whose BUILDDIR is $(FUZZ_DIR))
$(BUILDDIR)/fuzz-%: tests/fuzz/fuzz-%.c tests/fuzz/fuzz.h $(LIB_A) $(DAEMON_LIB_OBJS)
	$(CC) $(BASE_CFLAGS) -fsanitize=fuzzer $(call pc_cflags,$(DAEMON_PKGS) $(LIB_PKGS)) $(CFLAGS) $(LDFLAGS) \
		-o $@ $< $(if $(filter fuzz-iovd-%,$(notdir $@)),$(DAEMON_LIB_OBJS)) $(LIB_A) \
		$(call pc_libs,$(DAEMON_PKGS) $(LIB_LINK_PKGS)) -pthread

fuzz-build: check-pkgs
	@command -v $(FUZZ_CC) >/dev/null || { echo "$(FUZZ_CC) not found (make deps: clang, libclang-rt-14-dev)" >&2; exit 1; }
	$(MAKE) --no-print-directory BUILDDIR=$(FUZZ_DIR) SANITIZE=fuzz CC=$(FUZZ_CC) $(FUZZERS:%=$(FUZZ_DIR)/fuzz-%)

fuzz: fuzz-build
	@set -e; for f in $(FUZZERS); do \
		mkdir -p $(FUZZ_DIR)/corpus/$$f; \
		echo "fuzz-$$f: $(FUZZ_SECONDS) s, corpus $(FUZZ_DIR)/corpus/$$f"; \
		$(FUZZ_DIR)/fuzz-$$f $(FUZZ_OPTS) -max_total_time=$(FUZZ_SECONDS) \
			-artifact_prefix=tests/fuzz/corpus/$$f/ $(FUZZ_DIR)/corpus/$$f tests/fuzz/corpus/$$f; \
	done

# A fixed seed and number of runs, a scratch corpus: the same work every time.
# Fewer for the harnesses whose every run does I/O: vhost-user (a socket pair),
# iovd-journal (a file written: ~1,000 runs/s).
check-fuzz: fuzz-build
	@set -e; for f in $(FUZZERS); do \
		rm -rf $(FUZZ_DIR)/check/$$f && mkdir -p $(FUZZ_DIR)/check/$$f; \
		runs=$(FUZZ_RUNS); case $$f in vhost-user) runs=$$(( $(FUZZ_RUNS) / 40 ));; iovd-journal) runs=$$(( $(FUZZ_RUNS) / 10 ));; esac; \
		if $(FUZZ_DIR)/fuzz-$$f $(FUZZ_OPTS) -seed=1 -runs=$$runs -artifact_prefix=tests/fuzz/corpus/$$f/ \
			$(FUZZ_DIR)/check/$$f tests/fuzz/corpus/$$f >$(FUZZ_DIR)/check/$$f.log 2>&1; then \
			echo "PASS fuzz-$$f: $$(grep -o 'stat::number_of_executed_units: [0-9]*' $(FUZZ_DIR)/check/$$f.log | grep -o '[0-9]*$$') runs"; \
		else \
			tail -n 40 $(FUZZ_DIR)/check/$$f.log; echo "FAIL fuzz-$$f (log: $(FUZZ_DIR)/check/$$f.log)"; exit 1; \
		fi; \
	done

check: check-unit check-cli check-host check-daemon check-install check-deb check-fuzz check-vm

deps:
	tools/deps

install: all $(BUILDDIR)/dist/iovctl $(BUILDDIR)/dist/iovd
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR)/iovkit \
		$(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man3
	install -m 0755 $(LIB_SO) $(DESTDIR)$(LIBDIR)/
	ln -sf libiovkit.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libiovkit.so
	install -m 0644 $(LIB_A) $(DESTDIR)$(LIBDIR)/
	# written here, not copied: PREFIX may differ from the one 'make all' saw
	$(PC_SED) lib/libiovkit.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/libiovkit.pc
	install -m 0644 lib/include/iovkit/*.h $(DESTDIR)$(INCLUDEDIR)/iovkit/
	install -m 0755 $(BUILDDIR)/dist/iovctl $(BUILDDIR)/dist/iovd $(DESTDIR)$(SBINDIR)/
	install -d $(DESTDIR)$(DBUS_SYSTEM_CONFDIR) $(DESTDIR)$(DBUS_SYSTEM_SERVICEDIR) $(DESTDIR)$(SYSTEMD_UNITDIR)
	install -m 0644 contrib/org.iovkit.iovd1.conf $(DESTDIR)$(DBUS_SYSTEM_CONFDIR)/
	sed 's|@SBINDIR@|$(SBINDIR)|' contrib/org.iovkit.iovd1.service.in > $(DESTDIR)$(DBUS_SYSTEM_SERVICEDIR)/org.iovkit.iovd1.service
	sed 's|@SBINDIR@|$(SBINDIR)|' contrib/iovd.service.in > $(DESTDIR)$(SYSTEMD_UNITDIR)/iovd.service
	# iovd's configuration is the administrator's to write: the example is
	# documentation (iovd serves no pools without one), the group it names
	# comes from sysusers.d, the directories from tmpfiles.d
	install -d $(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(TMPFILESDIR)
	install -m 0644 contrib/iovd.json.example $(DESTDIR)$(DOCDIR)/examples/iovd.json
	install -d $(DESTDIR)$(DATADIR)
	install -m 0644 doc/iovctl.schema.json $(DESTDIR)$(DATADIR)/iovctl.schema.json
	install -m 0644 contrib/sysusers.d/iovkit.conf $(DESTDIR)$(SYSUSERSDIR)/iovkit.conf
	install -m 0644 contrib/tmpfiles.d/iovkit.conf $(DESTDIR)$(TMPFILESDIR)/iovkit.conf
	install -m 0644 man/*.8 $(DESTDIR)$(MANDIR)/man8/
	install -m 0644 man/*.3 $(DESTDIR)$(MANDIR)/man3/
	# iovctl apply at boot (iovkit.json(5)): the unit, and the directory it reads, empty
	sed 's|@SBINDIR@|$(SBINDIR)|' contrib/iovkit-apply.service.in > $(DESTDIR)$(SYSTEMD_UNITDIR)/iovkit-apply.service
	sed 's|@SBINDIR@|$(SBINDIR)|' contrib/iovkit-datapath@.service.in > $(DESTDIR)$(SYSTEMD_UNITDIR)/iovkit-datapath@.service
	install -d $(DESTDIR)$(SYSCONFDIR)/iovkit/apply.d $(DESTDIR)$(MANDIR)/man5
	# the driver overrides of apply.d, as each device appears (iovctl overrides apply)
	install -d $(DESTDIR)$(UDEVRULESDIR)
	sed 's|@SBINDIR@|$(SBINDIR)|' contrib/udev/90-iovkit.rules.in > $(DESTDIR)$(UDEVRULESDIR)/90-iovkit.rules
	install -m 0644 man/*.5 $(DESTDIR)$(MANDIR)/man5/
	install -d $(DESTDIR)$(BASH_COMPLETIONDIR)
	install -m 0644 contrib/bash-completion/iovctl $(DESTDIR)$(BASH_COMPLETIONDIR)/iovctl
	# libvirt's qemu hook for failover groups (iovd(8), FAILOVER GROUPS); libvirt runs every file in qemu.d
	install -d $(DESTDIR)$(SYSCONFDIR)/libvirt/hooks/qemu.d
	install -m 0755 contrib/libvirt/hooks/qemu.d/iovkit $(DESTDIR)$(SYSCONFDIR)/libvirt/hooks/qemu.d/iovkit

# What install put there, by the same variables; directories only when
# empty (an administrator's /etc/iovkit/apply.d/*.json stays, and so does
# the directory).
uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libiovkit.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME) $(DESTDIR)$(LIBDIR)/libiovkit.so \
		$(DESTDIR)$(LIBDIR)/libiovkit.a $(DESTDIR)$(LIBDIR)/pkgconfig/libiovkit.pc \
		$(addprefix $(DESTDIR)$(INCLUDEDIR)/iovkit/,$(notdir $(wildcard lib/include/iovkit/*.h))) \
		$(DESTDIR)$(SBINDIR)/iovctl $(DESTDIR)$(SBINDIR)/iovd \
		$(addprefix $(DESTDIR)$(MANDIR)/man8/,$(notdir $(wildcard man/*.8))) \
		$(addprefix $(DESTDIR)$(MANDIR)/man5/,$(notdir $(wildcard man/*.5))) \
		$(addprefix $(DESTDIR)$(MANDIR)/man3/,$(notdir $(wildcard man/*.3))) \
		$(DESTDIR)$(DBUS_SYSTEM_CONFDIR)/org.iovkit.iovd1.conf \
		$(DESTDIR)$(DBUS_SYSTEM_SERVICEDIR)/org.iovkit.iovd1.service \
		$(DESTDIR)$(SYSTEMD_UNITDIR)/iovd.service $(DESTDIR)$(SYSTEMD_UNITDIR)/iovkit-apply.service \
		$(DESTDIR)$(SYSTEMD_UNITDIR)/iovkit-datapath@.service $(DESTDIR)$(UDEVRULESDIR)/90-iovkit.rules \
		$(DESTDIR)$(DOCDIR)/examples/iovd.json $(DESTDIR)$(DATADIR)/iovctl.schema.json $(DESTDIR)$(SYSUSERSDIR)/iovkit.conf \
		$(DESTDIR)$(TMPFILESDIR)/iovkit.conf $(DESTDIR)$(BASH_COMPLETIONDIR)/iovctl \
		$(DESTDIR)$(SYSCONFDIR)/libvirt/hooks/qemu.d/iovkit
	rmdir $(DESTDIR)$(INCLUDEDIR)/iovkit $(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(DOCDIR) $(DESTDIR)$(DATADIR) \
		$(DESTDIR)$(SYSCONFDIR)/iovkit/apply.d $(DESTDIR)$(SYSCONFDIR)/iovkit \
		$(DESTDIR)$(SYSCONFDIR)/libvirt/hooks/qemu.d $(DESTDIR)$(SYSCONFDIR)/libvirt/hooks 2>/dev/null || true

clean:
	rm -rf $(BUILDDIR)

-include $(LIB_OBJS:.o=.d) $(CLI_OBJS:.o=.d) $(TEST_OBJS:.o=.d) $(DAEMON_OBJS:.o=.d) $(BUILDDIR)/tests/vm/vfio-test.d \
	$(BUILDDIR)/tests/host/iovk-link.d
