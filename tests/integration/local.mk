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
# A key without PIN for the browser test (t-firefox.sh), made by the local issuer.
check_PROGRAMS += tests/integration/nopin-key
tests_integration_nopin_key_SOURCES = tests/integration/nopin-key.c
tests_integration_nopin_key_CFLAGS = $(AM_CFLAGS) $(CRYPTO_CFLAGS)
tests_integration_nopin_key_LDADD = src/provision/libsksprovision.la src/card/libskscard.la \
	src/issuer/libsksissuer.la src/protocol/libsksproto.la $(CRYPTO_LIBS) $(SQLITE_LIBS)

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
	tests/integration/t-firefox.sh \
	tests/integration/t-p11kit-proxy.sh \
	tests/integration/t-p11kit-server.sh \
	tests/integration/pcscd-env.sh \
	tests/integration/apdu-rate.c
# The provisioning tests' secret scanner and adversarial relay.
check_PROGRAMS += tests/integration/memscan tests/integration/evil-relay
tests_integration_memscan_SOURCES = tests/integration/memscan.c
tests_integration_memscan_CFLAGS = $(AM_CFLAGS) $(CRYPTO_CFLAGS)
tests_integration_memscan_LDADD = $(CRYPTO_LIBS)
tests_integration_evil_relay_SOURCES = tests/integration/evil-relay.c examples/demo_link.c \
	examples/demo_link.h examples/demo_proto.h
tests_integration_evil_relay_CFLAGS = $(AM_CFLAGS) $(CRYPTO_CFLAGS)
tests_integration_evil_relay_LDADD = $(CRYPTO_LIBS)
EXTRA_DIST += tests/integration/t-inject.sh
# The DKEK test's PKCS#11 driver (t-dkek.sh): keys with backup allowed, C_WrapKey/C_UnwrapKey.
check_PROGRAMS += tests/integration/dkek-p11
tests_integration_dkek_p11_SOURCES = tests/integration/dkek-p11.c
tests_integration_dkek_p11_CFLAGS = $(AM_CFLAGS) $(P11KIT_CFLAGS)
tests_integration_dkek_p11_LDADD = -ldl
EXTRA_DIST += tests/integration/t-dkek.sh
# No-card mode (the issuer token) through pkcs11-tool.
EXTRA_DIST += tests/integration/t-nocard.sh
check_PROGRAMS += tests/integration/sk-derive
tests_integration_sk_derive_SOURCES = tests/integration/sk-derive.c
tests_integration_sk_derive_CFLAGS = $(AM_CFLAGS) $(CRYPTO_CFLAGS)
tests_integration_sk_derive_LDADD = src/protocol/libsksproto.la $(CRYPTO_LIBS)
EXTRA_DIST += tests/integration/t-provision.sh
EXTRA_DIST += tests/integration/provision-env.sh
# The PC/SC fault test (t-pcsc-faults.sh): its PKCS#11 driver, another
# application holding the card, and the LD_PRELOAD library that injects
# PC/SC faults into the driver's or pkcs11-tool's process. The library is a
# shared object that is never installed (-rpath only makes libtool build
# one): tests load it from .libs/pcsc-fault.so.
check_PROGRAMS += tests/integration/p11-steps tests/integration/pcsc-hold
tests_integration_p11_steps_SOURCES = tests/integration/p11-steps.c
tests_integration_p11_steps_CFLAGS = $(AM_CFLAGS) $(P11KIT_CFLAGS)
tests_integration_p11_steps_LDADD = -ldl
tests_integration_pcsc_hold_SOURCES = tests/integration/pcsc-hold.c
tests_integration_pcsc_hold_CFLAGS = $(AM_CFLAGS) $(PCSC_CFLAGS)
tests_integration_pcsc_hold_LDADD = $(PCSC_LIBS)
check_LTLIBRARIES += tests/integration/pcsc-fault.la
tests_integration_pcsc_fault_la_SOURCES = tests/integration/pcsc-fault.c
tests_integration_pcsc_fault_la_CFLAGS = $(AM_CFLAGS) $(PCSC_CFLAGS)
tests_integration_pcsc_fault_la_LDFLAGS = $(AM_LDFLAGS) -module -avoid-version -shared \
	-rpath /nowhere
tests_integration_pcsc_fault_la_LIBADD = $(PCSC_LIBS) -ldl -lpthread
EXTRA_DIST += tests/integration/t-pcsc-faults.sh
