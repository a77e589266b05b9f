# lockmgr - build, test, install.
#
#   make               build the libraries, lockmgrd, lockctl, examples
#   make test          build and run every test (cmocka units + processes)
#   make test SAN=1    the same, built with AddressSanitizer + UBSan
#   make demo          run the basic demo (supervisor + forked clients)
#   make demo-failure  (also demo-fencing, demo-replicated) the other demos
#   make bench         run the benchmark suite (bench/results/)
#   ./setup.sh X       install the Debian packages, then make X
#   make install PREFIX=/usr/local   (DESTDIR=/pkgroot to stage; see below)
#   make uninstall PREFIX=/usr/local

CC       ?= gcc
PREFIX   ?= /usr/local
DESTDIR  ?=
SAN      ?=
BUILD    ?= build$(if $(SAN),-san)

CFLAGS_BASE := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O2 -g \
	       -fPIC -pthread -I.
ifeq ($(SAN),1)
CFLAGS_BASE += -fsanitize=address,undefined -fno-omit-frame-pointer \
	       -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif
CFLAGS  += $(CFLAGS_BASE)
LDLIBS  += -pthread
# lockctl top's terminal view (Debian: libncurses-dev).
NCURSES_LIBS := $(shell pkg-config --libs ncurses 2>/dev/null || echo -lncurses)

LIB_SRC := shm/region.c shm/name_index.c shm/name_reclaim.c shm/session.c \
	   shm/actor.c shm/futex.c shm/test_hook.c shm/isolation.c \
	   shm/grant.c shm/group.c shm/wait_queue.c shm/lease_scan.c \
	   shm/holders.c shm/deadlock.c shm/convert.c shm/pins.c shm/watch.c \
	   shm/semaphore.c \
	   client/client.c client/errors.c client/tree.c client/watch.c client/election.c \
	   client/semaphore.c
