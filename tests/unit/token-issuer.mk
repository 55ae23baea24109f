# tests/unit: no-card mode (`transport = none`): the issuer token and its
# software keys, and the issuer's side of secure key injection, through the
# module loaded with dlopen as in token.mk.
TOKEN_ISSUER_TESTS = \
	tests/unit/test-token-issuer \
	tests/unit/test-token-issuer-inject
check_PROGRAMS += $(TOKEN_ISSUER_TESTS)
TESTS += $(TOKEN_ISSUER_TESTS)

TOKEN_ISSUER_COMMON = $(TOKEN_TEST_COMMON) \
	tests/unit/test-token-issuer-util.c tests/unit/test-token-issuer-util.h

tests_unit_test_token_issuer_SOURCES = tests/unit/test-token-issuer.c $(TOKEN_ISSUER_COMMON)
tests_unit_test_token_issuer_CFLAGS = $(TOKEN_TEST_CFLAGS)
tests_unit_test_token_issuer_LDADD = $(TOKEN_TEST_LDADD)
tests_unit_test_token_issuer_DEPENDENCIES = src/token/sks-pkcs11.la tests/unit/libtestlib.la

tests_unit_test_token_issuer_inject_SOURCES = tests/unit/test-token-issuer-inject.c \
	$(TOKEN_ISSUER_COMMON)
tests_unit_test_token_issuer_inject_CFLAGS = $(TOKEN_TEST_CFLAGS)
tests_unit_test_token_issuer_inject_LDADD = $(TOKEN_TEST_LDADD)
tests_unit_test_token_issuer_inject_DEPENDENCIES = src/token/sks-pkcs11.la tests/unit/libtestlib.la
