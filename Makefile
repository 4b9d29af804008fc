# statefun-c build. Plain make, out of tree into build/ (build-asan/ for the
# sanitizer build). Dependencies are found with pkg-config; missing Debian
# packages are installed by `make deps` (apt-get, as root).
#
#   make            build everything
#   make run        build and start the greeter example (see README.md)
#   make test       build and run every test; ends with Check's summary
#   make test-asan  the same tests under AddressSanitizer + UBSan
#   make test-valgrind  protocol and SDK suites under valgrind
#   make format     clang-format every source file

SANITIZER ?=
ifeq ($(SANITIZER),)
BUILD ?= build
SANFLAGS :=
else
BUILD ?= build-asan
SANFLAGS := -fsanitize=$(SANITIZER) -fno-omit-frame-pointer -fno-sanitize-recover=undefined
endif

CC ?= cc
# Quiet build lines (V=1 shows the commands).
V ?= 0
ifeq ($(V),0)
Q := @
else
Q :=
endif
SDK_PKGS := libuv libnghttp2 libprotobuf-c openssl jansson
PKGS := $(SDK_PKGS) yaml-0.1 libxxhash rocksdb
DEB_PKGS := build-essential pkg-config libuv1-dev libnghttp2-dev libprotobuf-c-dev \
	protobuf-c-compiler protobuf-compiler librocksdb-dev check libyaml-dev libssl-dev \
	libhttp-parser-dev libjansson-dev libxxhash-dev nghttp2-client nghttp2-server curl \
	valgrind openssl

# The stamp records that every dependency was found; `make deps` rebuilds it.
DEPS_STAMP := $(BUILD)/.deps-ok

OPT ?= -O2 -g
WARN := -Wall -Wextra -Wno-unused-parameter -Wshadow -Wpointer-arith -Wstrict-prototypes \
	-Wmissing-prototypes -Werror=implicit-function-declaration
GEN := $(BUILD)/gen
INCS = -Iprotocol -Iprotocol/http -I$(GEN) -Isdk-c/include -Isdk-c/src -Itests/helpers $(RUNTIME_INCS)
CFLAGS_ALL = -std=gnu11 -fPIC -MMD -MP $(OPT) $(WARN) $(SANFLAGS) $(INCS) \
	$(shell pkg-config --cflags $(PKGS) check 2>/dev/null) $(CFLAGS)
LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lhttp_parser -lpthread -ldl -lm
SDK_LIBS = $(shell pkg-config --libs $(SDK_PKGS) 2>/dev/null) -lhttp_parser -lpthread -ldl -lm
CHECK_LIBS = $(shell pkg-config --libs check 2>/dev/null)
LDFLAGS_ALL = $(SANFLAGS) $(LDFLAGS)

# ---------------------------------------------------------------------------
# Sources

PROTOS := $(wildcard protocol/proto/*.proto)
GEN_C := $(patsubst protocol/proto/%.proto,$(GEN)/%.pb-c.c,$(PROTOS))
GEN_H := $(GEN_C:.c=.h)

PROTO_SRCS := $(wildcard protocol/*.c protocol/http/*.c)
SDK_SRCS := $(wildcard sdk-c/src/*.c)
# The runtime: every runtime/**/*.c except main.c goes into a static archive
# that the binary and the tests link.
RUNTIME_SRCS := $(filter-out runtime/main.c,$(shell find runtime -name '*.c' 2>/dev/null | sort))
RUNTIME_INCS := $(addprefix -I,$(shell find runtime -type d 2>/dev/null | sort))

PROTO_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(PROTO_SRCS)) \
	$(patsubst $(GEN)/%.c,$(BUILD)/obj/gen/%.o,$(GEN_C))
SDK_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(SDK_SRCS))
RUNTIME_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(RUNTIME_SRCS))

