# Makefile -- every entry point of Guichet.
#
#   make run    installs what is missing, builds, starts Redis, PostgreSQL,
#               the worker and nginx with the module on 127.0.0.1:8080;
#               again, starts what stopped and keeps every state (README)
#   make run-cluster  the same on a Redis Cluster of 3 masters and 3
#               replicas (127.0.0.1:7001-7006), state in var/cluster/
#   make test   builds and runs every suite (tests/run-all), ends with
#               one line "N passed, N failed"
#   make deb    the Debian packages (debian/, issue 27) in build/deb/:
#               libnginx-mod-http-guichet and guichet; docs/install.md
#   make faults issue 8's fault matrix (tests/fault/matrix.py, as root):
#               one line per fault survived or FAILED, then a summary
#
# Each room brings its own fragment: the engine (engine/engine.mk), the
# back-end library (backend/backend.mk), the worker (worker/worker.mk),
# guichetctl (ctl/ctl.mk), the office (office/office.mk), the fuzzers
# (fuzz/fuzz.mk) and the benchmark (bench/bench.mk); they are optional here so that a half-built tree still
# builds what it can.  The nginx module is built the way nginx builds dynamic
# modules: a private copy of Debian's nginx source (/usr/share/nginx/src,
# package nginx-dev) configured with the distribution's own flags plus
# --add-dynamic-module, so the .so loads into the stock /usr/sbin/nginx.

.DEFAULT_GOAL := build

SHELL := /bin/bash

NGX_SRC    ?= /usr/share/nginx/src
BUILD      := build
MODULE_SO  := $(BUILD)/ngx_http_guichet_module.so
ASAN_SO    := $(BUILD)/asan/ngx_http_guichet_module.so

