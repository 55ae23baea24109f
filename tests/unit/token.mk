# tests/unit: the PKCS#11 module, loaded with dlopen from the build tree and
# driven only through C_GetFunctionList. Cards with keys are prepared by
# testlib (the real issuer) in each test's own state directory.
TOKEN_TESTS = \
	tests/unit/test-token-init \
	tests/unit/test-token-api \
	tests/unit/test-token-login \
	tests/unit/test-token-objects \
	tests/unit/test-token-threads
check_PROGRAMS += $(TOKEN_TESTS)
TESTS += $(TOKEN_TESTS)

TOKEN_TEST_CFLAGS = $(AM_CFLAGS) $(CRYPTO_CFLAGS) $(P11KIT_CFLAGS) $(CHECK_CFLAGS) \
	-DSKS_PKCS11_MODULE='"$(abs_top_builddir)/src/token/.libs/sks-pkcs11.so"'
TOKEN_TEST_LDADD = tests/unit/libtestlib.la $(CHECK_LIBS) $(CRYPTO_LIBS) $(SQLITE_LIBS) \
	-ldl -lpthread
TOKEN_TEST_COMMON = tests/unit/test-token-util.c tests/unit/test-token-util.h

tests_unit_test_token_init_SOURCES = tests/unit/test-token-init.c $(TOKEN_TEST_COMMON)
tests_unit_test_token_init_CFLAGS = $(TOKEN_TEST_CFLAGS)
tests_unit_test_token_init_LDADD = $(TOKEN_TEST_LDADD)
tests_unit_test_token_init_DEPENDENCIES = src/token/sks-pkcs11.la tests/unit/libtestlib.la

tests_unit_test_token_api_SOURCES = tests/unit/test-token-api.c $(TOKEN_TEST_COMMON)
tests_unit_test_token_api_CFLAGS = $(TOKEN_TEST_CFLAGS)
tests_unit_test_token_api_LDADD = $(TOKEN_TEST_LDADD)
tests_unit_test_token_api_DEPENDENCIES = src/token/sks-pkcs11.la tests/unit/libtestlib.la

tests_unit_test_token_login_SOURCES = tests/unit/test-token-login.c $(TOKEN_TEST_COMMON)
tests_unit_test_token_login_CFLAGS = $(TOKEN_TEST_CFLAGS)
tests_unit_test_token_login_LDADD = $(TOKEN_TEST_LDADD)
tests_unit_test_token_login_DEPENDENCIES = src/token/sks-pkcs11.la tests/unit/libtestlib.la

tests_unit_test_token_objects_SOURCES = tests/unit/test-token-objects.c $(TOKEN_TEST_COMMON)
tests_unit_test_token_objects_CFLAGS = $(TOKEN_TEST_CFLAGS)
tests_unit_test_token_objects_LDADD = $(TOKEN_TEST_LDADD)
tests_unit_test_token_objects_DEPENDENCIES = src/token/sks-pkcs11.la tests/unit/libtestlib.la

tests_unit_test_token_threads_SOURCES = tests/unit/test-token-threads.c $(TOKEN_TEST_COMMON)
tests_unit_test_token_threads_CFLAGS = $(TOKEN_TEST_CFLAGS)
tests_unit_test_token_threads_LDADD = $(TOKEN_TEST_LDADD)
tests_unit_test_token_threads_DEPENDENCIES = src/token/sks-pkcs11.la tests/unit/libtestlib.la
