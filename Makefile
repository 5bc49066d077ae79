# wfvault: build, test, install, demo.
# `make` leaves build/wfvaultd, build/wfvault and build/wfvault-sync; it
# installs only the packages the build needs (deps-build).  `make test`,
# `make demo` and `make bench` also install what they run (deps-test:
# cmocka, bats, socat, Node and the Miniflare harness, ...), and `make
# test` builds the unit tests, the e2e test peer and pty driver too
# (test-build).
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
ALL_CPPFLAGS = -D_GNU_SOURCE $(CPPFLAGS)
ALL_CFLAGS = -std=c11 $(WARNFLAGS) $(HARDEN) $(SANFLAGS) $(CFLAGS)
ALL_LDFLAGS = -pie -Wl,-z,relro,-z,now $(SANFLAGS) $(LDFLAGS)

# Debian packages the build needs (DEB_BUILD), and what the tests, the
# demo and the benchmark need on top (DEB_TEST, DEB_NODE).
DEB_BUILD = build-essential pkg-config liblmdb-dev libsodium-dev \
	    libevent-dev libjansson-dev libcurl4-openssl-dev
DEB_TEST  = libcmocka-dev bats socat jq curl lmdb-utils util-linux \
	    ca-certificates systemd man-db mandoc strace openssh-client \
	    openssh-server
# Node.js runs the Miniflare harness; a node/npm already on PATH (from
# Debian or elsewhere) is used as it is, so nothing conflicts with it.
DEB_NODE  = nodejs npm