MODULE_SRCS := config $(wildcard ngx_module/*.c ngx_module/*.h \
                 engine/include/*.h engine/src/*.c engine/src/*.h)

SANITIZE   := -fsanitize=address,undefined -fno-omit-frame-pointer

-include engine/engine.mk
-include backend/backend.mk
-include worker/worker.mk
-include ctl/ctl.mk
-include office/office.mk
-include fuzz/fuzz.mk
-include bench/bench.mk

# What "build" can make depends on which fragments exist yet.
BUILD_TARGETS := \
    $(if $(wildcard engine/engine.mk),$(BUILD)/libgch.a) \
    $(if $(wildcard backend/backend.mk),$(BUILD)/libgchb.a $(BUILD)/cluster-probe) \
    $(if $(wildcard worker/worker.mk),$(BUILD)/guichet-worker) \
    $(if $(wildcard ctl/ctl.mk),$(BUILD)/guichetctl) \
    $(if $(wildcard office/office.mk),$(BUILD)/guichet-office) \
    $(if $(wildcard ngx_module/*.c),$(MODULE_SO))

.PHONY: build deps run run-cluster stop test faults lint asan bench fuzz clean module deb

build: $(BUILD_TARGETS)

deps:
	@scripts/deps.sh

# --- the nginx module -------------------------------------------------

# $(call ngx_configure,<dir>,<extra cc opt>,<ld opt>): copy the nginx source
# into <dir> once, then run its ./configure with Debian's flags.
define ngx_configure
	@if [ ! -x $(1)/configure ]; then \
	    echo "copying $(NGX_SRC) to $(1)"; \
	    rm -rf $(1) && mkdir -p $(dir $(1)) && cp -r $(NGX_SRC) $(1); \
	fi
	cd $(1) && source $(NGX_SRC)/conf_flags && \
	    ./configure "$${NGX_CONF_FLAGS[@]}" \
	        --with-cc-opt="-I$(CURDIR)/engine/include $(2)" \
	        $(if $(3),--with-ld-opt="$(3)") \
	        --add-dynamic-module=$(CURDIR) > configure.log 2>&1 || \
	    { tail -n 30 configure.log; exit 1; }
endef

# configure runs again only when the add-on description (config) changes;
# nginx's own Makefile tracks the module's sources.
$(BUILD)/nginx-src/objs/Makefile: config
	$(call ngx_configure,$(BUILD)/nginx-src,,)

$(BUILD)/asan/nginx-src/objs/Makefile: config
	$(call ngx_configure,$(BUILD)/asan/nginx-src,$(SANITIZE),$(SANITIZE))

# The .so is replaced by a rename, never rewritten in place: a running nginx
# has it mapped (it takes the new one when restarted or upgraded in place,
# USR2 then QUIT, as make run does; not on reload).
$(MODULE_SO): $(BUILD)/nginx-src/objs/Makefile $(MODULE_SRCS)
	$(MAKE) -C $(BUILD)/nginx-src -f objs/Makefile modules
	cp $(BUILD)/nginx-src/objs/ngx_http_guichet_module.so $@.tmp
	mv -f $@.tmp $@

$(ASAN_SO): $(BUILD)/asan/nginx-src/objs/Makefile $(MODULE_SRCS)
	$(MAKE) -C $(BUILD)/asan/nginx-src -f objs/Makefile modules
	@mkdir -p $(dir $@)
	cp $(BUILD)/asan/nginx-src/objs/ngx_http_guichet_module.so $@.tmp
	mv -f $@.tmp $@

module: $(MODULE_SO)

# The stock nginx is not built with ASan: start it with
#   LD_PRELOAD=$$(gcc -print-file-name=libasan.so) /usr/sbin/nginx ...
# (tests/run-all and tests/integration/stack.py do this).
asan: $(ASAN_SO) $(if $(wildcard office/office.mk),$(BUILD)/asan/guichet-office)

# --- running ---------------------------------------------------------

run: deps build
	@scripts/run.sh

# The same on a Redis Cluster (3 masters, 3 replicas on 127.0.0.1:7001-7006,
# scripts/redis-cluster.sh), its state in var/cluster/: docs/architecture.md,
# "Redis Cluster".  make stop stops it too.
run-cluster: deps build
	@GUICHET_VAR=$${GUICHET_VAR:-$(CURDIR)/var/cluster} GUICHET_REDIS=cluster \
	    scripts/run.sh

stop:
	@scripts/stop.sh
	@if [ -z "$${GUICHET_VAR:-}" ] && [ -d var/cluster ]; then \
	    GUICHET_VAR=$(CURDIR)/var/cluster scripts/stop.sh; fi

# --- Debian packages ------------------------------------------------

# dpkg-buildpackage runs debian/rules, which runs `make build` (what build/
# holds is reused) and debhelper; the .debs, .buildinfo and .changes go to
# build/deb/ rather than to the checkout's parent directory.  lintian (when
# installed) then checks them: errors and warnings fail, each tag that
# stays is explained in debian/*.lintian-overrides.
DEB_DIR := $(BUILD)/deb

deb: build
	rm -rf $(DEB_DIR) && mkdir -p $(DEB_DIR)
	dpkg-buildpackage -b -uc -us \
	    --buildinfo-file=$(DEB_DIR)/guichet.buildinfo \
	    --buildinfo-option=-u$(DEB_DIR) \
	    --changes-file=$(DEB_DIR)/guichet.changes \
	    --changes-option=-u$(DEB_DIR)
	debian/rules clean
	@if command -v lintian > /dev/null; then \
	    echo "lintian $(DEB_DIR)/guichet.changes"; \
	    lintian --fail-on error,warning --info $(DEB_DIR)/guichet.changes; \
	else \
	    echo "make deb: lintian is not installed (apt-get install lintian)"; \
	fi

# --- checking --------------------------------------------------------

# tests/run-all builds first (a failed build counts as a failed check and
# the suites that need it fail too), so the summary line always comes.
test:
	@tests/run-all

# Each fault under a rush, then the invariant checker (1 to 3 minutes).
# The build is quiet so that the output is the matrix's lines.
faults:
	@$(MAKE) --no-print-directory -s build
	@/usr/bin/python3 tests/fault/matrix.py

lint:
	@scripts/lint.sh

# fuzz/fuzz.mk and bench/bench.mk define these when they exist.
ifeq ($(wildcard fuzz/fuzz.mk),)
fuzz:
	@echo "make fuzz: not yet (fuzz/fuzz.mk does not exist)"
endif

ifeq ($(wildcard bench/bench.mk),)
bench:
	@echo "make bench: not yet (bench/bench.mk does not exist)"
endif

clean:
	@if [ -f var/nginx/nginx.pid ] || [ -f var/redis/redis.pid ]; then \
	    echo "note: services may still run; 'make stop' stops them"; fi
	rm -rf $(BUILD) tests/out/run-all tests/out/run-all.*
