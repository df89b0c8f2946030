# leakwatch — top-level build.
#
#   make            build build/leakwatch and build/libleakwatch.so
#   make test       build and run the Criterion suites
#   make demo       run the demo incident under leakwatch (DB=postgres: on PostgreSQL)
#   make bench      benchmarks (ratios against the same workload without leakwatch)
#   make install    PREFIX=/usr/local DESTDIR= (rebuilds for PREFIX; man pages, completion)
#   make uninstall  the same PREFIX and DESTDIR: removes what install put there
#   make clean
#
# Knobs: BUILD=dir (out-of-tree build dir), V=1 (show commands),
# EXTRA_CFLAGS=..., SANITIZE=address|undefined|thread (analyzer and tests only;
# the preloaded library is never built with a sanitizer).
#
# Missing Debian packages: `make test`, `make demo`, `make bench` and an
# explicit `make deps` install them (scripts/deps.sh, as root; otherwise it
# prints the apt-get command and the build stops).  Every other target,
# `make install` included, only checks and prints that command.

.DELETE_ON_ERROR:
.SUFFIXES:

BUILD   ?= build
comma := ,
PREFIX  ?= /usr/local
DESTDIR ?=
BINDIR   = $(PREFIX)/bin
LIBDIR   = $(PREFIX)/lib/leakwatch
INCDIR   = $(PREFIX)/include/leakwatch
DATADIR  = $(PREFIX)/share/leakwatch
MANDIR   = $(PREFIX)/share/man/man1
BASHCOMPDIR = $(PREFIX)/share/bash-completion/completions
# where installs before the man pages put the docs (uninstall removes it)
DOCDIR   = $(PREFIX)/share/doc/leakwatch

CC  ?= cc
CXX ?= c++

ifeq ($(V),1)
Q :=
else
Q := @
endif

WARN = -Wall -Wextra -Wshadow -Wformat=2 -Wstrict-prototypes -Werror=undef \
       -Wmissing-prototypes -Wno-unused-parameter -Werror
BASE_CFLAGS = -std=gnu11 -O2 -g -D_GNU_SOURCE -Iinclude $(WARN) $(EXTRA_CFLAGS)

ifneq ($(SANITIZE),)
SAN_FLAGS = -fsanitize=$(SANITIZE) -fno-omit-frame-pointer
endif
# TSan does not model atomic_thread_fence (the seqlock reader in segment.h
# uses one); gcc warns about each, which -Werror would make fatal.
ifneq ($(filter thread,$(subst $(comma), ,$(SANITIZE))),)
SAN_FLAGS += -Wno-tsan
endif

# Recursive (=) variables: pkg-config runs when a recipe needs them, which is
# after the `deps` prerequisite had a chance to install the packages.
DW_CFLAGS     = $(shell pkg-config --cflags libdw)
DW_LIBS       = $(shell pkg-config --libs libdw libelf)
CRIT_CFLAGS   = $(shell pkg-config --cflags criterion)
CRIT_LIBS     = $(shell pkg-config --libs criterion)
CURSES_CFLAGS = $(shell pkg-config --cflags ncursesw)
CURSES_LIBS   = $(shell pkg-config --libs ncursesw)
MHD_CFLAGS    = $(shell pkg-config --cflags libmicrohttpd)
MHD_LIBS      = $(shell pkg-config --libs libmicrohttpd)

