# src/issuer: the issuer's half of the provisioning protocol.
noinst_LTLIBRARIES += src/issuer/libsksissuer.la
src_issuer_libsksissuer_la_SOURCES = \
	src/issuer/sks_issuer.h src/issuer/issuer_internal.h \
	src/issuer/issuer_session.c \
	src/issuer/issuer_calls.c \
	src/issuer/issuer_post.c \
	src/issuer/issuer_cert.c
src_issuer_libsksissuer_la_CFLAGS = $(AM_CFLAGS) $(CRYPTO_CFLAGS)
src_issuer_libsksissuer_la_LIBADD = src/protocol/libsksproto.la $(CRYPTO_LIBS)
