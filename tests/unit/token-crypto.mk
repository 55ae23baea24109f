# tests/unit: the token's cryptographic operations and the local issuer.
TOKEN_CRYPTO_TESTS = tests/unit/test-local-issuer
check_PROGRAMS += $(TOKEN_CRYPTO_TESTS)
TESTS += $(TOKEN_CRYPTO_TESTS)

tests_unit_test_local_issuer_SOURCES = tests/unit/test-local-issuer.c
tests_unit_test_local_issuer_CFLAGS = $(AM_CFLAGS) $(CRYPTO_CFLAGS) $(CHECK_CFLAGS)
tests_unit_test_local_issuer_LDADD = src/provision/libsksprovision.la src/card/libskscard.la \
	src/issuer/libsksissuer.la src/protocol/libsksproto.la $(CHECK_LIBS) $(CRYPTO_LIBS) \
	$(SQLITE_LIBS)
