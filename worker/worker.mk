# worker/worker.mk -- builds guichet-worker and guichetctl.
#
# Included by the top-level Makefile (`include worker/worker.mk`, after
# backend/backend.mk), run from the repository root.  Links build/libgchb.a
# (backend/backend.mk) and build/libgch.a (engine/engine.mk).
#
#   make build/guichet-worker build/guichetctl     the programs
#   make worker-asan                                ASan+UBSan variants
#                                                   (build/asan/...)

GCHW_CC      ?= $(CC)
GCHW_CFLAGS  := $(GCHB_CFLAGS)
GCHW_LIBS    := $(GCHB_LIBS) -lyajl
GCHW_ASAN    := -fsanitize=address,undefined -fno-omit-frame-pointer

GCHW_COMMON  := publish load persist reaper mail check overlay sepa
GCHW_HDRS    := worker/gchw.h $(GCHB_HDRS)

GCHW_OBJS    := $(GCHW_COMMON:%=build/worker/%.o)
GCHW_AOBJS   := $(GCHW_COMMON:%=build/asan/worker/%.o)

.PHONY: worker worker-asan worker-clean

worker: build/guichet-worker build/guichetctl

worker-asan: build/asan/guichet-worker build/asan/guichetctl

build/worker/%.o: worker/%.c $(GCHW_HDRS)
	@mkdir -p $(dir $@)
	$(GCHW_CC) $(GCHW_CFLAGS) -c -o $@ $<

build/asan/worker/%.o: worker/%.c $(GCHW_HDRS)
	@mkdir -p $(dir $@)
	$(GCHW_CC) $(GCHW_CFLAGS) $(GCHW_ASAN) -c -o $@ $<

build/guichet-worker: build/worker/main.o $(GCHW_OBJS) $(GCHB_LIB) \
                      build/libgch.a
	$(GCHW_CC) -o $@ $^ $(GCHW_LIBS)

build/guichetctl: build/worker/ctl.o $(GCHW_OBJS) $(GCHB_LIB) \
                  build/libgch.a
	$(GCHW_CC) -o $@ $^ $(GCHW_LIBS)

build/asan/guichet-worker: build/asan/worker/main.o $(GCHW_AOBJS) \
                           $(GCHB_ALIB) build/libgch.a
	$(GCHW_CC) $(GCHW_ASAN) -o $@ $^ $(GCHW_LIBS)

build/asan/guichetctl: build/asan/worker/ctl.o $(GCHW_AOBJS) $(GCHB_ALIB) \
                       build/libgch.a
	$(GCHW_CC) $(GCHW_ASAN) -o $@ $^ $(GCHW_LIBS)

worker-clean:
	rm -rf build/worker build/asan/worker build/guichet-worker \
	       build/guichetctl build/asan/guichet-worker build/asan/guichetctl
