# src/card: the SKS card engine (trusted side). Links only src/protocol.
noinst_LTLIBRARIES += src/card/libskscard.la
src_card_libskscard_la_SOURCES = \
	src/card/sks_card.h src/card/card_internal.h \
	src/card/card_seal.c src/card/card_seal.h \
	src/card/card_store.c src/card/card_store.h \
	src/card/card_device.c \
	src/card/card_dispatch.c \
	src/card/card_apdu.c \
	src/card/card_keymat.c src/card/card_keymat.h \
	src/card/card_session.c src/card/card_session.h \
	src/card/card_provision.c \
	src/card/card_keyuse.c \
	src/card/card_keycache.c src/card/card_keycache.h \
	src/card/card_pin.c \
	src/card/card_keys.c \
	src/card/card_objects.c \
	src/card/card_reset.c \
	src/card/card_info.c \
	src/card/card_post.c \
	src/card/card_inject.c \
	src/card/card_session_keys.c src/card/card_session_keys.h \
	src/card/card_dkek.c src/card/card_dkek.h \
	src/card/card_backup.c
src_card_libskscard_la_CFLAGS = $(AM_CFLAGS) $(CRYPTO_CFLAGS) $(SQLITE_CFLAGS)
src_card_libskscard_la_LIBADD = src/protocol/libsksproto.la $(CRYPTO_LIBS) $(SQLITE_LIBS)
