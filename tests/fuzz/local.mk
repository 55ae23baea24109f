# tests/fuzz: libFuzzer targets (configure --enable-fuzzing, CC=clang).
EXTRA_DIST += tests/fuzz/fuzz_apdu.c tests/fuzz/run-fuzz.sh
if ENABLE_FUZZING
noinst_PROGRAMS += tests/fuzz/fuzz-apdu
tests_fuzz_fuzz_apdu_SOURCES = tests/fuzz/fuzz_apdu.c
tests_fuzz_fuzz_apdu_CFLAGS = $(AM_CFLAGS) -fsanitize=fuzzer
tests_fuzz_fuzz_apdu_LDFLAGS = -fsanitize=fuzzer
tests_fuzz_fuzz_apdu_LDADD = src/card/libskscard.la
endif