# One folder a program, and the shared layers under them: common/ (the
# logger, the clock, the wiping reallocator), proto/ (the wire contract
# and the blocking client) and config/ (the parser).
# curlwipe.c only goes into the programs that link libcurl.
COMMON_SRCS = $(filter-out common/curlwipe.c,$(wildcard common/*.c))
PROTO_SRCS  = $(wildcard proto/*.c)
CONFIG_SRCS = $(wildcard config/*.c)
DAEMON_SRCS = $(filter-out daemon/main.c,$(wildcard daemon/*.c))
CLI_SRCS    = $(wildcard client/*.c)
SYNC_SRCS   = $(filter-out sync/sync.c,$(wildcard sync/*.c))
UNIT_SRCS   = $(wildcard tests/unit/test_*.c)
SUPPORT_SRCS = tests/unit/support.c

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
COMMON_OBJS = $(call obj,$(COMMON_SRCS))
CURLWIPE_OBJ = $(call obj,common/curlwipe.c)
PROTO_OBJS  = $(call obj,$(PROTO_SRCS))
CONFIG_OBJS = $(call obj,$(CONFIG_SRCS))
DAEMON_OBJS = $(call obj,$(DAEMON_SRCS))
CLI_OBJS    = $(call obj,$(CLI_SRCS))
SYNC_OBJS   = $(call obj,$(SYNC_SRCS))
SUPPORT_OBJS = $(call obj,$(SUPPORT_SRCS))
UNIT_BINS   = $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))

# Each folder sees the headers of what it builds on, and no others: so
# proto/ cannot include a daemon header by accident.  The unit tests
# reach into the daemon's and the agent's modules.
INC_common  = -Icommon
INC_proto   = -Iproto -Icommon
INC_config  = -Iconfig
INC_daemon  = -Idaemon -Iproto -Iconfig -Icommon
INC_client  = -Iclient -Iproto
INC_sync    = -Isync -Iproto -Iconfig -Icommon
INC_unit    = -Itests/unit -Idaemon -Isync -Iproto -Iconfig -Icommon
INC_e2e     =
INC_livetest = -Iproto -Icommon

DAEMON_LIBS = -llmdb -lsodium -levent -ljansson -pthread
CLI_LIBS    = -ljansson
SYNC_LIBS   = -ljansson -lcurl -lsodium -pthread
# wfvault test's helper: libcurl stays out of the CLI's start-up.
LIVETEST_LIBS = -ljansson -lcurl
LIBEXECDIR  ?= $(PREFIX)/libexec/wfvault

PROGS = $(BUILD)/wfvaultd $(BUILD)/wfvault $(BUILD)/wfvault-sync \
	$(BUILD)/wfvault-test

.PHONY: all deps deps-build deps-test build test-build test demo bench \
	fuzz format install uninstall clean
.DEFAULT_GOAL := all

all: deps-build
	@$(MAKE) --no-print-directory build

# The three programs only; the tests' own binaries are test-build's.
build: $(PROGS)

test-build: $(PROGS) $(UNIT_BINS) $(BUILD)/tests/wfvault-testpeer \
	$(BUILD)/tests/wfvault-ptyrun

# Installs only the missing Debian packages ($(1)), and Node when $(2) is
# "node", so a second run is quick.
define apt_missing
	@missing=""; for p in $(1); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | \
		    grep -q '^install ok installed' || missing="$$missing $$p"; \
	done; \
	$(if $(2),command -v npm >/dev/null 2>&1 || \
	    missing="$$missing $(DEB_NODE)";) \
	if [ -n "$$missing" ]; then \
		echo "make $@: installing$$missing"; \
		sudo=""; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
		$$sudo apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq \
		    --no-install-recommends $$missing >/dev/null || exit 1; \
	fi
endef

# What `make`, `make build` and `make install` need: the C toolchain and
# the libraries.  Never Node, npm or the test tools.
deps-build:
	$(call apt_missing,$(DEB_BUILD),)

# Everything else `make test`, `make demo` and `make bench` run: cmocka,
# bats, socat, jq, Node and the Miniflare harness's node_modules.
deps-test:
	$(call apt_missing,$(DEB_BUILD) $(DEB_TEST),node)
	@if [ -f tests/worker/package-lock.json ] && \
	    [ ! -d tests/worker/node_modules ]; then \
		echo "make $@: npm ci in tests/worker"; \
		cd tests/worker && npm ci --no-audit --no-fund --loglevel=error; \
	fi

deps: deps-test

# INC is the include path of the object's folder (INC_* above).
$(BUILD)/obj/common/%.o: INC = $(INC_common)
$(BUILD)/obj/proto/%.o: INC = $(INC_proto)
$(BUILD)/obj/config/%.o: INC = $(INC_config)
$(BUILD)/obj/daemon/%.o: INC = $(INC_daemon)
$(BUILD)/obj/client/%.o: INC = $(INC_client)
$(BUILD)/obj/sync/%.o: INC = $(INC_sync)
$(BUILD)/obj/tests/unit/%.o: INC = $(INC_unit)
$(BUILD)/obj/tests/e2e/%.o: INC = $(INC_e2e)
$(BUILD)/obj/livetest/%.o: INC = $(INC_livetest)
# Where an installed wfvault looks for wfvault-test when it is not next
# to it.
$(BUILD)/obj/client/cli_test.o: ALL_CPPFLAGS += \
	-DWFVAULT_LIBEXECDIR='"$(LIBEXECDIR)"'

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CPPFLAGS) $(INC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/wfvaultd: $(BUILD)/obj/daemon/main.o $(DAEMON_OBJS) $(CONFIG_OBJS) $(PROTO_OBJS) $(COMMON_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(DAEMON_LIBS)

$(BUILD)/wfvault: $(CLI_OBJS) $(PROTO_OBJS) $(COMMON_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(CLI_LIBS)

$(BUILD)/wfvault-sync: $(BUILD)/obj/sync/sync.o $(SYNC_OBJS) $(CONFIG_OBJS) $(PROTO_OBJS) $(COMMON_OBJS) $(CURLWIPE_OBJ)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(SYNC_LIBS)

$(BUILD)/wfvault-test: $(BUILD)/obj/livetest/wfvault-test.o $(PROTO_OBJS) $(COMMON_OBJS) $(CURLWIPE_OBJ)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIVETEST_LIBS)

# Unit tests link the modules they use from this archive, and the
# helpers several of them share (tests/unit/support.c).
$(BUILD)/libtest.a: $(DAEMON_OBJS) $(SYNC_OBJS) $(CONFIG_OBJS) $(PROTO_OBJS) $(COMMON_OBJS) $(CURLWIPE_OBJ)
	rm -f $@; ar rcs $@ $^

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(SUPPORT_OBJS) $(BUILD)/libtest.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(DAEMON_LIBS) -lcurl -lcmocka

# A small client the e2e tests use to send hostile input.
$(BUILD)/tests/wfvault-testpeer: $(BUILD)/obj/tests/e2e/testpeer.o
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^

$(BUILD)/obj/tests/e2e/testpeer.o: ALL_CFLAGS += -Wno-missing-prototypes

# Runs a command on a pseudo-terminal for the tests of prompts
# (forkpty is glibc's libutil: no new package).
$(BUILD)/tests/wfvault-ptyrun: $(BUILD)/obj/tests/e2e/ptyrun.o
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ -lutil

test: deps-test
	@$(MAKE) --no-print-directory test-build
	@BUILD=$(BUILD) tests/run.sh

demo: deps-test
	@$(MAKE) --no-print-directory build
	@BUILD=$(BUILD) tests/demo.sh

bench: deps-test
	@$(MAKE) --no-print-directory build
	@BUILD=$(BUILD) tests/bench.sh

# libFuzzer targets (clang): build/fuzz/fuzz_*.
FUZZ_SRCS = $(wildcard tests/fuzz/fuzz_*.c)
fuzz: deps-build
	@mkdir -p $(BUILD)/fuzz
	@for f in $(FUZZ_SRCS); do \
		n=$$(basename $$f .c); \
		echo "clang $$f"; \
		clang $(ALL_CPPFLAGS) $(INC_daemon) -g -O1 \
		    -fsanitize=fuzzer,address,undefined \
		    -o $(BUILD)/fuzz/$$n $$f $(COMMON_SRCS) $(PROTO_SRCS) \
		    $(CONFIG_SRCS) $(DAEMON_SRCS) $(DAEMON_LIBS) || exit 1; \
	done

format:
	clang-format -i common/*.[ch] proto/*.[ch] config/*.[ch] daemon/*.[ch] \
	    client/*.[ch] sync/*.[ch]

# Installs under $(DESTDIR)$(PREFIX); works without root when DESTDIR is
# set.  The systemd units name the installed programs (the sources say
# /usr/sbin, /usr/bin and /etc), and a config already in place is never
# replaced: the new example goes next to it as *.conf.example.
SYSCONFDIR	?= /etc
SYSTEMDUNITDIR	?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR	?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR	?= $(PREFIX)/lib/tmpfiles.d
MANDIR		?= $(PREFIX)/share/man
# The shipped integration catalog; wfvaultd reads /usr/share/wfvault/
# integrations unless its config names another integrations_dir.
INTEGRATIONSDIR	?= $(PREFIX)/share/wfvault/integrations
BASHCOMPDIR	?= $(PREFIX)/share/bash-completion/completions
UNITS		= wfvaultd.service wfvaultd.socket wfvault-sync.service \
		  wfvault-backup.service wfvault-backup.timer
MAN_PAGES	= client/wfvault.1 daemon/wfvaultd.conf.5 daemon/wfvaultd.8 \
		  sync/wfvault-sync.8
CONFIGS		= wfvaultd wfvault-sync
INSTALL_PATHS	= sed -e 's|/usr/sbin/wfvaultd|$(PREFIX)/sbin/wfvaultd|g' \
		      -e 's|/usr/libexec/wfvault|$(LIBEXECDIR)|g' \
		      -e 's|/usr/bin/wfvault|$(PREFIX)/bin/wfvault|g' \
		      -e 's|/etc/wfvault|$(SYSCONFDIR)/wfvault|g'

install: all
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BUILD)/wfvaultd $(DESTDIR)$(PREFIX)/sbin/wfvaultd
	install -m 0755 $(BUILD)/wfvault $(DESTDIR)$(PREFIX)/bin/wfvault
	install -m 0755 $(BUILD)/wfvault-sync $(DESTDIR)$(PREFIX)/bin/wfvault-sync
	install -d $(DESTDIR)$(LIBEXECDIR)
	install -m 0755 $(BUILD)/wfvault-test $(DESTDIR)$(LIBEXECDIR)/wfvault-test
	$(INSTALL_PATHS) systemd/wfvault-backup.sh >$(DESTDIR)$(LIBEXECDIR)/wfvault-backup.tmp
	chmod 0755 $(DESTDIR)$(LIBEXECDIR)/wfvault-backup.tmp
	mv -f $(DESTDIR)$(LIBEXECDIR)/wfvault-backup.tmp $(DESTDIR)$(LIBEXECDIR)/wfvault-backup
	install -d $(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(SYSUSERSDIR) \
	    $(DESTDIR)$(TMPFILESDIR)
	@set -e; for u in $(UNITS); do \
		echo "install systemd/$$u -> $(DESTDIR)$(SYSTEMDUNITDIR)/$$u"; \
		$(INSTALL_PATHS) systemd/$$u >$(DESTDIR)$(SYSTEMDUNITDIR)/$$u.tmp; \
		chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/$$u.tmp; \
		mv -f $(DESTDIR)$(SYSTEMDUNITDIR)/$$u.tmp \
		    $(DESTDIR)$(SYSTEMDUNITDIR)/$$u; \
	done
	install -m 0644 systemd/wfvault.sysusers $(DESTDIR)$(SYSUSERSDIR)/wfvault.conf
	$(INSTALL_PATHS) systemd/wfvault.tmpfiles >$(DESTDIR)$(TMPFILESDIR)/wfvault.conf.tmp
	chmod 0644 $(DESTDIR)$(TMPFILESDIR)/wfvault.conf.tmp
	mv -f $(DESTDIR)$(TMPFILESDIR)/wfvault.conf.tmp $(DESTDIR)$(TMPFILESDIR)/wfvault.conf
	@set -e; for m in $(MAN_PAGES); do \
		d=$(DESTDIR)$(MANDIR)/man$${m##*.}; \
		install -d $$d; \
		echo "install -m 0644 $$m $$d/"; \
		install -m 0644 $$m $$d/; \
	done
	install -d $(DESTDIR)$(INTEGRATIONSDIR)
	install -m 0644 integrations/*.json $(DESTDIR)$(INTEGRATIONSDIR)/
	install -d $(DESTDIR)$(BASHCOMPDIR)
	install -m 0644 completion/wfvault.bash $(DESTDIR)$(BASHCOMPDIR)/wfvault
	@if [ "$(INTEGRATIONSDIR)" != /usr/share/wfvault/integrations ]; then \
		echo "make install: wfvaultd reads /usr/share/wfvault/integrations; add 'integrations_dir $(INTEGRATIONSDIR)' to $(SYSCONFDIR)/wfvault/wfvaultd.conf"; \
	fi
	install -d -m 0750 $(DESTDIR)$(SYSCONFDIR)/wfvault
	@set -e; for c in $(CONFIGS); do \
		dst=$(DESTDIR)$(SYSCONFDIR)/wfvault/$$c.conf; \
		if [ -e $$dst ] || [ -L $$dst ]; then \
			install -m 0640 config/$$c.conf.example $$dst.example; \
			echo "make install: kept $$dst; the new example is $$dst.example"; \
		else \
			install -m 0640 config/$$c.conf.example $$dst; \
			echo "install -m 0640 config/$$c.conf.example $$dst"; \
		fi; \
	done
	@if [ -z "$(DESTDIR)" ]; then \
		echo "make install: now run systemd-sysusers, systemd-tmpfiles --create and systemctl daemon-reload (see README, Operations)"; \
	fi

# Removes what install put, except the configs: an edited config stays
# (an unedited one, equal to its example, goes), and so does what else
# is in $(SYSCONFDIR)/wfvault (credentials), the store and the users.
uninstall:
	rm -f $(DESTDIR)$(PREFIX)/sbin/wfvaultd $(DESTDIR)$(PREFIX)/bin/wfvault \
	    $(DESTDIR)$(PREFIX)/bin/wfvault-sync \
	    $(DESTDIR)$(LIBEXECDIR)/wfvault-test \
	    $(DESTDIR)$(LIBEXECDIR)/wfvault-backup
	@rmdir $(DESTDIR)$(LIBEXECDIR) 2>/dev/null || true
	rm -f $(addprefix $(DESTDIR)$(SYSTEMDUNITDIR)/,$(UNITS)) \
	    $(DESTDIR)$(SYSUSERSDIR)/wfvault.conf $(DESTDIR)$(TMPFILESDIR)/wfvault.conf
	rm -f $(foreach m,$(MAN_PAGES),$(DESTDIR)$(MANDIR)/man$(subst .,,$(suffix $(m)))/$(notdir $(m)))
	rm -f $(addprefix $(DESTDIR)$(INTEGRATIONSDIR)/,$(notdir $(wildcard integrations/*.json)))
	@rmdir $(DESTDIR)$(INTEGRATIONSDIR) $(DESTDIR)$(PREFIX)/share/wfvault 2>/dev/null || true
	rm -f $(DESTDIR)$(BASHCOMPDIR)/wfvault
	@set -e; for c in $(CONFIGS); do \
		dst=$(DESTDIR)$(SYSCONFDIR)/wfvault/$$c.conf; \
		rm -f $$dst.example; \
		if [ -f $$dst ] && cmp -s config/$$c.conf.example $$dst; then \
			echo "rm -f $$dst (unedited)"; rm -f $$dst; \
		elif [ -e $$dst ]; then \
			echo "make uninstall: kept the edited $$dst"; \
		fi; \
	done
	@rmdir $(DESTDIR)$(SYSCONFDIR)/wfvault 2>/dev/null || \
	    echo "make uninstall: kept $(DESTDIR)$(SYSCONFDIR)/wfvault and what is left in it"

clean:
	rm -rf build build-san

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
