# src/protocol: the SKS wire format, message layouts, APDU framing and the
# shared cryptographic constructions (used by card, middleware and issuer).
noinst_LTLIBRARIES += src/protocol/libsksproto.la
src_protocol_libsksproto_la_SOURCES = \
	src/protocol/sks_wire.c src/protocol/sks_wire.h \
	src/protocol/sks_msg.c src/protocol/sks_msg.h \
	src/protocol/sks_msg_table.c \
	src/protocol/sks_apdu.c src/protocol/sks_apdu.h \
	src/protocol/sks_crypto.c src/protocol/sks_crypto.h \
	src/protocol/sks_dkek.c src/protocol/sks_dkek.h \
	src/protocol/sks_keys.c src/protocol/sks_keys.h \
	src/protocol/sks_proto.h
src_protocol_libsksproto_la_CFLAGS = $(AM_CFLAGS) $(CRYPTO_CFLAGS)
src_protocol_libsksproto_la_LIBADD = $(CRYPTO_LIBS)
