# src/tools: sks-tool, the administrator's command line, and sks-card, the
# daemon that serves a card to pcscd through vsmartcard's vpcd reader.
bin_PROGRAMS += sks-tool
sks_tool_SOURCES = src/tools/sks_tool.c src/tools/tool_paths.c src/tools/tool_paths.h \
	src/tools/tool_common.c src/tools/tool_common.h \
	src/tools/tool_card.c src/tools/tool_card.h \
	src/tools/tool_dkek.c src/tools/tool_dkek.h \
	src/tools/tool_dkek_share.c src/tools/tool_dkek_backup.c \
	src/tools/tool_share_file.c src/tools/tool_share_file.h \
	src/tools/tool_shamir.c src/tools/tool_shamir.h \
	src/tools/tool_secret.c src/tools/tool_secret.h
sks_tool_CFLAGS = $(AM_CFLAGS) $(CRYPTO_CFLAGS)
sks_tool_LDADD = src/card/libskscard.la -lpthread
dist_man_MANS += man/sks-tool.1

sbin_PROGRAMS = sks-card
sks_card_SOURCES = src/tools/sks_card_daemon.c \
	src/tools/vpcd_link.c src/tools/vpcd_link.h \
	src/tools/tool_paths.c src/tools/tool_paths.h \
	src/tools/tool_common.c src/tools/tool_common.h
sks_card_CFLAGS = $(AM_CFLAGS) $(CRYPTO_CFLAGS)
sks_card_LDADD = src/card/libskscard.la
dist_man_MANS += man/sks-card.8