LIBPROTO := $(BUILD)/lib/libsfprotocol.a
LIBSDK_A := $(BUILD)/lib/libstatefun-c.a
LIBSDK_SO := $(BUILD)/lib/libstatefun-c.so
SDK_PC := $(BUILD)/lib/pkgconfig/statefun-c.pc
LIBRUNTIME := $(BUILD)/lib/libsfruntime.a
STATEFUN_BIN := $(BUILD)/bin/statefun

# Examples: examples/NAME/main.c is the remote server program; every other
# .c file in the folder holds the functions, also built as libNAME.so for
# embedded use.
EXAMPLES := $(notdir $(patsubst %/,%,$(dir $(wildcard examples/*/main.c))))
EXAMPLE_BINS := $(foreach e,$(EXAMPLES),$(BUILD)/examples/$(e))
EXAMPLE_LIBS := $(foreach e,$(EXAMPLES),$(BUILD)/examples/lib$(e).so)
# Benchmark functions (bench/NAME/), built the same way into BUILD/bench/.
BENCHES := $(notdir $(patsubst %/,%,$(dir $(wildcard bench/*/main.c))))
BENCH_BINS := $(foreach b,$(BENCHES),$(BUILD)/bench/$(b))
BENCH_LIBS := $(foreach b,$(BENCHES),$(BUILD)/bench/lib$(b).so)

# Tests: every tests/**/check_*.c exports `Suite *sf_<name>_suite(void)`;
# the list is generated, so adding a suite needs no edit elsewhere.
TEST_SRCS := $(shell find tests -name 'check_*.c' -not -name check_main.c 2>/dev/null | sort)
TEST_HELPER_SRCS := $(wildcard tests/helpers/*.c)
TEST_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(TEST_SRCS) tests/check_main.c $(TEST_HELPER_SRCS))
TEST_BIN := $(BUILD)/tests/check_all
SUITES_H := $(BUILD)/gen/suites.h
# Small programs used by tests (tests/progs/NAME.c -> build/tests/NAME).
TEST_PROGS := $(patsubst tests/progs/%.c,$(BUILD)/tests/%,$(wildcard tests/progs/*.c))
# Function libraries used by tests (tests/modules/NAME/*.c -> build/tests/libNAME.so).
TEST_MODULES := $(sort $(notdir $(patsubst %/,%,$(dir $(wildcard tests/modules/*/*.c)))))
TEST_MODULE_LIBS := $(foreach m,$(TEST_MODULES),$(BUILD)/tests/lib$(m).so)

# Keep every intermediate file (generated code, objects of test programs):
# make must not delete them, nor print so after the test summary.
.SECONDARY:

.PHONY: all deps run test test-asan test-valgrind format clean proto examples js-deps bench

all: $(DEPS_STAMP) $(LIBPROTO) $(LIBSDK_A) $(LIBSDK_SO) $(SDK_PC) $(STATEFUN_BIN) examples $(TEST_BIN) \
	$(TEST_PROGS) $(TEST_MODULE_LIBS) $(BENCH_BINS) $(BENCH_LIBS)

examples: $(EXAMPLE_BINS) $(EXAMPLE_LIBS)

# ---------------------------------------------------------------------------
# Dependencies

deps:
	@missing=""; for p in $(DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	command -v node >/dev/null 2>&1 || missing="$$missing nodejs"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null || exit 1; \
	fi
	@pkg-config --exists $(PKGS) check || { echo "missing pkg-config packages: $(PKGS) check"; exit 1; }
	@mkdir -p $(BUILD) && touch $(DEPS_STAMP)

$(DEPS_STAMP):
	@$(MAKE) --no-print-directory deps BUILD=$(BUILD)

# ---------------------------------------------------------------------------
# Protocol code generation (never committed)

proto: $(GEN_C)

$(GEN)/%.pb-c.c $(GEN)/%.pb-c.h: protocol/proto/%.proto | $(DEPS_STAMP)
	@mkdir -p $(GEN)
	protoc-c --c_out=$(GEN) -Iprotocol/proto $<

# Every object may include generated headers.
$(BUILD)/obj/%.o: %.c $(GEN_H) | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS_ALL) -c $< -o $@

