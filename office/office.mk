# office/office.mk -- builds guichet-office (the family space and the back
# office, docs/office.md).  Included by the top-level Makefile; links the
# worker's common objects (settings, logging, PostgreSQL, publication)
# and build/libgch.a (whose strict JSON reader, engine/src/json.h, it
# uses for request bodies).
#
#   make build/guichet-office          the program
#   make build/asan/guichet-office     its ASan+UBSan variant

GCHO_CFLAGS  := $(GCHW_CFLAGS) -Iworker -Iengine/src -pthread
GCHO_LIBS    := $(GCHW_LIBS) -lmicrohttpd -lcurl -pthread

GCHO_SRCS    := main http hash enrolment document message account payment staff
GCHO_HDRS    := office/office.h $(GCHW_HDRS) engine/src/json.h

GCHO_OBJS    := $(GCHO_SRCS:%=build/office/%.o)
GCHO_AOBJS   := $(GCHO_SRCS:%=build/asan/office/%.o)

.PHONY: office office-asan

office: build/guichet-office

office-asan: build/asan/guichet-office

build/office/%.o: office/%.c $(GCHO_HDRS)
	@mkdir -p $(dir $@)
	$(GCHW_CC) $(GCHO_CFLAGS) -c -o $@ $<

build/asan/office/%.o: office/%.c $(GCHO_HDRS)
	@mkdir -p $(dir $@)
	$(GCHW_CC) $(GCHO_CFLAGS) $(GCHW_ASAN) -c -o $@ $<

build/guichet-office: $(GCHO_OBJS) $(GCHW_OBJS) build/libgch.a
	$(GCHW_CC) -o $@ $^ $(GCHO_LIBS)

build/asan/guichet-office: $(GCHO_AOBJS) $(GCHW_AOBJS) build/libgch.a
	$(GCHW_CC) $(GCHW_ASAN) -o $@ $^ $(GCHO_LIBS)
