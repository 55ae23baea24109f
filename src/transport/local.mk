# src/transport: how the middleware reaches a card (one interface, one file
# per backend). The embedded backend links the card engine in-process.
# Compiled into sks-pkcs11.so (src/token/local.mk).
SKS_TRANSPORT_SOURCES = \
	src/transport/transport.h \
	src/transport/transport.c \
	src/transport/embedded.c
