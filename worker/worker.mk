# worker/worker.mk -- builds guichet-worker and libgchw.a (the worker's
# tasks, which guichetctl links too: ctl/ctl.mk).
#
# Included by the top-level Makefile (`include worker/worker.mk`, after
# backend/backend.mk), run from the repository root.  Links build/libgchb.a
# (backend/backend.mk) and build/libgch.a (engine/engine.mk).
#
#   make build/guichet-worker           the program
#   make worker-asan                    its ASan+UBSan variant
#                                       (build/asan/...)

GCHW_CC      ?= $(CC)
GCHW_CFLAGS  := $(GCHB_CFLAGS) -Iworker
GCHW_LIBS    := $(GCHB_LIBS) -lyajl
GCHW_ASAN    := $(GCHB_ASAN)

GCHW_TASKS   := publish rebuild counters persist batch copy stream reaper \
                recount release mail overlay promote cmds offer waitmirror \
                draw drawentries
GCHW_HDRS    := worker/gchw.h worker/gchw_publish.h worker/gchw_batch.h \
                worker/gchw_reaper.h worker/gchw_draw.h $(GCHB_HDRS)

GCHW_OBJS    := $(GCHW_TASKS:%=build/worker/%.o)
GCHW_AOBJS   := $(GCHW_TASKS:%=build/asan/worker/%.o)

GCHW_LIB     := build/libgchw.a
GCHW_ALIB    := build/asan/libgchw.a

.PHONY: worker worker-asan worker-clean

worker: build/guichet-worker

worker-asan: build/asan/guichet-worker

build/worker/%.o: worker/%.c $(GCHW_HDRS)
	@mkdir -p $(dir $@)
	$(GCHW_CC) $(GCHW_CFLAGS) -c -o $@ $<

build/asan/worker/%.o: worker/%.c $(GCHW_HDRS)
	@mkdir -p $(dir $@)
	$(GCHW_CC) $(GCHW_CFLAGS) $(GCHW_ASAN) -c -o $@ $<

$(GCHW_LIB): $(GCHW_OBJS)
	rm -f $@
	ar rcs $@ $^

$(GCHW_ALIB): $(GCHW_AOBJS)
	rm -f $@
	ar rcs $@ $^

build/guichet-worker: build/worker/main.o $(GCHW_LIB) $(GCHB_LIB) \
                      build/libgch.a
	$(GCHW_CC) -o $@ $^ $(GCHW_LIBS)

build/asan/guichet-worker: build/asan/worker/main.o $(GCHW_ALIB) \
                           $(GCHB_ALIB) build/libgch.a
	$(GCHW_CC) $(GCHW_ASAN) -o $@ $^ $(GCHW_LIBS)

worker-clean:
	rm -rf build/worker build/asan/worker $(GCHW_LIB) $(GCHW_ALIB) \
	       build/guichet-worker build/asan/guichet-worker