$(BUILD)/obj/gen/%.o: $(GEN)/%.c $(GEN_H)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS_ALL) -Wno-missing-prototypes -c $< -o $@

# ---------------------------------------------------------------------------
# Libraries

$(LIBPROTO): $(PROTO_OBJS)
	@mkdir -p $(dir $@)
	$(Q)rm -f $@ && ar rcs $@ $^

# The SDK archive and shared library carry the protocol layer too, so users
# link one library.
$(LIBSDK_A): $(SDK_OBJS) $(PROTO_OBJS)
	@mkdir -p $(dir $@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(LIBSDK_SO): $(SDK_OBJS) $(PROTO_OBJS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) -shared -o $@ $^ $(LDFLAGS_ALL) $(SDK_LIBS)

$(SDK_PC): sdk-c/statefun-c.pc.in
	@mkdir -p $(dir $@)
	sed -e 's|@PREFIX@|$(abspath $(BUILD))|' -e 's|@INCLUDEDIR@|$(abspath sdk-c/include)|' $< > $@

# The runtime archive and the statefun binary (the runtime links the SDK
# archive too: embedded modules are loaded through its ABI).
$(LIBRUNTIME): $(RUNTIME_OBJS)
	@mkdir -p $(dir $@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(STATEFUN_BIN): $(if $(wildcard runtime/main.c),$(BUILD)/obj/runtime/main.o) $(LIBRUNTIME) $(LIBSDK_A)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(if $(wildcard runtime/main.c),$(CC) -o $@ $(BUILD)/obj/runtime/main.o $(LIBRUNTIME) $(LIBSDK_A) \
	    $(LDFLAGS_ALL) $(LIBS),echo "  (no runtime/main.c yet)")

# ---------------------------------------------------------------------------
# Examples

define example_rules
$(BUILD)/examples/$(1): $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard examples/$(1)/*.c)) $(LIBSDK_A)
	@mkdir -p $$(dir $$@)
	$$(CC) -o $$@ $$(filter %.o,$$^) $(LIBSDK_A) $$(LDFLAGS_ALL) $$(SDK_LIBS)

$(BUILD)/examples/lib$(1).so: $(patsubst %.c,$(BUILD)/obj/%.o,$(filter-out examples/$(1)/main.c,$(wildcard examples/$(1)/*.c))) $(LIBSDK_A)
	@mkdir -p $$(dir $$@)
	$$(CC) -shared -o $$@ $$(filter %.o,$$^) $(LIBSDK_A) -Wl,--exclude-libs,ALL $$(LDFLAGS_ALL) $$(SDK_LIBS)
endef
$(foreach e,$(EXAMPLES),$(eval $(call example_rules,$(e))))

# Benchmark functions: bench/NAME/main.c and the other .c files, built like
# the examples into BUILD/bench/NAME and BUILD/bench/libNAME.so.
define bench_rules
$(BUILD)/bench/$(1): $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard bench/$(1)/*.c)) $(LIBSDK_A)
	@mkdir -p $$(dir $$@)
	$$(CC) -o $$@ $$(filter %.o,$$^) $(LIBSDK_A) $$(LDFLAGS_ALL) $$(SDK_LIBS)

$(BUILD)/bench/lib$(1).so: $(patsubst %.c,$(BUILD)/obj/%.o,$(filter-out bench/$(1)/main.c,$(wildcard bench/$(1)/*.c))) $(LIBSDK_A)
	@mkdir -p $$(dir $$@)
	$$(CC) -shared -o $$@ $$(filter %.o,$$^) $(LIBSDK_A) -Wl,--exclude-libs,ALL $$(LDFLAGS_ALL) $$(SDK_LIBS)
endef
$(foreach b,$(BENCHES),$(eval $(call bench_rules,$(b))))

# `make bench` runs the quick set; `make bench-NAME` one workload (bench/README.md).
bench: all
	python3 bench/bench.py --build $(BUILD) quick

bench-%: all
	python3 bench/bench.py --build $(BUILD) $*

# ---------------------------------------------------------------------------
# Tests

$(SUITES_H): $(TEST_SRCS)
	@mkdir -p $(dir $@)
	@{ for f in $(TEST_SRCS); do \
	     grep -ho '^Suite \*sf_[a-z0-9_]*_suite(void)' $$f | sed 's/$$/;/'; \
	   done; \
	   echo '#define SF_TEST_SUITES(X) \'; \
	   for f in $(TEST_SRCS); do \
	     grep -ho '^Suite \*sf_[a-z0-9_]*_suite(void)' $$f | sed -e 's/^Suite \*/  X(/' -e 's/(void)/) \\/'; \
	   done; \
	   echo '  /* end */'; } > $@.tmp && mv $@.tmp $@

$(BUILD)/obj/tests/check_main.o: $(SUITES_H)

# Suites are found by name, not declared in headers.
$(BUILD)/obj/tests/%.o: CFLAGS_ALL += -Wno-missing-prototypes

$(TEST_BIN): $(TEST_OBJS) $(LIBRUNTIME) $(LIBSDK_A)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) -o $@ $(TEST_OBJS) $(LIBRUNTIME) $(LIBSDK_A) $(LDFLAGS_ALL) $(CHECK_LIBS) $(LIBS)

# Programs may use runtime internals too (state_bench): archives only pull
# in what a program references.
$(BUILD)/tests/%: $(BUILD)/obj/tests/progs/%.o $(LIBRUNTIME) $(LIBSDK_A)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) -o $@ $< $(LIBRUNTIME) $(LIBSDK_A) $(LDFLAGS_ALL) $(LIBS)

