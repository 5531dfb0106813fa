# engine.mk -- builds the Guichet engine (libgch.a) and runs its tests.
#
# Included by the top-level Makefile (`include engine/engine.mk`) and usable
# alone from the repository root: `make -f engine/engine.mk engine-test`.
# Every engine/src/*.c goes into build/libgch.a; every engine/tests/*.c into
# build/engine-tests.  Targets: engine (the library), engine-test,
# engine-valgrind, engine-asan (AddressSanitizer + UBSan build and run).

GCH_CC        ?= cc
GCH_DEPS_CFLAGS := $(shell pkg-config --cflags yajl libsodium 2>/dev/null)
GCH_CFLAGS    := -std=gnu11 -O2 -g -Wall -Wextra -Werror -Iengine/include \
                 $(GCH_DEPS_CFLAGS)
GCH_LIBS      := -lyajl -lsodium -lhiredis
GCH_SAN       := -fsanitize=address,undefined -fno-omit-frame-pointer \
                 -fno-sanitize-recover=all

GCH_SRCS      := $(wildcard engine/src/*.c)
GCH_HDRS      := $(wildcard engine/include/*.h engine/src/*.h)
GCH_OBJS      := $(patsubst engine/src/%.c,build/engine/%.o,$(GCH_SRCS))
GCH_ASAN_OBJS := $(patsubst engine/src/%.c,build/engine-asan/%.o,$(GCH_SRCS))
GCH_TEST_SRCS := $(wildcard engine/tests/*.c)
GCH_TEST_HDRS := $(wildcard engine/tests/*.h)

.PHONY: engine engine-test engine-valgrind engine-asan engine-clean

engine: build/libgch.a

build/engine/%.o: engine/src/%.c $(GCH_HDRS)
	@mkdir -p $(dir $@)
	$(GCH_CC) $(GCH_CFLAGS) -c $< -o $@

build/libgch.a: $(GCH_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

build/engine-tests: $(GCH_TEST_SRCS) $(GCH_TEST_HDRS) build/libgch.a
	$(GCH_CC) $(GCH_CFLAGS) -Iengine/src -o $@ $(GCH_TEST_SRCS) \
	    build/libgch.a $(GCH_LIBS)

engine-test: build/engine-tests
	cd engine/tests && ../../build/engine-tests

engine-valgrind: build/engine-tests
	cd engine/tests && GCH_TEST_SLOW=1 valgrind -q --error-exitcode=1 --leak-check=full \
	    --errors-for-leak-kinds=definite,indirect,possible \
	    ../../build/engine-tests > /dev/null

build/engine-asan/%.o: engine/src/%.c $(GCH_HDRS)
	@mkdir -p $(dir $@)
	$(GCH_CC) $(GCH_CFLAGS) $(GCH_SAN) -c $< -o $@

build/engine-tests-asan: $(GCH_TEST_SRCS) $(GCH_TEST_HDRS) $(GCH_ASAN_OBJS)
	$(GCH_CC) $(GCH_CFLAGS) $(GCH_SAN) -Iengine/src -o $@ \
	    $(GCH_TEST_SRCS) $(GCH_ASAN_OBJS) $(GCH_LIBS)

engine-asan: build/engine-tests-asan
	cd engine/tests && ../../build/engine-tests-asan

engine-clean:
	rm -rf build/engine build/engine-asan build/libgch.a \
	    build/engine-tests build/engine-tests-asan
