# bench: sks-bench, the benchmark of sks-pkcs11 beside SoftHSMv2 and raw
# OpenSSL (bench/README.md). Built with everything else so that it keeps
# compiling; `make bench` runs the full benchmark on this build tree,
# `make bench BENCH_SHORT=1` the short one that CI runs.
noinst_PROGRAMS += bench/sks-bench
bench_sks_bench_SOURCES = \
	bench/bench_main.c bench/bench_main.h \
	bench/bench_util.c bench/bench_util.h \
	bench/bench_sign.c \
	bench/bench_load.c \
	bench/bench_scale.c \
	bench/bench_populate.c \
	bench/bench_prov.c bench/bench_prov.h \
	bench/bench_inject.c \
	bench/bench_apdu.c \
	bench/bench_report.c
bench_sks_bench_CFLAGS = $(AM_CFLAGS) -pthread $(CRYPTO_CFLAGS) $(P11KIT_CFLAGS) $(PCSC_CFLAGS)
bench_sks_bench_LDADD = src/issuer/libsksissuer.la src/card/libskscard.la $(PCSC_LIBS) \
	$(CRYPTO_LIBS) -ldl -lpthread

EXTRA_DIST += bench/run-bench.sh bench/README.md

.PHONY: bench
bench: all
	BENCH_SHORT='$(BENCH_SHORT)'; \
	bash '$(top_srcdir)/bench/run-bench.sh' $${BENCH_SHORT:+--short} '$(abs_top_builddir)'