# The etcd backend (client/etcd/: libcurl + jansson, Debian's
# libcurl4-openssl-dev and libjansson-dev). libcurl is not linked: the
# backend opens it with dlopen on its first connection
# (client/etcd/curl_load.h), so that a program that uses only the
# shared-memory backend does not load its thirty libraries at every
# start. Only the programs that call libcurl themselves (lockbench's
# etcd clusters, the etcd tests) link it.
LIB_SRC += $(wildcard client/etcd/*.c)
ETCD_LIBS := $(shell pkg-config --libs jansson 2>/dev/null || \
	       echo -ljansson) -ldl
CURL_LIBS := $(shell pkg-config --libs libcurl 2>/dev/null || echo -lcurl)
LDLIBS += $(ETCD_LIBS)
DAEMON_SRC := daemon/lockmgrd.c daemon/servers.c daemon/server.c \
	      daemon/session_monitor.c daemon/log.c daemon/state_dir.c \
	      daemon/service_record.c
LOCKCTL_SRC := $(wildcard client/lockctl/*.c)
RES_SRC := resource/store.c
RESCTL_SRC := resource/resctl.c
EXAMPLES := basic replicated fencing failure

BENCH_SRC   := $(wildcard bench/*.c)
# lockbench's Redis peer talks to its own redis-server through hiredis
# (Debian: libhiredis-dev; the server: redis-server).
HIREDIS_CFLAGS := $(shell pkg-config --cflags hiredis 2>/dev/null || \
		  echo -I/usr/include/hiredis)
HIREDIS_LIBS   := $(shell pkg-config --libs hiredis 2>/dev/null || \
		  echo -lhiredis)
LIB_OBJ     := $(LIB_SRC:%.c=$(BUILD)/%.o)
DAEMON_OBJ  := $(DAEMON_SRC:%.c=$(BUILD)/%.o)
LOCKCTL_OBJ := $(LOCKCTL_SRC:%.c=$(BUILD)/%.o)
BENCH_OBJ   := $(BENCH_SRC:%.c=$(BUILD)/%.o)
RES_OBJ     := $(RES_SRC:%.c=$(BUILD)/%.o)
RESCTL_OBJ  := $(RESCTL_SRC:%.c=$(BUILD)/%.o)

UNIT_TESTS := test_region test_name_index test_token test_resource
PROC_TESTS := test_mutex test_modes test_modes_faults test_modes_review \
	      test_modes_review2 test_watch_review test_watch_review2 \
	      test_deadlock test_tree test_cli test_fault_cli test_errors \
	      test_faults test_races test_names test_scenarios test_chaos \
	      test_bench test_install test_docs test_top test_flock \
	      test_watch test_election test_semaphore \
	      test_semaphore_review test_backends test_etcd_recipes \
	      test_fastpath_review
TEST_BINS  := $(addprefix $(BUILD)/tests/,$(UNIT_TESTS) $(PROC_TESTS))

BINS := $(BUILD)/lockmgrd $(BUILD)/lockctl $(BUILD)/lmflock $(BUILD)/resctl \
	$(BUILD)/lockbench \
	$(addprefix $(BUILD)/examples/,$(EXAMPLES))

.PHONY: all test demo bench install uninstall clean check-loop
# Keep object files that pattern rules made on the way.
.SECONDARY:
all: $(BUILD)/liblockmgr.a $(BUILD)/liblockmgr.so $(BUILD)/libfencedstore.a \
	$(BINS)

$(BUILD)/%.o: %.c $(wildcard */*.h */*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/liblockmgr.a: $(LIB_OBJ)
	ar rcs $@ $^

$(BUILD)/liblockmgr.so: $(LIB_OBJ)
	$(CC) -shared -Wl,-soname,liblockmgr.so.1 $(LDFLAGS) -o $@ $^ $(LDLIBS)

# lockmgrd is one binary that also runs as each server (--server-role).
$(BUILD)/lockmgrd: $(DAEMON_OBJ) $(BUILD)/liblockmgr.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lz -lurcu-common

$(BUILD)/lockctl: $(LOCKCTL_OBJ) $(BUILD)/liblockmgr.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(NCURSES_LIBS)

# lmflock is lockctl under another name: `lockctl flock`, with flock(1)'s
# command line (client/lockctl/flock.c).
$(BUILD)/lmflock: $(BUILD)/lockctl
	ln -sf lockctl $@

# lockbench: lockmgr against the host's own locks, in one run.
$(BUILD)/lockbench: $(BENCH_OBJ) $(BUILD)/liblockmgr.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(HIREDIS_LIBS) $(CURL_LIBS) -lm
$(BUILD)/bench/redis.o $(BUILD)/bench/prim_redis.o: CFLAGS += $(HIREDIS_CFLAGS)

# A tight loop of uncontended acquire+release, for perf and before/after
# figures (bench/micro/fastpath.c). Not part of `all`.
$(BUILD)/fastpath: $(BUILD)/bench/micro/fastpath.o $(BUILD)/liblockmgr.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The fenced store: the protected resource of the demos and tests.
$(BUILD)/libfencedstore.a: $(RES_OBJ)
	ar rcs $@ $^

$(BUILD)/resctl: $(RESCTL_OBJ) $(BUILD)/libfencedstore.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lz

# What the examples (and the scenario tests) share.
$(BUILD)/libdemo.a: $(BUILD)/examples/demo_util.o $(BUILD)/examples/clients.o
	ar rcs $@ $^

$(BUILD)/examples/%: $(BUILD)/examples/%.o $(BUILD)/libdemo.a \
		     $(BUILD)/liblockmgr.a $(BUILD)/libfencedstore.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lz

$(BUILD)/tests/test_%: $(BUILD)/tests/test_%.o $(BUILD)/tests/harness.o \
		       $(BUILD)/libdemo.a $(BUILD)/liblockmgr.a \
		       $(BUILD)/libfencedstore.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(CURL_LIBS) -lcmocka -lz

# test_docs reads README.md and docs/ from this tree, and compiles the
# README's C example the way the library was built.
$(BUILD)/tests/test_docs.o: CFLAGS += -DLM_SRC_DIR='"$(CURDIR)"' \
	-DLM_CC='"$(CC)"' -DLM_EXAMPLE_LDFLAGS='"$(LDFLAGS)"'

# test_backends and test_etcd_recipes run a real etcd
# (tests/etcd_harness.c).
$(BUILD)/tests/test_backends: $(BUILD)/tests/etcd_harness.o
$(BUILD)/tests/test_etcd_recipes: $(BUILD)/tests/etcd_harness.o

# test_top drives lockctl top's terminal view under a pty (forkpty).
$(BUILD)/tests/test_top: LDLIBS += -lutil

# The benchmark runs here only as a smoke test (every scenario works and
# its counters are exact), never as a timed assertion.
test: all $(TEST_BINS)
	@LOCKMGR_BIN=$(BUILD) sh tests/run.sh $(TEST_BINS)

bench: all
	$(BUILD)/lockbench --lockmgrd $(BUILD)/lockmgrd --out bench/results

# Rerun the multi-process tests until one fails (race hunting).
check-loop: all $(TEST_BINS)
	@n=0; while LOCKMGR_BIN=$(BUILD) sh tests/run.sh \
		$(addprefix $(BUILD)/tests/,$(PROC_TESTS)) >/dev/null; do \
		n=$$((n+1)); echo "pass $$n"; done; echo "failed after $$n passes"

demo: all
	$(BUILD)/examples/basic --lockmgrd $(BUILD)/lockmgrd

# The other demos: make demo-failure, demo-fencing, demo-replicated.
demo-%: all
	$(BUILD)/examples/$* --lockmgrd $(BUILD)/lockmgrd


# ---------------------------------------------------------------- install ---
# make install PREFIX=/usr/local [DESTDIR=/pkgroot] installs
#
#   $(BINDIR)        lockmgrd lockctl resctl, and lmflock (a link to lockctl)
#   $(LIBDIR)        liblockmgr.so.1 (+ liblockmgr.so), liblockmgr.a,
#                    libfencedstore.a
#   $(LIBDIR)/pkgconfig   lockmgr.pc, fencedstore.pc
#   $(INCLUDEDIR)    lockmgr.h, fencedstore.h (resource/store.h)
#   $(MANDIR)        man1/lockctl.1 man1/lmflock.1 (.so of lockctl.1)
#                    man1/resctl.1 man8/lockmgrd.8
#
# and nothing else (not lockbench, the demos or the tests). The fenced
# store is a static library only: it is the demos' protected resource,
# small, and one soname to keep stable is enough.
#
# A program built with `pkg-config --libs lockmgr` must find
# liblockmgr.so.1 when it starts:
#   - LIBDIR is a directory the dynamic linker searches (its own, or
#     listed in /etc/ld.so.conf, like /usr/local/lib on Debian): installing
#     without DESTDIR as root runs ldconfig, so it is found at once;
#   - anywhere else (a home directory, /opt/...): lockmgr.pc adds
#     -Wl,-rpath,LIBDIR (a RUNPATH, which LD_LIBRARY_PATH still
#     overrides), so the program finds it without LD_LIBRARY_PATH.
# INSTALL_RPATH=yes or no overrides that choice (auto by default).
BINDIR       ?= $(PREFIX)/bin
LIBDIR       ?= $(PREFIX)/lib
INCLUDEDIR   ?= $(PREFIX)/include
MANDIR       ?= $(PREFIX)/share/man
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
INSTALL_RPATH ?= auto
LDCONFIG     ?= ldconfig

comma := ,
# Where the dynamic linker looks by itself: its built-in directories and
# those of /etc/ld.so.conf (evaluated only by install and uninstall).
ld_so_dirs = /lib /usr/lib /lib64 /usr/lib64 $(shell sed -n \
	's|^[[:space:]]*\(/[^[:space:]\#]*\).*|\1|p' /etc/ld.so.conf \
	/etc/ld.so.conf.d/*.conf 2>/dev/null)
libdir_searched = $(filter $(ld_so_dirs),$(patsubst %/,%,$(LIBDIR)))
use_rpath = $(if $(filter yes,$(INSTALL_RPATH)),yes,$(if $(filter \
	auto,$(INSTALL_RPATH)),$(if $(libdir_searched),,yes)))
# The .pc files say ${prefix}/... where they can, so that pkg-config
# --define-prefix can relocate them.
pc_subst = sed -e 's|@PREFIX@|$(PREFIX)|g' \
	-e 's|@LIBDIR@|$(patsubst $(PREFIX)/%,$${exec_prefix}/%,$(LIBDIR))|g' \
	-e 's|@INCLUDEDIR@|$(patsubst $(PREFIX)/%,$${prefix}/%,$(INCLUDEDIR))|g' \
	-e 's|@RPATH@|$(if $(use_rpath),-Wl$(comma)--enable-new-dtags$(comma)-rpath$(comma)$${libdir})|g'

INSTALLED := $(BINDIR)/lockmgrd $(BINDIR)/lockctl $(BINDIR)/lmflock \
	$(BINDIR)/resctl \
	$(LIBDIR)/liblockmgr.so.1 $(LIBDIR)/liblockmgr.so \
	$(LIBDIR)/liblockmgr.a $(LIBDIR)/libfencedstore.a \
	$(PKGCONFIGDIR)/lockmgr.pc $(PKGCONFIGDIR)/fencedstore.pc \
	$(INCLUDEDIR)/lockmgr.h $(INCLUDEDIR)/fencedstore.h \
	$(MANDIR)/man1/lockctl.1 $(MANDIR)/man1/lmflock.1 \
	$(MANDIR)/man1/resctl.1 \
	$(MANDIR)/man8/lockmgrd.8

# After installing or removing liblockmgr.so.1: refresh the linker's
# cache if that is what finds it, or say what will.
define linker_cache
	@if [ -n "$(DESTDIR)" ]; then :; \
	elif [ -n "$(libdir_searched)" ] && [ "$$(id -u)" = 0 ]; then \
		echo "$(LDCONFIG)"; \
		$(LDCONFIG) || echo "make $@: $(LDCONFIG) failed: programs" \
			"will not find liblockmgr.so.1 in $(LIBDIR) until" \
			"it runs" >&2; \
	elif [ -n "$(libdir_searched)" ]; then \
		echo "make $@: not root, so ldconfig was not run: run it as" \
		     "root so that programs find liblockmgr.so.1 in $(LIBDIR)"; \
	elif [ "$@" = install ] && [ -z "$(use_rpath)" ]; then \
		echo "make install: INSTALL_RPATH=no and the dynamic linker" \
		     "does not search $(LIBDIR): run programs with" \
		     "LD_LIBRARY_PATH=$(LIBDIR)"; \
	fi
endef

install: all
	@case "$(INSTALL_RPATH)" in auto|yes|no) ;; *) \
		echo "make install: INSTALL_RPATH=$(INSTALL_RPATH): use auto," \
		     "yes or no" >&2; exit 2;; esac
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) \
		$(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(INCLUDEDIR) \
		$(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man8
	install -m 0755 $(BUILD)/lockmgrd $(BUILD)/lockctl $(BUILD)/resctl \
		$(DESTDIR)$(BINDIR)/
	ln -sf lockctl $(DESTDIR)$(BINDIR)/lmflock
	install -m 0644 $(BUILD)/liblockmgr.a $(BUILD)/libfencedstore.a \
		$(DESTDIR)$(LIBDIR)/
	install -m 0755 $(BUILD)/liblockmgr.so \
		$(DESTDIR)$(LIBDIR)/liblockmgr.so.1
	ln -sf liblockmgr.so.1 $(DESTDIR)$(LIBDIR)/liblockmgr.so
	install -m 0644 client/lockmgr.h $(DESTDIR)$(INCLUDEDIR)/lockmgr.h
	install -m 0644 resource/store.h $(DESTDIR)$(INCLUDEDIR)/fencedstore.h
	$(pc_subst) lockmgr.pc.in >$(DESTDIR)$(PKGCONFIGDIR)/lockmgr.pc
	$(pc_subst) fencedstore.pc.in >$(DESTDIR)$(PKGCONFIGDIR)/fencedstore.pc
	chmod 0644 $(DESTDIR)$(PKGCONFIGDIR)/lockmgr.pc \
		$(DESTDIR)$(PKGCONFIGDIR)/fencedstore.pc
	install -m 0644 docs/lockctl.1 docs/resctl.1 $(DESTDIR)$(MANDIR)/man1/
	echo '.so man1/lockctl.1' >$(DESTDIR)$(MANDIR)/man1/lmflock.1
	chmod 0644 $(DESTDIR)$(MANDIR)/man1/lmflock.1
	install -m 0644 docs/lockmgrd.8 $(DESTDIR)$(MANDIR)/man8/
	$(linker_cache)

# Removes exactly what install installed (the directories stay).
uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))
	$(linker_cache)

clean:
	rm -rf build build-san

# ------------------------------------------------------------------ fuzz ---
# Coverage-guided fuzzing of every parser of outside input, with libFuzzer
# (clang, Debian's libclang-rt-14-dev and llvm-14; ./setup.sh installs
# them). The targets compile the project's sources again, from the tree,
# with clang and -fsanitize=fuzzer,address,undefined, into $(FUZZ_BUILD)/
# (never the gcc objects of $(BUILD)/). See fuzz/README.md.
#
#   make fuzz                  build, then run each target FUZZ_SECONDS (60)
#   make fuzz FUZZ_SECONDS=120 FUZZ_TARGETS="fuzz_region fuzz_store"
#   make fuzz-smoke            each target for 10 s (what CI runs)
#   make fuzz-build            build the targets only
#   make fuzz-repro            replay the saved findings (fuzz/crashes/)
#   make fuzz-clean            remove $(FUZZ_BUILD)/ (the corpus stays)
FUZZ_CC      ?= clang
FUZZ_BUILD   ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= fuzz_region fuzz_state_file fuzz_service_record \
		fuzz_store fuzz_cli_lockctl fuzz_cli_resctl fuzz_cli_lockmgrd
FUZZ_SAN     := -fsanitize=fuzzer,address,undefined
FUZZ_CFLAGS  := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O1 -g \
		-fno-omit-frame-pointer -pthread -I. $(FUZZ_SAN)
FUZZ_LDFLAGS := $(FUZZ_SAN) -pthread
FZ           := $(FUZZ_BUILD)/obj

fz_objs = $(patsubst %.c,$(FZ)/%.o,$(1))
# A command's file with main(), compiled with main renamed (cli/ objects).
fz_cli  = $(patsubst %.c,$(FZ)/cli/%.o,$(1))
FZ_LIB       := $(call fz_objs,$(LIB_SRC))
FZ_COMMON    := $(call fz_objs,fuzz/fuzz_common.c)
FZ_CLI       := $(call fz_objs,fuzz/cli_common.c) $(FZ_COMMON)
FZ_NOSYNC    := $(call fz_objs,fuzz/nosync.c)
FZ_WRAP_SYNC := -Wl,--wrap=fsync,--wrap=fdatasync

$(FZ)/%.o: %.c $(wildcard */*.h */*/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<

$(FZ)/cli/%.o: %.c $(wildcard */*.h */*/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Dmain=$(basename $(notdir $<))_main \
		-c -o $@ $<

$(FUZZ_BUILD)/fuzz_region: $(call fz_objs,fuzz/fuzz_region.c) \
			   $(FZ_COMMON) $(FZ_LIB)
	$(FUZZ_CC) $(FUZZ_LDFLAGS) -Wl,--wrap=mmap,--wrap=munmap,--wrap=kill \
		-Wl,--wrap=clock_gettime,--wrap=syscall -o $@ $^ $(ETCD_LIBS)

$(FUZZ_BUILD)/fuzz_state_file: $(call fz_objs,fuzz/fuzz_state_file.c) \
			       $(FZ_COMMON) $(FZ_NOSYNC) \
			       $(FZ)/daemon/state_dir.o
	$(FUZZ_CC) $(FUZZ_LDFLAGS) $(FZ_WRAP_SYNC) -o $@ $^ -lz

$(FUZZ_BUILD)/fuzz_service_record: $(call fz_objs,fuzz/fuzz_service_record.c) \
		$(FZ_COMMON) $(FZ_NOSYNC) \
		$(FZ)/daemon/service_record.o $(FZ)/daemon/state_dir.o
	$(FUZZ_CC) $(FUZZ_LDFLAGS) $(FZ_WRAP_SYNC) -o $@ $^ -lz

$(FUZZ_BUILD)/fuzz_store: $(call fz_objs,fuzz/fuzz_store.c $(RES_SRC)) \
			  $(FZ_COMMON) $(FZ_NOSYNC)
	$(FUZZ_CC) $(FUZZ_LDFLAGS) $(FZ_WRAP_SYNC) -o $@ $^ -lz

$(FUZZ_BUILD)/fuzz_cli_lockctl: $(call fz_objs,fuzz/fuzz_cli_lockctl.c) \
		$(call fz_cli,client/lockctl/lockctl.c) \
		$(call fz_objs,$(filter-out client/lockctl/lockctl.c,$(LOCKCTL_SRC))) \
		$(FZ_CLI) $(FZ_LIB)
	$(FUZZ_CC) $(FUZZ_LDFLAGS) -Wl,--wrap=exit,--wrap=shm_open \
		-Wl,--wrap=fork,--wrap=execvp,--wrap=kill \
		-Wl,--wrap=sigtimedwait -o $@ $^ $(NCURSES_LIBS) $(ETCD_LIBS)

$(FUZZ_BUILD)/fuzz_cli_resctl: $(call fz_objs,fuzz/fuzz_cli_resctl.c) \
		$(call fz_cli,resource/resctl.c) $(call fz_objs,$(RES_SRC)) \
		$(FZ_CLI) $(FZ_NOSYNC)
	$(FUZZ_CC) $(FUZZ_LDFLAGS) $(FZ_WRAP_SYNC) -Wl,--wrap=exit \
		-Wl,--wrap=open,--wrap=link,--wrap=unlink -o $@ $^ -lz

$(FUZZ_BUILD)/fuzz_cli_lockmgrd: $(call fz_objs,fuzz/fuzz_cli_lockmgrd.c) \
		$(call fz_cli,daemon/lockmgrd.c) \
		$(call fz_objs,$(filter-out daemon/lockmgrd.c,$(DAEMON_SRC))) \
		$(FZ_CLI) $(FZ_LIB)
	$(FUZZ_CC) $(FUZZ_LDFLAGS) -Wl,--wrap=exit \
		-Wl,--wrap=lm_region_resolve_name,--wrap=shm_open,--wrap=open \
		-Wl,--wrap=fopen,--wrap=mkdir,--wrap=unlink,--wrap=fork \
		-Wl,--wrap=pipe2,--wrap=signalfd,--wrap=lm_server_main \
		-Wl,--wrap=lm_state_load -o $@ $^ -lz -lurcu-common $(ETCD_LIBS)

# The fuzz_region findings as recipes (fuzz/region_recipes.c), built by
# fuzz-repro only: a renamed region field breaks this, never make fuzz.
$(FUZZ_BUILD)/region_recipes: $(call fz_objs,fuzz/region_recipes.c) \
			      $(FZ_COMMON) $(FZ_LIB)
	$(FUZZ_CC) -fsanitize=fuzzer-no-link,address,undefined -pthread -o $@ $^ \
		$(ETCD_LIBS)

.PHONY: fuzz fuzz-build fuzz-smoke fuzz-repro fuzz-clean
fuzz-build: $(addprefix $(FUZZ_BUILD)/,$(FUZZ_TARGETS))

fuzz: fuzz-build
	@sh fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-smoke:
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=10

fuzz-repro: fuzz-build $(FUZZ_BUILD)/region_recipes
	@sh fuzz/repro.sh $(FUZZ_BUILD) $(FUZZ_TARGETS)

fuzz-clean:
	rm -rf $(FUZZ_BUILD)
clean: fuzz-clean
# ------------------------------------------------------------- end fuzz ---
