# tests/unit: the token's cryptographic operations (through the built
# module, dlopened as applications do) and the local issuer (against the
# card engine directly).
TOKEN_CRYPTO_TESTS = tests/unit/test-local-issuer tests/unit/test-token-crypto
check_PROGRAMS += $(TOKEN_CRYPTO_TESTS)
TESTS += $(TOKEN_CRYPTO_TESTS)

tests_unit_test_local_issuer_SOURCES = tests/unit/test-local-issuer.c
tests_unit_test_local_issuer_CFLAGS = $(AM_CFLAGS) $(CRYPTO_CFLAGS) $(CHECK_CFLAGS)
tests_unit_test_local_issuer_LDADD = src/provision/libsksprovision.la src/card/libskscard.la \
	src/issuer/libsksissuer.la src/protocol/libsksproto.la $(CHECK_LIBS) $(CRYPTO_LIBS) \
	$(SQLITE_LIBS)

tests_unit_test_token_crypto_SOURCES = tests/unit/test-token-crypto.c
tests_unit_test_token_crypto_CPPFLAGS = $(AM_CPPFLAGS) \
	-DSKS_MODULE_PATH='"$(abs_top_builddir)/src/token/.libs/sks-pkcs11.so"'
tests_unit_test_token_crypto_CFLAGS = $(AM_CFLAGS) $(CRYPTO_CFLAGS) $(CHECK_CFLAGS) \
	$(P11KIT_CFLAGS)
tests_unit_test_token_crypto_LDADD = $(CHECK_LIBS) $(CRYPTO_LIBS) -ldl
# The module it loads must be built first.
tests_unit_test_token_crypto_DEPENDENCIES = src/token/sks-pkcs11.la
