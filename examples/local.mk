# examples: programs that show the protocol at work.
noinst_PROGRAMS += sks-sample-session
sks_sample_session_SOURCES = examples/sks_sample_session.c
sks_sample_session_CFLAGS = $(AM_CFLAGS) $(CRYPTO_CFLAGS)
sks_sample_session_LDADD = src/issuer/libsksissuer.la src/card/libskscard.la
