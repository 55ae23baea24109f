# src/transport: how the middleware reaches a card (one interface, one file
# per backend). The embedded backend links the card engine in-process; the
# PC/SC backend reaches readers through pcsc-lite (PCSC_CFLAGS/PCSC_LIBS).
# Compiled into sks-pkcs11.so (src/token/local.mk).
SKS_TRANSPORT_SOURCES = \
	src/transport/transport.h \
	src/transport/transport.c \
	src/transport/embedded.c \
	src/transport/pcsc_internal.h \
	src/transport/pcsc_status.c \
	src/transport/pcsc_readers.c \
	src/transport/pcsc_wait.c \
	src/transport/pcsc.c