# --- the preloaded shim ------------------------------------------------------
# hooks.c and heap_hooks.c hold the interposed entry points; everything else is the recorder
# and is also linked into the unit tests as a static library.
PRELOAD_SRCS     = $(wildcard preload/*.c)
PRELOAD_LIB_SRCS = $(filter-out preload/hooks.c preload/heap_hooks.c,$(PRELOAD_SRCS))
PRELOAD_OBJS     = $(PRELOAD_SRCS:%.c=$(BUILD)/%.o)
PRELOAD_LIB_OBJS = $(PRELOAD_LIB_SRCS:%.c=$(BUILD)/%.o)
PRELOAD_CFLAGS   = $(BASE_CFLAGS) -fPIC -fvisibility=hidden -ftls-model=initial-exec \
                   -fno-builtin-malloc -fno-builtin-free -fno-builtin-calloc \
                   -fno-builtin-realloc -fno-omit-frame-pointer

# --- the analyzer ------------------------------------------------------------
# analyzer/lib/ is the reader library (one header per stage), analyzer/cli/ the
# command line; the tests link both, without cli/main.c.
ANALYZER_SRCS     = $(wildcard analyzer/lib/*.c analyzer/cli/*.c)
ANALYZER_LIB_SRCS = $(filter-out analyzer/cli/main.c,$(ANALYZER_SRCS))
ANALYZER_INC      = -Ianalyzer/lib -Ianalyzer/cli
ANALYZER_OBJS     = $(ANALYZER_SRCS:%.c=$(BUILD)/%.o)
ANALYZER_LIB_OBJS = $(ANALYZER_LIB_SRCS:%.c=$(BUILD)/%.o)
# libpq: `report --pg` (pgjoin.c) asks PostgreSQL about the connections;
# libmicrohttpd: `exporter` (cmd_exporter.c) serves /metrics
ANALYZER_CFLAGS   = $(BASE_CFLAGS) $(SAN_FLAGS) $(ANALYZER_INC) $(DW_CFLAGS) $(CURSES_CFLAGS) $(PQ_CFLAGS) $(MHD_CFLAGS) \
                    -I$(BUILD)/gen -DLW_LIBDIR='"$(LIBDIR)"' -DLW_DATADIR='"$(DATADIR)"'
ANALYZER_LIBS     = $(DW_LIBS) $(CURSES_LIBS) $(PQ_LIBS) $(MHD_LIBS) -lpthread -lm -lstdc++

# --- tests -------------------------------------------------------------------
# tests/lib/*.c: the helper library (one process runner, one JSON parser,
# the segment fabricator, fixtures), compiled once and linked in
TEST_SRCS     = $(wildcard tests/test_*.c) $(wildcard tests/lib/*.c)
TEST_OBJS     = $(TEST_SRCS:%.c=$(BUILD)/%.o)
# tests/fixtures/lib*.c are shared objects (loaded with dlopen), the rest programs
FIXTURE_LIBC  = $(wildcard tests/fixtures/lib*.c)
FIXTURE_C     = $(filter-out $(FIXTURE_LIBC),$(wildcard tests/fixtures/*.c))
FIXTURE_CXX   = $(wildcard tests/fixtures/*.cc)
FIXTURES      = $(FIXTURE_C:tests/fixtures/%.c=$(BUILD)/fixtures/%) \
                $(FIXTURE_CXX:tests/fixtures/%.cc=$(BUILD)/fixtures/%) \
                $(FIXTURE_LIBC:tests/fixtures/%.c=$(BUILD)/fixtures/%.so)
TEST_CFLAGS   = $(BASE_CFLAGS) $(SAN_FLAGS) $(CRIT_CFLAGS) $(DW_CFLAGS) $(PQ_CFLAGS) \
                $(ANALYZER_INC) -Ipreload -DLW_BUILD_DIR='"$(abspath $(BUILD))"' \
                -DLW_SOURCE_DIR='"$(abspath .)"'
# Fixtures are what users' programs look like: -O0 -g so file:line is exact.
FIXTURE_FLAGS = -O0 -g -fno-omit-frame-pointer -D_GNU_SOURCE -pthread -Wall -Werror

# --- demo ----------------------------------------------------------------------
DEMO_SRCS = $(wildcard demo/*.c)
DEMO_BINS = $(DEMO_SRCS:demo/%.c=$(BUILD)/demo/%) $(BUILD)/demo/api-fixed
# The service on PostgreSQL (libpq): built whenever libpq is installed (the
# demo tests use it); `make demo DB=postgres` installs libpq and the server.
DB ?= minidb
DEMO_PG_BINS = $(BUILD)/demo/api-pg $(BUILD)/demo/api-pg-fixed
ifeq ($(shell pkg-config --exists libpq 2>/dev/null && echo yes),yes)
DEMO_BINS += $(DEMO_PG_BINS)
endif
PQ_CFLAGS = $(shell pkg-config --cflags libpq)
PQ_LIBS   = $(shell pkg-config --libs libpq)

BINS = $(BUILD)/leakwatch $(BUILD)/libleakwatch.so
# generated by the built leakwatch from its option tables (manpage.c, completion.c)
DOCS = $(BUILD)/man/.pages $(BUILD)/bash-completion/leakwatch

.PHONY: all deps man test demo demo-python bench install uninstall clean check-syntax
all: deps $(BINS) $(DOCS)

DEPS_MODE = --check
ifneq ($(filter test demo demo-python bench deps,$(MAKECMDGOALS)),)
DEPS_MODE =
endif
deps:
	$(Q)sh scripts/deps.sh $(DEPS_MODE)

# Header dependencies come from the compiler (-MMD -MP, one .d per object).
# What changes code without touching a file -- the compiler, SANITIZE=,
# EXTRA_CFLAGS -- is kept in a stamp: when it differs from the last build in
# this BUILD dir, the stamp is rewritten and everything rebuilds.
DEPFLAGS = -MMD -MP
FLAGS_STAMP = $(BUILD)/.flags
FLAGS_ID := cc=$(CC) cxx=$(CXX) sanitize=$(SANITIZE) extra=$(EXTRA_CFLAGS) prefix=$(PREFIX)
ifeq ($(filter clean uninstall,$(MAKECMDGOALS)),)
ifneq ($(file <$(FLAGS_STAMP)),$(FLAGS_ID))
$(shell mkdir -p $(BUILD))
$(file >$(FLAGS_STAMP),$(FLAGS_ID))
endif
endif

$(BUILD)/preload/%.o: preload/%.c $(FLAGS_STAMP) | deps
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(PRELOAD_CFLAGS) $(DEPFLAGS) -c $< -o $@

$(BUILD)/analyzer/%.o: analyzer/%.c $(FLAGS_STAMP) | deps
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(ANALYZER_CFLAGS) $(DEPFLAGS) -c $< -o $@

# The built-in suppressions (suppress.c): analyzer/lib/default.supp, the one
# copy of them, as the bytes of a C array.
$(BUILD)/gen/default_supp.h: analyzer/lib/default.supp
	@mkdir -p $(@D)
	$(Q){ od -An -v -tx1 $< | sed 's/\([0-9a-f][0-9a-f]\)/0x\1,/g'; echo 0x00; } >$@
$(BUILD)/analyzer/lib/suppress.o: $(BUILD)/gen/default_supp.h

$(BUILD)/tests/%.o: tests/%.c $(FLAGS_STAMP) | deps
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(TEST_CFLAGS) $(DEPFLAGS) -c $< -o $@

# Export only the hooked symbols: everything is hidden by default.
# Stacks are unwound with libgcc's unwinder (preload/stack.c), linked in
# statically (libgcc_eh.a) with its symbols kept local (--exclude-libs): no
# libgcc_s.so.1 or libm.so.6 mapped into a traced process that did not map
# them itself (ten mappings fewer for every fork to copy and every child to
# unmap), and the program's own exceptions keep using its own unwinder.
# -z noseparate-code: headers, symbol tables, code and constants in one
# mapping (two fewer), so that a fork child's first call into the shim
# faults them in together (page faults per fork child of
# bench/fork_workload: 33 -> 30; 28 without the shim).  The price: the
# shim's read-only data is executable.
# libunwind must not be linked in: it exports _Unwind_Backtrace and a weak
# backtrace() of its own, which would then serve the shim and the program.
# The shim is compiled as one unit (every preload/*.c included by a generated
# file, LW_UNITY): the descriptor hooks' events then inline their recorder
# steps (SHIM_HOT in prim.h), one call per hook instead of a dozen.  The unit
# tests' recorder library (libshimrec.a) is built from the same sources file
# by file.
$(BUILD)/preload/unity.c: $(PRELOAD_SRCS) Makefile
	@mkdir -p $(@D)
	$(Q)printf '#include "%s"\n' $(PRELOAD_SRCS) >$@

$(BUILD)/preload/unity.o: $(BUILD)/preload/unity.c $(FLAGS_STAMP) | deps
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(PRELOAD_CFLAGS) -DLW_UNITY -I. $(DEPFLAGS) -c $< -o $@

$(BUILD)/libleakwatch.so: $(BUILD)/preload/unity.o
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -shared -static-libgcc -Wl,--exclude-libs,ALL -o $@ $^ \
		-Wl,-Bstatic -lgcc_eh -Wl,-Bdynamic -ldl -pthread -Wl,-z,now -Wl,-z,nodelete -Wl,-z,noseparate-code

$(BUILD)/libshimrec.a: $(PRELOAD_LIB_OBJS)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/libanalyzer.a: $(ANALYZER_LIB_OBJS)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/leakwatch: $(ANALYZER_OBJS)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(SAN_FLAGS) -o $@ $^ $(ANALYZER_LIBS)

$(BUILD)/fixtures/%: tests/fixtures/%.c $(FLAGS_STAMP) | deps
	@mkdir -p $(@D)
	$(Q)$(CC) $(FIXTURE_FLAGS) $(DEPFLAGS) -MF $@.d -o $@ $<

$(BUILD)/fixtures/%.so: tests/fixtures/%.c $(FLAGS_STAMP) | deps
	@mkdir -p $(@D)
	$(Q)$(CC) $(FIXTURE_FLAGS) $(DEPFLAGS) -MF $@.d -fPIC -shared -o $@ $<

# a libpq client holding connections in known states (report_pg)
$(BUILD)/fixtures/pgclient: tests/fixtures/pgclient.c $(FLAGS_STAMP) | deps
	@mkdir -p $(@D)
	$(Q)$(CC) $(FIXTURE_FLAGS) $(PQ_CFLAGS) $(DEPFLAGS) -MF $@.d -o $@ $< $(PQ_LIBS)

$(BUILD)/fixtures/%: tests/fixtures/%.cc $(FLAGS_STAMP) | deps
	@mkdir -p $(@D)
	$(Q)$(CXX) $(FIXTURE_FLAGS) $(DEPFLAGS) -MF $@.d -o $@ $<

$(BUILD)/tests/leakwatch-tests: $(TEST_OBJS) $(BUILD)/libanalyzer.a $(BUILD)/libshimrec.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(SAN_FLAGS) -o $@ $(TEST_OBJS) $(BUILD)/libanalyzer.a $(BUILD)/libshimrec.a \
		$(CRIT_LIBS) $(ANALYZER_LIBS) -lgcc_s -ldl -lm -pthread

# One Criterion binary, so the run ends with one synthesis line.
test: all $(FIXTURES) $(DEMO_BINS) $(BUILD)/tests/leakwatch-tests
	LSAN_OPTIONS=suppressions=$(abspath tests/lsan.supp) $(BUILD)/tests/leakwatch-tests $(TEST_ARGS)

$(BUILD)/demo/%: demo/%.c $(FLAGS_STAMP) | deps
	@mkdir -p $(@D)
	$(Q)$(CC) $(FIXTURE_FLAGS) $(DEPFLAGS) -MF $@.d -O1 -o $@ $<

$(BUILD)/demo/api-fixed: demo/api.c | deps
	@mkdir -p $(@D)
	$(Q)$(CC) $(FIXTURE_FLAGS) -O1 -DFIXED -o $@ $<

$(BUILD)/demo/api-pg: demo/api.c | deps
	@mkdir -p $(@D)
	$(Q)$(CC) $(FIXTURE_FLAGS) -O1 -DUSE_LIBPQ $(PQ_CFLAGS) -o $@ $< $(PQ_LIBS)

$(BUILD)/demo/api-pg-fixed: demo/api.c | deps
	@mkdir -p $(@D)
	$(Q)$(CC) $(FIXTURE_FLAGS) -O1 -DUSE_LIBPQ -DFIXED $(PQ_CFLAGS) -o $@ $< $(PQ_LIBS)

demo: all $(DEMO_BINS)
ifeq ($(DB),postgres)
	$(Q)sh scripts/deps.sh postgresql libpq-dev
	$(Q)$(MAKE) --no-print-directory $(DEMO_PG_BINS)
endif
	$(Q)BUILD=$(BUILD) DB=$(DB) sh demo/run.sh

# The same incident with the service in Python (demo/api.py): attached, its
# report names get_user_data in api.py.
demo-python: all $(DEMO_BINS)
	$(Q)sh scripts/deps.sh python3
	$(Q)BUILD=$(BUILD) DEMO_LANG=python sh demo/run.sh

$(BUILD)/bench/%: bench/%.c bench/bench.h | deps
	@mkdir -p $(@D)
	$(Q)$(CC) -O2 -g -pthread -Wall -Werror -o $@ $<

BENCH_BINS = $(patsubst bench/%.c,$(BUILD)/bench/%,$(wildcard bench/*.c))

bench: all $(BENCH_BINS)
	$(Q)sh scripts/deps.sh heaptrack
	$(Q)BUILD=$(BUILD) sh bench/run.sh

# The man pages: leakwatch(1) and leakwatch-COMMAND(1) for each command the
# binary lists, generated by it from the option tables and the prose of
# manpage_text.c (dated by the last commit: SOURCE_DATE_EPOCH).  Written
# each through a temporary file; pages of commands that are gone go too.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null)
man: $(DOCS)
$(BUILD)/man/.pages: $(BUILD)/leakwatch
	@mkdir -p $(@D)
	@$(if $(Q),echo "  MAN     $(@D)")
	$(Q)rm -f $(@D)/*.1
	$(Q)set -e; for c in '' $$($(BUILD)/leakwatch help --commands); do \
		p=$(@D)/leakwatch$${c:+-$$c}.1; \
		SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) $(BUILD)/leakwatch help --man $$c >$$p.tmp; \
		mv $$p.tmp $$p; \
	done
	$(Q)touch $@

$(BUILD)/bash-completion/leakwatch: $(BUILD)/leakwatch
	@mkdir -p $(@D)
	$(Q)$(BUILD)/leakwatch help --completion >$@.tmp && mv $@.tmp $@

# Everything is built for PREFIX (LW_LIBDIR, LW_DATADIR are compiled in; a
# different PREFIX rebuilds, see FLAGS_ID); DESTDIR only stages the copy.
install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCDIR) $(DESTDIR)$(DATADIR) \
		$(DESTDIR)$(MANDIR) $(DESTDIR)$(BASHCOMPDIR)
	install -m 0755 $(BUILD)/leakwatch $(DESTDIR)$(BINDIR)/leakwatch
	install -m 0644 $(BUILD)/libleakwatch.so $(DESTDIR)$(LIBDIR)/libleakwatch.so
	install -m 0644 include/leakwatch/*.h $(DESTDIR)$(INCDIR)/
	install -m 0644 docs/runbook.md docs/runbook-fds.md docs/report-format.md docs/report-schema.json \
		analyzer/lib/default.supp $(DESTDIR)$(DATADIR)/
	install -d $(DESTDIR)$(DATADIR)/prometheus
	install -m 0644 docs/prometheus/leakwatch-alerts.yml $(DESTDIR)$(DATADIR)/prometheus/
	install -m 0644 $(BUILD)/man/*.1 $(DESTDIR)$(MANDIR)/
	install -m 0644 $(BUILD)/bash-completion/leakwatch $(DESTDIR)$(BASHCOMPDIR)/leakwatch

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/leakwatch $(DESTDIR)$(LIBDIR)/libleakwatch.so
	rm -f $(DESTDIR)$(MANDIR)/leakwatch.1 $(DESTDIR)$(MANDIR)/leakwatch-*.1
	rm -f $(DESTDIR)$(BASHCOMPDIR)/leakwatch
	rm -rf $(DESTDIR)$(INCDIR) $(DESTDIR)$(DATADIR) $(DESTDIR)$(DOCDIR)
	rmdir $(DESTDIR)$(LIBDIR) 2>/dev/null || true

clean:
	rm -rf $(BUILD)

# the compiler's header dependencies of every object and program above
-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
