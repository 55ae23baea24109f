# tests/integration: the module driven by real tools (pkcs11-tool, OpenSSL,
# GnuTLS, NSS, p11-kit) against an installed copy. Not part of `make check`:
# scripts/test-all.sh runs tests/integration/run-all.sh on its build tree.
# The stress driver is built here so that it gets the project's warnings.
check_PROGRAMS += tests/integration/p11-threads
tests_integration_p11_threads_SOURCES = tests/integration/p11-threads.c
tests_integration_p11_threads_CFLAGS = $(AM_CFLAGS) -pthread $(P11KIT_CFLAGS)
tests_integration_p11_threads_LDADD = -ldl -lpthread
# The PC/SC test's driver: card removal, slot events, concurrent signing.
check_PROGRAMS += tests/integration/p11-pcsc
tests_integration_p11_pcsc_SOURCES = tests/integration/p11-pcsc.c
tests_integration_p11_pcsc_CFLAGS = $(AM_CFLAGS) -pthread $(P11KIT_CFLAGS)
tests_integration_p11_pcsc_LDADD = -ldl -lpthread

EXTRA_DIST += \
	tests/integration/run-all.sh \
	tests/integration/lib.sh \
	tests/integration/t-install.sh \
	tests/integration/t-pkcs11-tool.sh \
	tests/integration/t-openssl.sh \
	tests/integration/t-gnutls.sh \
	tests/integration/t-nss.sh \
	tests/integration/t-stress.sh \
	tests/integration/t-pcsc.sh \
	tests/integration/t-sks-card.sh \
	tests/integration/pcscd-env.sh \
	tests/integration/apdu-rate.c