# Test function libraries, built like the examples' libraries.
define test_module_rules
$(BUILD)/tests/lib$(1).so: $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard tests/modules/$(1)/*.c)) $(LIBSDK_A)
	@mkdir -p $$(dir $$@)
	$$(CC) -shared -o $$@ $$(filter %.o,$$^) $(LIBSDK_A) -Wl,--exclude-libs,ALL $$(LDFLAGS_ALL) $$(SDK_LIBS)
endef
$(foreach m,$(TEST_MODULES),$(eval $(call test_module_rules,$(m))))

# Node packages for interop tests (the official StateFun JavaScript SDK),
# installed from the npm registry into the build tree.
JS_DIR := $(BUILD)/js
js-deps: $(JS_DIR)/node_modules/.ok
$(JS_DIR)/node_modules/.ok: tests/js/package.json
	@mkdir -p $(JS_DIR)
	cp tests/js/package.json $(JS_DIR)/
	cd $(JS_DIR) && npm install --no-audit --no-fund --loglevel=error >/dev/null
	touch $@

# Environment seen by the tests: where the binaries are.
TEST_ENV = SF_CRASH_TEST=1 SF_BUILD=$(abspath $(BUILD)) SF_SRC=$(abspath .) STATEFUN=$(abspath $(STATEFUN_BIN)) NODE_PATH=$(abspath $(JS_DIR))/node_modules \
	CK_DEFAULT_TIMEOUT=60

test: all js-deps
	$(TEST_ENV) $(TEST_BIN)

test-asan:
	$(MAKE) --no-print-directory SANITIZER=address,undefined test

# The protocol and SDK suites (names starting with protocol/sdk) under valgrind,
# without fork so valgrind sees the tests themselves.
test-valgrind: all js-deps
	@set -e; for s in $$($(TEST_BIN) --list | grep -E '^(protocol|sdk)'); do \
	  echo "valgrind: suite $$s"; \
	  $(TEST_ENV) CK_FORK=no CK_RUN_SUITE=$$s valgrind -q --leak-check=full --show-leak-kinds=definite,indirect \
	    --errors-for-leak-kinds=definite,indirect --error-exitcode=99 $(TEST_BIN); \
	done

run: all
	@sh examples/greeter/run.sh $(BUILD)

format:
	clang-format -i $$(find protocol sdk-c runtime examples tests bench -name '*.[ch]')

clean:
	rm -rf build build-asan

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
