# wfvault: build, test, install, demo.
# `make` leaves build/wfvaultd, build/wfvault and build/wfvault-sync.
# Overridable: CC CFLAGS LDFLAGS PREFIX DESTDIR; SANITIZE=1 builds with
# AddressSanitizer and UndefinedBehaviorSanitizer into build-san/.

CC	?= cc
PREFIX	?= /usr/local
DESTDIR	?=
CFLAGS	?= -O2 -g
SANITIZE ?=

ifeq ($(SANITIZE),1)
BUILD	?= build-san
SANFLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer \
	   -fno-sanitize-recover=undefined
else
BUILD	?= build
SANFLAGS =
endif

WARNFLAGS = -Wall -Wextra -Werror -Wformat=2 -Wshadow -Wpointer-arith \
	    -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
HARDEN	= -fstack-protector-strong -D_FORTIFY_SOURCE=2 -fPIE
ALL_CPPFLAGS = -D_GNU_SOURCE -Iproto -Iconfig $(CPPFLAGS)
ALL_CFLAGS = -std=c11 $(WARNFLAGS) $(HARDEN) $(SANFLAGS) $(CFLAGS)
ALL_LDFLAGS = -pie -Wl,-z,relro,-z,now $(SANFLAGS) $(LDFLAGS)

# Debian packages the build, the tests and the demo need.
DEB_BUILD = build-essential pkg-config liblmdb-dev libsodium-dev \
	    libevent-dev libjansson-dev libcurl4-openssl-dev
DEB_TEST  = libcmocka-dev bats socat jq curl lmdb-utils util-linux \
	    ca-certificates
# Node.js runs the Miniflare harness; a node/npm already on PATH (from
# Debian or elsewhere) is used as it is, so nothing conflicts with it.
DEB_NODE  = nodejs npm

PROTO_SRCS  = $(wildcard proto/*.c)
CONFIG_SRCS = $(wildcard config/*.c)
DAEMON_SRCS = $(filter-out daemon/main.c,$(wildcard daemon/*.c))
CLI_SRCS    = $(filter-out client/sync%.c client/kv%.c,$(wildcard client/*.c))
SYNC_SRCS   = $(wildcard client/sync*.c client/kv*.c)
UNIT_SRCS   = $(wildcard tests/unit/test_*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
PROTO_OBJS  = $(call obj,$(PROTO_SRCS))
CONFIG_OBJS = $(call obj,$(CONFIG_SRCS))
DAEMON_OBJS = $(call obj,$(DAEMON_SRCS))
CLI_OBJS    = $(call obj,$(CLI_SRCS))
SYNC_OBJS   = $(call obj,$(SYNC_SRCS))
UNIT_BINS   = $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))

DAEMON_LIBS = -llmdb -lsodium -levent -ljansson
CLI_LIBS    = -ljansson
SYNC_LIBS   = -ljansson -lcurl

PROGS = $(BUILD)/wfvaultd $(BUILD)/wfvault
ifneq ($(SYNC_SRCS),)
PROGS += $(BUILD)/wfvault-sync
endif

.PHONY: all deps build unit-tests test demo bench fuzz format install \
	uninstall clean
.DEFAULT_GOAL := all

all: deps
	@$(MAKE) --no-print-directory build

build: $(PROGS) $(UNIT_BINS) $(BUILD)/tests/wfvault-testpeer

# Installs only the missing Debian packages, so a second run is quick.
deps:
	@missing=""; for p in $(DEB_BUILD) $(DEB_TEST); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | \
		    grep -q '^install ok installed' || missing="$$missing $$p"; \
	done; \
	command -v npm >/dev/null 2>&1 || missing="$$missing $(DEB_NODE)"; \
	if [ -n "$$missing" ]; then \
		echo "make deps: installing$$missing"; \
		sudo=""; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
		$$sudo apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq \
		    --no-install-recommends $$missing >/dev/null || exit 1; \
	fi
	@if [ -f tests/worker/package-lock.json ] && \
	    [ ! -d tests/worker/node_modules ]; then \
		echo "make deps: npm ci in tests/worker"; \
		cd tests/worker && npm ci --no-audit --no-fund --loglevel=error; \
	fi

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CPPFLAGS) -Idaemon -Iclient $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/wfvaultd: $(BUILD)/obj/daemon/main.o $(DAEMON_OBJS) $(CONFIG_OBJS) $(PROTO_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(DAEMON_LIBS)

$(BUILD)/wfvault: $(CLI_OBJS) $(PROTO_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(CLI_LIBS)

$(BUILD)/wfvault-sync: $(SYNC_OBJS) $(CONFIG_OBJS) $(PROTO_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(SYNC_LIBS)

# Unit tests link the modules they use from these archives.
$(BUILD)/libtest.a: $(DAEMON_OBJS) $(CONFIG_OBJS) $(PROTO_OBJS) $(filter-out $(BUILD)/obj/client/sync.o,$(SYNC_OBJS))
	rm -f $@; ar rcs $@ $^

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(BUILD)/libtest.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(DAEMON_LIBS) -lcurl -lcmocka

# A small client the e2e tests use to send hostile input.
$(BUILD)/tests/wfvault-testpeer: $(BUILD)/obj/tests/e2e/testpeer.o
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^

$(BUILD)/obj/tests/e2e/testpeer.o: ALL_CFLAGS += -Wno-missing-prototypes

test: deps
	@$(MAKE) --no-print-directory build
	@BUILD=$(BUILD) tests/run.sh

demo: deps
	@$(MAKE) --no-print-directory build
	@BUILD=$(BUILD) tests/demo.sh

bench: deps
	@$(MAKE) --no-print-directory build
	@BUILD=$(BUILD) tests/bench.sh

# libFuzzer targets (clang): build/fuzz/fuzz_*.
FUZZ_SRCS = $(wildcard tests/fuzz/fuzz_*.c)
fuzz: deps
	@mkdir -p $(BUILD)/fuzz
	@for f in $(FUZZ_SRCS); do \
		n=$$(basename $$f .c); \
		echo "clang $$f"; \
		clang $(ALL_CPPFLAGS) -Idaemon -g -O1 -fsanitize=fuzzer,address,undefined \
		    -o $(BUILD)/fuzz/$$n $$f $(PROTO_SRCS) $(CONFIG_SRCS) \
		    $(DAEMON_SRCS) $(DAEMON_LIBS) || exit 1; \
	done

format:
	clang-format -i proto/*.[ch] config/*.[ch] daemon/*.[ch] client/*.[ch]

install: all
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BUILD)/wfvaultd $(DESTDIR)$(PREFIX)/sbin/wfvaultd
	install -m 0755 $(BUILD)/wfvault $(DESTDIR)$(PREFIX)/bin/wfvault
	[ ! -x $(BUILD)/wfvault-sync ] || install -m 0755 $(BUILD)/wfvault-sync \
	    $(DESTDIR)$(PREFIX)/bin/wfvault-sync

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/sbin/wfvaultd $(DESTDIR)$(PREFIX)/bin/wfvault \
	    $(DESTDIR)$(PREFIX)/bin/wfvault-sync

clean:
	rm -rf build build-san

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
