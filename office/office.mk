# office/office.mk -- builds guichet-office (the family space and the back
# office, docs/office.md).  Included by the top-level Makefile after
# backend/backend.mk; links build/libgchb.a (settings, logging, PostgreSQL
# and Redis, invoices, staff publication: backend/gchb.h) and
# build/libgch.a (whose strict JSON reader and writer, the public
# engine/include/gch_json.h, it uses for request bodies and answers).
#
#   make build/guichet-office          the program
#   make build/asan/guichet-office     its ASan+UBSan variant

GCHO_CFLAGS  := $(GCHB_CFLAGS) -pthread
GCHO_LIBS    := $(GCHB_LIBS) -lyajl -lmicrohttpd -lcurl -pthread

GCHO_SRCS    := main http reply body store auth hash decision enrolment document \
                required message account payment invoicing debit contact \
                activation entourage qf staff calendar activity catalogue \
                places family archive merge counter credit daily notice town \
                pdf mydata publication coresp waitlist request attachment \
                absence
GCHO_HDRS    := office/office.h $(GCHB_HDRS) engine/include/gch_json.h

GCHO_OBJS    := $(GCHO_SRCS:%=build/office/%.o)
GCHO_AOBJS   := $(GCHO_SRCS:%=build/asan/office/%.o)

.PHONY: office office-asan

office: build/guichet-office

office-asan: build/asan/guichet-office

build/office/%.o: office/%.c $(GCHO_HDRS)
	@mkdir -p $(dir $@)
	$(GCHB_CC) $(GCHO_CFLAGS) -c -o $@ $<

build/asan/office/%.o: office/%.c $(GCHO_HDRS)
	@mkdir -p $(dir $@)
	$(GCHB_CC) $(GCHO_CFLAGS) $(GCHB_ASAN) -c -o $@ $<

build/guichet-office: $(GCHO_OBJS) $(GCHB_LIB) build/libgch.a
	$(GCHB_CC) -o $@ $^ $(GCHO_LIBS)

build/asan/guichet-office: $(GCHO_AOBJS) $(GCHB_ALIB) build/libgch.a
	$(GCHB_CC) $(GCHB_ASAN) -o $@ $^ $(GCHO_LIBS)
