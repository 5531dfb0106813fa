# fuzz.mk -- libFuzzer harnesses for every parser of outside input: booking
# requests, town files and catalogues, tokens, login and absence bodies,
# uploaded documents (type by content, file names), IBAN and BIC, Redis
# Cluster slot maps and redirections, the compact demandes Redis hands
# back.  Included by
# the top-level Makefile.  `make fuzz` runs each for FUZZ_SECONDS (default
# 60) from its seed corpus in fuzz/corpus/<name>/ (new finds go to
# build/fuzz/corpus/<name>/); `make fuzz-smoke` replays the seed corpora
# once (used by `make test`).  A crash found becomes a file in
# fuzz/corpus/<name>/ so that the smoke run replays it forever.

FUZZ_CC       ?= clang
FUZZ_SECONDS  ?= 60
FUZZ_NAMES    := booking town token login absence sniff iban cluster demande
FUZZ_CFLAGS   := -g -O1 -fsanitize=fuzzer,address,undefined \
                 -fno-sanitize-recover=all -Iengine/include -Iengine/src \
                 $(shell pkg-config --cflags yajl libsodium 2>/dev/null)
FUZZ_LIBS     := -lyajl -lsodium -lhiredis
FUZZ_BINS     := $(patsubst %,build/fuzz/fuzz_%,$(FUZZ_NAMES))

.PHONY: fuzz fuzz-build fuzz-smoke

fuzz-build: $(FUZZ_BINS)

build/fuzz/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz_common.h $(wildcard engine/src/*.c) $(wildcard engine/src/*.h) $(wildcard engine/include/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< $(wildcard engine/src/*.c) $(FUZZ_LIBS)

fuzz: fuzz-build
	@for n in $(FUZZ_NAMES); do \
	    mkdir -p build/fuzz/corpus/$$n; \
	    echo "fuzz_$$n: $(FUZZ_SECONDS) s"; \
	    build/fuzz/fuzz_$$n -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	        build/fuzz/corpus/$$n fuzz/corpus/$$n 2>&1 \
	        | grep -E 'stat::number_of_executed_units|stat::new_units_added|ERROR|SUMMARY' \
	        || exit 1; \
	done

fuzz-smoke: fuzz-build
	@for n in $(FUZZ_NAMES); do \
	    build/fuzz/fuzz_$$n -runs=0 fuzz/corpus/$$n >/dev/null 2>&1 \
	        && echo "ok - fuzz corpus replay $$n" \
	        || echo "not ok - fuzz corpus replay $$n"; \
	done
