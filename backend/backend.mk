# backend/backend.mk -- builds libgchb.a, what the back-end programs share.
#
# Included by the top-level Makefile before worker/worker.mk and
# office/office.mk, run from the repository root.  guichet-worker,
# guichetctl and guichet-office link build/libgchb.a (settings, logging,
# PostgreSQL and Redis connections, secrets, buffers, invoices, staff
# publication, Redis Cluster routing: backend/gchb.h) before build/libgch.a
# (the engine).
#
#   make build/libgchb.a              the library
#   make build/asan/libgchb.a         its ASan+UBSan variant

GCHB_CC      ?= $(CC)
GCHB_CFLAGS  := -std=gnu11 -O2 -g -Wall -Wextra -Werror -Iengine/include \
                -Ibackend -I$(shell pg_config --includedir)
GCHB_LIBS    := -lhiredis -lpq -lsodium -lhpdf -lm -lsystemd -lpthread
GCHB_ASAN    := -fsanitize=address,undefined -fno-omit-frame-pointer

GCHB_SRCS    := conf util db buf invoice staff migrate catalogue cluster \
                cluster_cmd cluster_node towns
GCHB_HDRS    := backend/gchb.h backend/gchb_cluster.h engine/include/gch.h \
                engine/include/gch_cluster.h

GCHB_OBJS    := $(GCHB_SRCS:%=build/backend/%.o)
GCHB_AOBJS   := $(GCHB_SRCS:%=build/asan/backend/%.o)

GCHB_LIB     := build/libgchb.a
GCHB_ALIB    := build/asan/libgchb.a

.PHONY: backend backend-clean

backend: $(GCHB_LIB)

build/backend/%.o: backend/%.c $(GCHB_HDRS)
	@mkdir -p $(dir $@)
	$(GCHB_CC) $(GCHB_CFLAGS) -c -o $@ $<

build/asan/backend/%.o: backend/%.c $(GCHB_HDRS)
	@mkdir -p $(dir $@)
	$(GCHB_CC) $(GCHB_CFLAGS) $(GCHB_ASAN) -c -o $@ $<

$(GCHB_LIB): $(GCHB_OBJS)
	rm -f $@
	ar rcs $@ $^

$(GCHB_ALIB): $(GCHB_AOBJS)
	rm -f $@
	ar rcs $@ $^

backend-clean:
	rm -rf build/backend build/asan/backend $(GCHB_LIB) $(GCHB_ALIB)

# tests/cluster/probe.c: a test driver of the programs' Redis connection
# (tests/integration/test_cluster_backend.py).
build/cluster-probe: tests/cluster/probe.c $(GCHB_LIB) build/libgch.a
	$(GCHB_CC) $(GCHB_CFLAGS) -o $@ $< $(GCHB_LIB) build/libgch.a \
	    $(GCHB_LIBS) -lyajl
