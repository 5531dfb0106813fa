# bench.mk -- the opening-day rush benchmark (issue 10), included by the
# top-level Makefile.
#
#   make bench          bench/run (under 10 minutes): ceiling, single-cell at
#                       64/256/1024 connections, refusals, PostgreSQL peer,
#                       multi-cell, worker, cost growth, then the rush and the
#                       invariant checker.  Results in bench/out/.
#   make bench-quick    bench/run --quick (under 2 minutes, a smoke test)
#   make bench-rush     only the rush client, build/rush
#   make bench-cluster  bench/cluster.py: one Redis against a 3-master
#                       cluster, with and without WAIT (issue 21)
#
# docs/benchmarks.md says how to read the results.

BENCH_CFLAGS := -O2 -Wall -Wextra -Werror

.PHONY: bench bench-quick bench-rush bench-cluster

bench-rush: build/rush

build/rush: bench/rush.c
	@mkdir -p build
	$(CC) $(BENCH_CFLAGS) -o $@ $<

bench: build build/rush
	bench/run

bench-quick: build build/rush
	bench/run --quick

bench-cluster: build build/rush
	bench/cluster.py
