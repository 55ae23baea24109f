# tests/unit: the PKCS#11 module, loaded with dlopen from the build tree and
# driven only through C_GetFunctionList. Cards with keys are prepared by
# testlib (the real issuer) in each test's own state directory.
TOKEN_TESTS = \
	tests/unit/test-token-init \
	tests/unit/test-token-api \
	tests/unit/test-token-login \
	tests/unit/test-token-objects \
	tests/unit/test-token-threads \
	tests/unit/test-token-cache \
	tests/unit/test-token-inject
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

# Secure key injection, card side (C_UnwrapKey); the issuer side is tests/unit/inject-issuer.c.
tests_unit_test_token_inject_SOURCES = tests/unit/test-token-inject.c $(TOKEN_TEST_COMMON) \
	tests/unit/inject-issuer.c tests/unit/inject-issuer.h
tests_unit_test_token_inject_CFLAGS = $(TOKEN_TEST_CFLAGS)
tests_unit_test_token_inject_LDADD = $(TOKEN_TEST_LDADD)
tests_unit_test_token_inject_DEPENDENCIES = src/token/sks-pkcs11.la tests/unit/libtestlib.la

# The PC/SC transport without pcscd: result codes, the card table, and the
# backend and module with the service unreachable. Compiled with the
# sources it tests (they are not exported by the module).
check_PROGRAMS += tests/unit/test-pcsc
TESTS += tests/unit/test-pcsc
tests_unit_test_pcsc_SOURCES = tests/unit/test-pcsc.c $(TOKEN_TEST_COMMON) \
	src/transport/transport.c \
	src/transport/pcsc_status.c \
	src/transport/pcsc_readers.c \
	src/transport/pcsc_wait.c \
	src/transport/pcsc.c \
	src/token/tok_status.c \
	src/token/tok_cardtab.c
tests_unit_test_pcsc_CFLAGS = $(TOKEN_TEST_CFLAGS) $(PCSC_CFLAGS)
tests_unit_test_pcsc_LDADD = $(TOKEN_TEST_LDADD) src/protocol/libsksproto.la $(PCSC_LIBS)
tests_unit_test_pcsc_DEPENDENCIES = src/token/sks-pkcs11.la tests/unit/libtestlib.la \
	src/protocol/libsksproto.la

# The issuer side of SKS provisioning (no-card mode) against a card engine
# in the test: its core compiled in, and the module dlopened with
# `transport = none`; post-provisioning and earlier policies in a suite of
# their own.
ISSUER_PROV_TESTS = tests/unit/test-token-issuer-prov tests/unit/test-token-issuer-post
check_PROGRAMS += $(ISSUER_PROV_TESTS)
TESTS += $(ISSUER_PROV_TESTS)
ISSUER_PROV_COMMON = \
	tests/unit/issuer-prov-driver.c tests/unit/issuer-prov-driver.h \
	tests/unit/issuer-prov-relay.c tests/unit/issuer-prov-relay.h \
	tests/unit/issuer-prov-scenario.c tests/unit/issuer-prov-scenario.h $(TOKEN_TEST_COMMON) \
	src/token/tok_issuer_prov_session.c src/token/tok_issuer_prov_calls.c \
	src/token/tok_issuer_prov_post.c
tests_unit_test_token_issuer_prov_SOURCES = tests/unit/test-token-issuer-prov.c \
	$(ISSUER_PROV_COMMON)
tests_unit_test_token_issuer_prov_CFLAGS = $(TOKEN_TEST_CFLAGS)
tests_unit_test_token_issuer_prov_LDADD = $(TOKEN_TEST_LDADD)
tests_unit_test_token_issuer_prov_DEPENDENCIES = src/token/sks-pkcs11.la tests/unit/libtestlib.la
tests_unit_test_token_issuer_post_SOURCES = tests/unit/test-token-issuer-post.c \
	$(ISSUER_PROV_COMMON)
tests_unit_test_token_issuer_post_CFLAGS = $(TOKEN_TEST_CFLAGS)
tests_unit_test_token_issuer_post_LDADD = $(TOKEN_TEST_LDADD)
tests_unit_test_token_issuer_post_DEPENDENCIES = src/token/sks-pkcs11.la tests/unit/libtestlib.la

# SKS provisioning through the vendor mechanisms (card side): the issuer
# library in the test relays its calls through the module.
TOKEN_PROV_TESTS = tests/unit/test-token-prov tests/unit/test-token-prov-neg
check_PROGRAMS += $(TOKEN_PROV_TESTS)
TESTS += $(TOKEN_PROV_TESTS)
TOKEN_PROV_COMMON = $(TOKEN_TEST_COMMON) tests/unit/test-token-prov-util.c \
	tests/unit/test-token-prov-util.h
tests_unit_test_token_prov_SOURCES = tests/unit/test-token-prov.c $(TOKEN_PROV_COMMON)
tests_unit_test_token_prov_CFLAGS = $(TOKEN_TEST_CFLAGS)
tests_unit_test_token_prov_LDADD = $(TOKEN_TEST_LDADD)
tests_unit_test_token_prov_DEPENDENCIES = src/token/sks-pkcs11.la tests/unit/libtestlib.la
tests_unit_test_token_prov_neg_SOURCES = tests/unit/test-token-prov-neg.c $(TOKEN_PROV_COMMON)
tests_unit_test_token_prov_neg_CFLAGS = $(TOKEN_TEST_CFLAGS)
tests_unit_test_token_prov_neg_LDADD = $(TOKEN_TEST_LDADD)
tests_unit_test_token_prov_neg_DEPENDENCIES = src/token/sks-pkcs11.la tests/unit/libtestlib.la

# Post-provisioning through the vendor mechanisms (card side), with the
# provisioning relay of test-token-prov-util.c.
check_PROGRAMS += tests/unit/test-token-post
TESTS += tests/unit/test-token-post
tests_unit_test_token_post_SOURCES = tests/unit/test-token-post.c $(TOKEN_PROV_COMMON)
tests_unit_test_token_post_CFLAGS = $(TOKEN_TEST_CFLAGS)
tests_unit_test_token_post_LDADD = $(TOKEN_TEST_LDADD)
tests_unit_test_token_post_DEPENDENCIES = src/token/sks-pkcs11.la tests/unit/libtestlib.la

tests_unit_test_token_cache_SOURCES = tests/unit/test-token-cache.c $(TOKEN_TEST_COMMON)
tests_unit_test_token_cache_CFLAGS = $(TOKEN_TEST_CFLAGS)
tests_unit_test_token_cache_LDADD = $(TOKEN_TEST_LDADD)
tests_unit_test_token_cache_DEPENDENCIES = src/token/sks-pkcs11.la tests/unit/libtestlib.la
