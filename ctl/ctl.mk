# ctl/ctl.mk -- builds guichetctl, the operators' tool (docs/worker.md).
#
# Included by the top-level Makefile after backend/backend.mk and
# worker/worker.mk, run from the repository root.  Links build/libgchw.a
# (the worker's tasks: publication, the persister's lag), build/libgchb.a
# (settings, connections, invoices) and build/libgch.a (the engine: town
# files, tokens).
#
#   make build/guichetctl               the program
#   make ctl-asan                       its ASan+UBSan variant

GCHC_CFLAGS  := $(GCHW_CFLAGS) -Ictl
GCHC_SRCS    := ctl load check sepa invite draw
GCHC_HDRS    := ctl/gchc.h $(GCHW_HDRS)

GCHC_OBJS    := $(GCHC_SRCS:%=build/ctl/%.o)
GCHC_AOBJS   := $(GCHC_SRCS:%=build/asan/ctl/%.o)

.PHONY: ctl ctl-asan ctl-clean

ctl: build/guichetctl

ctl-asan: build/asan/guichetctl

build/ctl/%.o: ctl/%.c $(GCHC_HDRS)
	@mkdir -p $(dir $@)
	$(GCHW_CC) $(GCHC_CFLAGS) -c -o $@ $<

build/asan/ctl/%.o: ctl/%.c $(GCHC_HDRS)
	@mkdir -p $(dir $@)
	$(GCHW_CC) $(GCHC_CFLAGS) $(GCHW_ASAN) -c -o $@ $<

build/guichetctl: $(GCHC_OBJS) $(GCHW_LIB) $(GCHB_LIB) build/libgch.a
	$(GCHW_CC) -o $@ $^ $(GCHW_LIBS)

build/asan/guichetctl: $(GCHC_AOBJS) $(GCHW_ALIB) $(GCHB_ALIB) build/libgch.a
	$(GCHW_CC) $(GCHW_ASAN) -o $@ $^ $(GCHW_LIBS)

ctl-clean:
	rm -rf build/ctl build/asan/ctl build/guichetctl build/asan/guichetctl
