# examples: programs that show the protocol at work.
noinst_PROGRAMS += sks-sample-session
sks_sample_session_SOURCES = examples/sks_sample_session.c
sks_sample_session_CFLAGS = $(AM_CFLAGS) $(CRYPTO_CFLAGS)
sks_sample_session_LDADD = src/issuer/libsksissuer.la src/card/libskscard.la

# sks-issuer-demo and sks-enroll: an issuer and an enrollment client that
# use only the public interface (PKCS#11 + include/pkcs11/sks-pkcs11.h),
# loading the installed module by default.
EXAMPLE_CPPFLAGS = $(AM_CPPFLAGS) -DSKS_MODULE_PATH='"$(pkcs11dir)/sks-pkcs11.so"'
EXAMPLE_COMMON = examples/demo_link.c examples/demo_link.h examples/demo_p11.c \
	examples/demo_p11.h examples/demo_proto.h
bin_PROGRAMS += sks-issuer-demo sks-enroll
sks_issuer_demo_SOURCES = examples/sks_issuer_demo.c examples/issuer_demo.h \
	examples/issuer_inject.c examples/issuer_sks.c examples/issuer_keys.c \
	examples/demo_ca.c examples/demo_ca.h $(EXAMPLE_COMMON)
sks_issuer_demo_CPPFLAGS = $(EXAMPLE_CPPFLAGS)
sks_issuer_demo_CFLAGS = $(AM_CFLAGS) $(CRYPTO_CFLAGS) $(P11KIT_CFLAGS)
sks_issuer_demo_LDADD = $(CRYPTO_LIBS) -ldl
sks_enroll_SOURCES = examples/sks_enroll.c examples/enroll.h examples/enroll_inject.c \
	examples/enroll_sks.c examples/enroll_report.c $(EXAMPLE_COMMON)
sks_enroll_CPPFLAGS = $(EXAMPLE_CPPFLAGS)
sks_enroll_CFLAGS = $(AM_CFLAGS) $(CRYPTO_CFLAGS) $(P11KIT_CFLAGS)
sks_enroll_LDADD = $(CRYPTO_LIBS) -ldl
dist_man_MANS += man/sks-issuer-demo.1 man/sks-enroll.1
