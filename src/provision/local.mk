# src/provision: the local issuer emulation (key generation and import
# without a server) used by the PKCS#11 token.
noinst_LTLIBRARIES += src/provision/libsksprovision.la
src_provision_libsksprovision_la_SOURCES = \
	src/provision/local_issuer.h src/provision/local_issuer_internal.h \
	src/provision/local_issuer.c \
	src/provision/local_issuer_state.c \
	src/provision/local_issuer_cert.c
src_provision_libsksprovision_la_CFLAGS = $(AM_CFLAGS) $(CRYPTO_CFLAGS)
src_provision_libsksprovision_la_LIBADD = src/issuer/libsksissuer.la src/protocol/libsksproto.la \
	$(CRYPTO_LIBS)
