# tests/unit: Check suites. testlib drives a card through a real issuer.
check_LTLIBRARIES = tests/unit/libtestlib.la
tests_unit_libtestlib_la_SOURCES = tests/unit/testlib.c tests/unit/testlib.h \
	tests/unit/testlib-verify.c
tests_unit_libtestlib_la_CFLAGS = $(AM_CFLAGS) $(CRYPTO_CFLAGS) $(CHECK_CFLAGS)
tests_unit_libtestlib_la_LIBADD = src/issuer/libsksissuer.la src/card/libskscard.la $(CHECK_LIBS)

UNIT_CFLAGS = $(AM_CFLAGS) $(CRYPTO_CFLAGS) $(SQLITE_CFLAGS) $(CHECK_CFLAGS)
UNIT_LDADD = tests/unit/libtestlib.la $(CHECK_LIBS) $(CRYPTO_LIBS) $(SQLITE_LIBS)

UNIT_TESTS = \
	tests/unit/test-wire \
	tests/unit/test-msg \
	tests/unit/test-apdu \
	tests/unit/test-crypto \
	tests/unit/test-store \
	tests/unit/test-card-apdu \
	tests/unit/test-provision \
	tests/unit/test-keyuse \
	tests/unit/test-keycache \
	tests/unit/test-reset \
	tests/unit/test-objects \
	tests/unit/test-crash \
	tests/unit/test-inject \
	tests/unit/test-dkek \
	tests/unit/test-tool-dkek \
	tests/unit/test-post \
	tests/unit/test-enum \
	tests/unit/test-vpcd
check_PROGRAMS += $(UNIT_TESTS)
TESTS += $(UNIT_TESTS)

tests_unit_test_wire_SOURCES = tests/unit/test-wire.c
tests_unit_test_wire_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_wire_LDADD = $(UNIT_LDADD)
tests_unit_test_msg_SOURCES = tests/unit/test-msg.c
tests_unit_test_msg_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_msg_LDADD = $(UNIT_LDADD)
tests_unit_test_apdu_SOURCES = tests/unit/test-apdu.c
tests_unit_test_apdu_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_apdu_LDADD = $(UNIT_LDADD)
tests_unit_test_crypto_SOURCES = tests/unit/test-crypto.c
tests_unit_test_crypto_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_crypto_LDADD = $(UNIT_LDADD)
tests_unit_test_store_SOURCES = tests/unit/test-store.c
tests_unit_test_store_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_store_LDADD = $(UNIT_LDADD)
tests_unit_test_card_apdu_SOURCES = tests/unit/test-card-apdu.c
tests_unit_test_card_apdu_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_card_apdu_LDADD = $(UNIT_LDADD)
tests_unit_test_provision_SOURCES = tests/unit/test-provision.c
tests_unit_test_provision_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_provision_LDADD = $(UNIT_LDADD)
tests_unit_test_keyuse_SOURCES = tests/unit/test-keyuse.c
tests_unit_test_keyuse_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_keyuse_LDADD = $(UNIT_LDADD)
tests_unit_test_reset_SOURCES = tests/unit/test-reset.c
tests_unit_test_reset_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_reset_LDADD = $(UNIT_LDADD)
tests_unit_test_objects_SOURCES = tests/unit/test-objects.c
tests_unit_test_objects_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_objects_LDADD = $(UNIT_LDADD)
tests_unit_test_crash_SOURCES = tests/unit/test-crash.c tests/unit/inject-issuer.c \
	tests/unit/inject-issuer.h
tests_unit_test_crash_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_crash_LDADD = $(UNIT_LDADD)
tests_unit_test_dkek_SOURCES = tests/unit/test-dkek.c
tests_unit_test_dkek_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_dkek_LDADD = $(UNIT_LDADD)
# sks-tool's Shamir scheme and share files.
tests_unit_test_tool_dkek_SOURCES = tests/unit/test-tool-dkek.c src/tools/tool_shamir.c \
	src/tools/tool_shamir.h src/tools/tool_share_file.c src/tools/tool_share_file.h
tests_unit_test_tool_dkek_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_tool_dkek_LDADD = $(UNIT_LDADD) -lpthread
tests_unit_test_post_SOURCES = tests/unit/test-post.c
tests_unit_test_post_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_post_LDADD = $(UNIT_LDADD)
# sks-card's vpcd protocol logic, against a server in the test playing vpcd.
tests_unit_test_vpcd_SOURCES = tests/unit/test-vpcd.c src/tools/vpcd_link.c src/tools/vpcd_link.h
tests_unit_test_vpcd_CFLAGS = $(UNIT_CFLAGS) -pthread
tests_unit_test_vpcd_LDADD = $(UNIT_LDADD) -lpthread
# Secure key injection on the card; the issuer side is tests/unit/inject-issuer.c.
tests_unit_test_inject_SOURCES = tests/unit/test-inject.c tests/unit/inject-issuer.c \
	tests/unit/inject-issuer.h
tests_unit_test_inject_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_inject_LDADD = $(UNIT_LDADD)
tests_unit_test_keycache_SOURCES = tests/unit/test-keycache.c
tests_unit_test_keycache_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_keycache_LDADD = $(UNIT_LDADD)
tests_unit_test_enum_SOURCES = tests/unit/test-enum.c
tests_unit_test_enum_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_enum_LDADD = $(UNIT_LDADD)
